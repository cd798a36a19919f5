// A small code editor: a monospace textarea with a line-number gutter, Tab that indents (4 spaces),
// Enter that keeps the indentation, Ctrl/Cmd+Enter that submits, and lines that can be marked (the
// line the server named in its error, the lines a grade row came from). A plain <textarea> underneath,
// so undo, selection, IME, spell-check off and screen readers all work as the browser does them.
// Lines never wrap: a line number in the gutter is always one line of code.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);

const INDENT = "    ";

// execCommand keeps the browser's undo stack (setRangeText would clear it); both fire "input".
function insertText(textarea, text) {
  if (document.execCommand("insertText", false, text)) return;
  textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

function lineStart(text, pos) {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

export class Editor {
  // { id, label (accessible name), minLines, maxLines (0: fill the container), onSubmit, onInput }
  constructor({ id, label, minLines = 3, maxLines = 10, onSubmit = () => {}, onInput = () => {} }) {
    this.minLines = minLines;
    this.maxLines = maxLines;
    this.onSubmit = onSubmit;
    this.onInput = onInput;
    this.tabLeaves = false;  // after Escape, Tab moves the focus on instead of indenting (no keyboard trap)
    this.marks = [];
    this.lines = el("div", { class: "editor-lines" });
    this.markLayer = el("div", { class: "editor-marks", "aria-hidden": "true" });
    this.textarea = el("textarea", {
      id, class: "editor-text", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
      autocorrect: "off", wrap: "off", "aria-label": label,
    });
    this.root = el("div", { class: `editor${maxLines ? "" : " editor-fill"}` },
      el("div", { class: "editor-gutter", "aria-hidden": "true" }, this.lines),
      el("div", { class: "editor-body" }, this.markLayer, this.textarea));
    this.textarea.addEventListener("input", () => {
      this.clearMarks();  // a marked line may have moved: the mark belongs to the code that was checked
      this.layout();
      this.onInput(this.value);
    });
    this.textarea.addEventListener("scroll", () => this.follow());
    this.textarea.addEventListener("keydown", (event) => this.key(event));
    this.textarea.addEventListener("blur", () => { this.tabLeaves = false; });
    this.layout();
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.clearMarks();
    this.layout();
  }

  // Replaces everything as an edit of the user's (Ctrl+Z brings the old text back), unlike `value =`.
  replaceAll(text) {
    this.textarea.focus();
    this.textarea.select();
    insertText(this.textarea, text);
  }

  focus(atEnd = false) {
    this.textarea.focus();
    if (atEnd) this.textarea.setSelectionRange(this.value.length, this.value.length);
  }

  key(event) {
    const ta = this.textarea;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      this.onSubmit();
      return;
    }
    if (event.key === "Escape") {
      this.tabLeaves = true;
      return;
    }
    if (event.key === "Tab" && !this.tabLeaves && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      if (event.shiftKey) this.dedent();
      else insertText(ta, INDENT);
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing) {
      // keep the line's indentation, one more level after a ':' (for, if, def)
      const text = ta.value;
      const start = lineStart(text, ta.selectionStart);
      const line = text.slice(start, ta.selectionStart);
      const indent = line.match(/^[ \t]*/)[0] + (/:\s*$/.test(line) ? INDENT : "");
      event.preventDefault();
      insertText(ta, `\n${indent}`);
    }
  }

  dedent() {
    const ta = this.textarea;
    const start = lineStart(ta.value, ta.selectionStart);
    const spaces = ta.value.slice(start, start + INDENT.length).match(/^ */)[0].length;
    if (!spaces) return;
    const caret = ta.selectionStart;
    ta.setSelectionRange(start, start + spaces);
    insertText(ta, "");
    ta.setSelectionRange(Math.max(start, caret - spaces), Math.max(start, caret - spaces));
  }

  lineHeight() {
    this.lh ??= Number.parseFloat(getComputedStyle(this.textarea).lineHeight) || 18;
    return this.lh;
  }

  // Gutter numbers for every line, and (unless the editor fills its container) a height that grows
  // with the code between minLines and maxLines.
  layout() {
    const count = this.value.split("\n").length;
    if (this.lines.childElementCount !== count) {
      fill(this.lines, ...Array.from({ length: count }, (_, i) => el("span", { dataset: { line: i + 1 } }, String(i + 1))));
      this.drawMarks();
    }
    if (this.maxLines) {
      const shown = Math.min(this.maxLines, Math.max(this.minLines, count));
      this.textarea.style.height = `calc(${shown} * var(--editor-lh) + 2 * var(--editor-pad) + 2px)`;
    }
    this.follow();
  }

  follow() {
    const y = `translateY(${-this.textarea.scrollTop}px)`;
    this.lines.style.transform = y;
    this.markLayer.style.transform = `translate(${-this.textarea.scrollLeft}px, ${-this.textarea.scrollTop}px)`;
    this.markLayer.style.width = `${this.textarea.scrollWidth}px`;
  }

  // Marks whole lines (1-based): kind "error" (red), "focus" (blue) or "fix" (amber: where the one edit
  // that makes an answer right goes, with a caret under column `col`), with an optional tooltip. A new
  // set replaces the marks of its kind only: the line a cell stopped at stays red while rows are explored.
  mark(lines, kind = "error", title = "", col = null) {
    const fresh = lines.filter((n) => Number.isInteger(n) && n >= 1).map((line) => ({ line, kind, title, col }));
    this.marks = [...this.marks.filter((m) => m.kind !== kind), ...fresh];
    this.drawMarks();
    if (fresh[0]) this.reveal(fresh[0].line);
  }

  clearMarks() {
    if (!this.marks.length) return;
    this.marks = [];
    this.drawMarks();
  }

  drawMarks() {
    const lh = this.lineHeight();
    fill(this.markLayer, ...this.marks.map(({ line, kind, col }) =>
      el("div", { class: `editor-mark mark-${kind}`, style: `top: calc(var(--editor-pad) + ${(line - 1) * lh}px)` },
        col ? el("span", { class: "editor-caret", style: `left: calc(var(--editor-pad-x) + ${col - 1}ch)` }) : null)));
    const marked = new Map(this.marks.map((m) => [m.line, m]));
    for (const m of this.marks) if (m.kind === "error") marked.set(m.line, m);  // red wins over the others
    for (const span of this.lines.children) {
      const m = marked.get(Number(span.dataset.line));
      span.className = m ? `marked mark-${m.kind}` : "";
      span.title = m?.title ?? "";
    }
  }

  // Scrolls a line into the textarea's view without moving the caret.
  reveal(line) {
    const lh = this.lineHeight();
    const top = (line - 1) * lh;
    const ta = this.textarea;
    if (top < ta.scrollTop || top + lh > ta.scrollTop + ta.clientHeight) ta.scrollTop = Math.max(0, top - lh);
    this.follow();
  }

  // Puts the caret at the start of a line (after the user clicked a message that names it).
  goTo(line, col = 1) {
    const rows = this.value.split("\n");
    let pos = 0;
    for (let i = 0; i < Math.min(line - 1, rows.length); i++) pos += rows[i].length + 1;
    pos += Math.max(0, Math.min((col ?? 1) - 1, (rows[line - 1] ?? "").length));
    this.textarea.focus();
    this.textarea.setSelectionRange(pos, pos);
    this.reveal(line);
  }
}
