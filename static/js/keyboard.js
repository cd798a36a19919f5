// Arrow keys walk the nodes in table order, except while the user is typing in a control.

const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]);
const STEPS = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };

export function installArrowKeys(onStep) {
  document.addEventListener("keydown", (event) => {
    const step = STEPS[event.key];
    if (!step || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const target = event.target;
    if (target instanceof HTMLElement && (TYPING.has(target.tagName) || target.isContentEditable)) return;
    event.preventDefault();  // the panels would scroll otherwise
    onStep(step);
  });
}
