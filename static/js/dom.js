// Tiny DOM builders: the page builds its elements with these rather than innerHTML, so text from
// the server (formulas, messages) is never parsed as markup.
//
// Every way of putting children into an element goes through `nodes()` below: `el`, `svg`, `fill`
// (instead of replaceChildren) and `add` (instead of append). The DOM's own replaceChildren/append
// turn anything that is not a Node into text, so an array became "[object HTMLParagraphElement]" and
// a null became "null" on screen. Here arrays (nested to any depth) are flattened, null/undefined/
// false mean "nothing", and anything else that is neither a Node, a string nor a number is refused
// with a console error instead of being printed. (tests/e2e/test_dom_rules.py keeps the page's
// modules from calling replaceChildren/append directly.)

const SVG_NS = "http://www.w3.org/2000/svg";

function nodes(children) {
  const out = [];
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    if (child instanceof Node) out.push(child);
    else if (typeof child === "string") out.push(child);
    else if (typeof child === "number" && Number.isFinite(child)) out.push(String(child));
    else console.error("dom: refused a child that is not a Node, a string or a finite number:", child);
  }
  return out;
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") {
      for (const [name, item] of Object.entries(value)) if (item !== null && item !== undefined) node.dataset[name] = String(item);
    }
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...nodes(children));
  return node;
}

export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// Replaces the element's children (replaceChildren, with the rules above). fill(node) empties it.
export function fill(node, ...children) {
  node.replaceChildren(...nodes(children));
  return node;
}

// Appends children (append, with the rules above).
export function add(node, ...children) {
  node.append(...nodes(children));
  return node;
}
