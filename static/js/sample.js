// The sample selector beside the figure of a (batch, head, ·, ·) node such as attention: the server
// draws one sample's heads (GET …/nodes/{name}?sample=k) and says in the node document which one
// (`sample`) of how many (`samples`; null for every other node, which hides the selector). The value is
// the page state's `sample` field, so a permalink shows the same sample.

// Typing "1" on the way to "12" should not fetch sample 1: a pause this long (ms) commits the value;
// Enter, the stepper buttons and leaving the field commit it at once.
const TYPING_MS = 400;

export class SampleControl {
  // root: the <label> holding the number input and a "of 0..B-1" note; onPick(value): a sample chosen
  constructor(root, onPick) {
    this.root = root;
    this.input = root.querySelector("input");
    this.range = root.querySelector(".sample-range");
    this.timer = 0;
    const commit = () => {
      clearTimeout(this.timer);
      const value = this.input.value.trim();
      if (value !== "" && value !== this.shown) onPick(value);
    };
    this.input.addEventListener("change", commit);
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(commit, TYPING_MS);
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") commit();
    });
    this.shown = null;
  }

  // The node document on screen (null: none yet); `t` the translator.
  show(doc, t) {
    const samples = doc?.samples ?? null;
    this.root.hidden = samples === null;
    if (samples === null) return;
    this.shown = String(doc.sample);
    this.input.max = String(samples - 1);
    if (document.activeElement !== this.input || this.input.value.trim() === this.shown) this.input.value = this.shown;
    this.range.textContent = t("sample_range", { hi: samples - 1 });
    this.input.title = t("sample_title", { hi: samples - 1 });
  }
}
