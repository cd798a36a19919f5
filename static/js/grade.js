// Whole-cell mode, for a class: the learner pastes their exercise-1 cell (dlogprobs down to dC), the
// server runs it with forward values only and judges every d<name> it defines, end to end and step by
// step. This dialog shows a row per gradient of the network, where the cell stopped if it did, and
// marks lines in the code (and, for a wrong formula, where the one edit that makes it right goes).
// The cell is kept in localStorage (per network and variant) like the node drafts.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);
const api = await import(`./api.js${v}`);
const store = await import(`./store.js${v}`);
const progress = await import(`./progress.js${v}`);
const { statusBadge, localBadge } = await import(`./table.js${v}`);
const { Editor } = await import(`./editor.js${v}`);
const { BusyNotice, Cancelled, retrying } = await import(`./retry.js${v}`);
const verdictParts = await import(`./verdict.js${v}`);

// What a row of a cell that did not run to its end means, in words (a bare "missing" said nothing):
// the step whose line raised the error, steps whose lines come after it, and gradients the cell never
// assigns at all. Rows the cell judged keep their status.
export function cellStatus(row, doc) {
  if (row.status !== "missing") return row.status;
  if (!row.lines.length) return "not_defined";
  const stop = doc.error?.line;
  if (!stop) return "missing";
  if (row.lines.includes(stop)) return "stopped";
  return Math.min(...row.lines) > stop ? "not_reached" : "missing";
}

function lineRange(lines) {
  if (!lines.length) return "—";
  const sorted = [...lines].sort((a, b) => a - b);
  const contiguous = sorted.every((n, i) => i === 0 || n === sorted[i - 1] + 1);
  return contiguous && sorted.length > 1 ? `${sorted[0]}–${sorted.at(-1)}` : sorted.join(", ");
}

export class CellGrader {
  // parts: {dialog, close, code, result, intro}; hooks: getRun() → the run on screen, onSolved(names)
  constructor(parts, hooks) {
    this.parts = parts;
    this.hooks = hooks;
    this.t = (key) => key;
    this.lang = "en";
    this.cellKey = null;  // the storage key of the cell in the editor: per network and variant
    this.last = null;  // {code, doc} | {code, error}
    this.seq = 0;
    this.editor = new Editor({
      id: "cell-code-text", label: "", maxLines: 0,
      onSubmit: () => this.submit(),
      onInput: (text) => this.save(text),
    });
    this.gradeButton = el("button", { type: "button", class: "btn btn-primary", id: "cell-grade" });
    this.keys = el("span", { class: "kbd-hint muted" });
    this.status = el("div", { class: "cell-status", id: "cell-status", "aria-live": "polite" });
    this.busyBox = el("div", { class: "cell-busy", id: "cell-busy" });
    this.busy = new BusyNotice(this.busyBox);  // a grade waiting out a busy server counts down here
    this.gradeButton.addEventListener("click", () => this.submit());
    fill(parts.code, this.editor.root, el("div", { class: "dojo-actions" }, this.gradeButton, this.keys), this.busyBox, this.status);
    parts.close.addEventListener("click", () => parts.dialog.close());
    parts.dialog.addEventListener("close", () => this.busy.cancel());  // closing it gives up a waiting grade
    // a click on the dimmed backdrop (the dialog element itself, outside its content) closes it too
    parts.dialog.addEventListener("click", (event) => { if (event.target === parts.dialog) parts.dialog.close(); });
    parts.result.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-lines]");
      if (!row || event.target.closest("button, summary, a")) return;  // they act on their own
      if (!row.dataset.lines) {
        row.classList.toggle("open");
        return;
      }
      // the row unfolds its whole diagnosis, and its lines light up in the code
      for (const other of parts.result.querySelectorAll("tr.open")) if (other !== row) other.classList.remove("open");
      row.classList.add("open");
      const lines = row.dataset.lines.split(",").map(Number);
      this.editor.mark(lines, "focus");
      const fix = this.rowFix(row.dataset.node);
      if (fix) this.editor.mark([fix.line], "fix", fix.message, fix.col);
      this.editor.goTo(lines[0]);
    });
  }

  rowFix(name) {
    return this.last?.doc?.nodes.find((row) => row.name === name)?.fix ?? null;
  }

  get isOpen() {
    return this.parts.dialog.open;
  }

  open() {
    const run = this.hooks.getRun();
    if (!run) return;
    const key = store.cellKey(run.config.net, run.config.variant);
    if (this.cellKey !== key) {
      this.cellKey = key;
      this.editor.value = store.read(key, "");
      this.last = null;
    }
    this.drawIntro(run);
    this.draw();
    this.parts.dialog.showModal();
    this.editor.focus();
  }

  relabel(t, lang = "en") {
    this.t = t;
    this.lang = lang;
    this.busy.relabel(t);
    this.editor.textarea.setAttribute("aria-label", t("cell_editor_label"));
    this.editor.textarea.placeholder = t("cell_placeholder");
    this.gradeButton.textContent = t("cell_grade");
    this.keys.textContent = t("cell_keys");
    const run = this.hooks.getRun();
    if (run) this.drawIntro(run);
    this.draw();
  }

  // "Paste your backward pass …, dlogprobs down to dC": the network's own first and last gradient.
  drawIntro(run) {
    const names = run.nodes.map((n) => `d${n.name}`);
    this.parts.intro.textContent = this.t("cell_intro", { first: names[0], last: names.at(-1) });
  }

  save(text) {
    if (this.cellKey) store.write(this.cellKey, text);
  }

  async submit() {
    const run = this.hooks.getRun();
    const code = this.editor.value;
    if (!run || !code.trim()) {
      this.editor.focus();
      return;
    }
    const seq = ++this.seq;
    this.busy.cancel();  // an older grade still waiting out a busy server gives way to this one
    this.gradeButton.disabled = true;
    this.parts.dialog.dataset.grading = "true";
    fill(this.status, el("span", { class: "muted" }, this.t("cell_grading")));
    let last;
    try {
      last = { code, doc: await retrying(() => api.gradeCell(run.run_id, code, this.lang), this.busy) };
    } catch (err) {
      last = { code, error: err };
    }
    if (seq !== this.seq) return;
    this.gradeButton.disabled = false;
    delete this.parts.dialog.dataset.grading;
    this.last = last;
    this.editor.clearMarks();  // the marks belonged to the last result
    if (last.doc) {
      // solved = passed end to end, or passed locally (the dojo's own test: this step fed the true
      // upstream gradient), so one wrong line early in the cell does not hide the right ones below it;
      // an answer that fails on another minibatch solves nothing
      const verdicts = last.doc.nodes.filter((row) => !verdictParts.failedBatches(row.batches).length)
        .map((row) => ({ name: row.name, status: progress.passed(row.status) ? row.status : row.local_status }));
      const fresh = progress.recordSolved(run.config.net, run.config.variant, verdicts);
      if (fresh.length) this.hooks.onSolved(fresh);
    }
    this.draw();
  }

  draw() {
    const t = this.t;
    const last = this.last;
    this.parts.dialog.dataset.result = last ? (last.error ? "error" : "graded") : "none";
    if (!last) {
      fill(this.status);
      fill(this.parts.result, el("p", { class: "cell-empty muted" }, t("cell_empty", { total: this.hooks.getRun()?.nodes.length ?? "…" })));
      return;
    }
    if (last.error) {
      const err = last.error;
      const text = err instanceof Cancelled ? t("busy_cancelled", { message: err.message })
        : err.status === 0 ? t("network_error") : err.message;
      fill(this.status, this.errorBox(err.code === "code_error" ? t(`code_kind_${err.kind}`) : t("dojo_failed"), text));
      if (err.line) this.editor.mark([err.line], "error", text);
      return;
    }
    const doc = last.doc;
    const totals = doc.totals;
    fill(this.status, ...(doc.error ? [this.errorBox(t(`code_kind_${doc.error.kind}`), doc.error.text, t("cell_stopped"))] : []));
    if (doc.error?.line) this.editor.mark([doc.error.line], "error", doc.error.text);
    const shown = doc.nodes.map((row) => cellStatus(row, doc));
    const counts = ["exact", "approx", "mismatch", "shape_mismatch", "stopped", "not_reached", "not_defined", "missing"]
      .map((s) => [s, shown.filter((x) => x === s).length]).filter(([, n]) => n)
      .map(([s, n]) => el("span", { class: `badge badge-${s}`, title: t(`status_${s}_title`) }, `${n} ${t(`status_${s}`)}`));
    fill(this.parts.result,
      el("div", { class: "cell-totals" },
        el("span", { class: `cell-passed ${totals.passed === totals.total ? "all" : ""}`.trim(), id: "cell-passed",
          dataset: { passed: totals.passed, total: totals.total } }, t("cell_passed", { n: totals.passed, total: totals.total })),
        el("span", { class: "muted", title: t("col_local_title") }, t("cell_local_passed", { n: totals.local_passed, total: totals.total })),
        ...counts),
      el("div", { class: "cell-table-wrap" }, el("table", { class: "cmp cell-table", id: "cell-table" },
        el("thead", {}, el("tr", {},
          [["col_node", "w-node"], ["col_status", "w-status"], ["col_local", "c w-local"], ["col_maxdiff", "r w-maxdiff"],
            ["cell_col_diagnosis", "w-diagnosis"], ["cell_col_lines", "r w-lines"]].map(([key, cls]) =>
            el("th", { scope: "col", class: cls }, t(key))))),
        el("tbody", {}, doc.nodes.map((row, i) => this.row(row, shown[i]))))),
      doc.output.length ? [el("h3", { class: "subhead" }, t("dojo_printed")), el("pre", { class: "dojo-output" }, doc.output.join("\n"))] : null,
      doc.notes.map((text) => el("p", { class: "note" }, text)));
  }

  // A row: its first diagnosis line (the one that names the cause), with a mark for an edit that fixes
  // it, another minibatch it fails on, or rounding proved; a click unfolds the rest (verdict.js).
  row(row, status) {
    const t = this.t;
    const diagnosis = row.local_error?.text ?? row.diagnosis[0] ?? "";
    const failed = verdictParts.failedBatches(row.batches);
    const marks = [
      row.fix ? el("span", { class: "row-mark mark-fix", title: row.fix.message }, "✎") : null,
      failed.length ? el("span", { class: "row-mark mark-batch", title: t("batch_fails", { n: failed.length, total: row.batches.length }) }, "⚠") : null,
      row.rounding?.proved ? el("span", { class: "row-mark mark-rounding", title: t("rounding_proved") }, "≈") : null,
    ];
    const rest = row.diagnosis.slice(1).filter((text) => text !== row.fix?.message);
    return el("tr", { dataset: { node: row.name, status: row.status, shown: status, lines: row.lines.join(",") },
      class: row.lines.length ? "has-lines" : null },
      el("th", { scope: "row" }, el("code", {}, row.name)),
      el("td", {}, statusBadge(status, t)),
      el("td", { class: "c" }, localBadge(row.local_status, t)),
      el("td", { class: "r num c-maxdiff" }, fmt.diff(row.maxdiff)),
      el("td", { class: "cell-diagnosis", title: row.diagnosis.join("\n") || null },
        marks, el("span", { class: "first" }, diagnosis),
        rest.map((text) => el("span", { class: "more" }, text)),
        el("div", { class: "more more-parts" },
          verdictParts.fixLine(row.fix, t, (line, col) => {
            this.editor.mark([line], "fix", row.fix.message, col);
            this.editor.goTo(line, col);
          }),
          verdictParts.batchWarning(row.batches, t),
          verdictParts.roundingLine(row.rounding, t),
          el("div", { class: "strips" }, verdictParts.batchStrip(row.batches, t), row.exact ? null : verdictParts.lensStrip(row.lens, t)))),
      el("td", { class: "r num c-lines" }, lineRange(row.lines)));
  }

  errorBox(kind, text, lead = null) {
    return el("div", { class: "verdict verdict-error", role: "alert", id: "cell-error" },
      el("div", { class: "verdict-head" }, el("span", { class: "badge badge-mismatch badge-verdict" }, kind),
        lead ? el("span", { class: "muted" }, lead) : null),
      el("p", { class: "dojo-error-text" }, text));
  }
}
