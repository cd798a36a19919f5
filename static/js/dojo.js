// The dojo: "write your own d<node>". The learner's code goes to the server, which runs it in its
// sandbox with the true upstream gradients and judges it against autograd; this panel shows the verdict
// (badge, diagnosis, what print() wrote) or the error with its line marked in the editor. Drafts live
// in localStorage per network, variant and node, so switching nodes, reloading or a new batch never
// loses work.
// The page computes nothing here: the scope hint is read off the run document's graph.

const v = new URL(import.meta.url).search;
const { el, fill, add } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);
const api = await import(`./api.js${v}`);
const store = await import(`./store.js${v}`);
const progress = await import(`./progress.js${v}`);
const { statusBadge } = await import(`./table.js${v}`);
const { Editor } = await import(`./editor.js${v}`);
const { BusyNotice, Cancelled, retrying } = await import(`./retry.js${v}`);
const verdictParts = await import(`./verdict.js${v}`);

const SHOWN_GRADIENTS = 3;
const SHOWN_FORWARD = 5;

// What the learner's code can use, from the forward graph: the gradients of everything between this
// node and the loss (nearest first, as the backward pass reaches them), and the forward names next to it.
export function scopeHint(run, name) {
  const children = new Map();
  const parents = new Map();
  for (const [a, b] of run.graph.edges) {
    if (!children.has(a)) children.set(a, []);
    if (!parents.has(b)) parents.set(b, []);
    children.get(a).push(b);
    parents.get(b).push(a);
  }
  const below = new Set();
  const stack = [...(children.get(name) ?? [])];
  while (stack.length) {
    const n = stack.pop();
    if (below.has(n)) continue;
    below.add(n);
    stack.push(...(children.get(n) ?? []));
  }
  const gradients = run.nodes.map((n) => n.name).filter((n) => below.has(n)).reverse().map((n) => `d${n}`);
  const near = [name, ...(parents.get(name) ?? [])];
  for (const c of children.get(name) ?? []) near.push(...(parents.get(c) ?? []), c);
  const forward = [...new Set(near)];
  return { gradients, forward };
}

function codeList(names, limit) {
  const shown = names.slice(0, limit).flatMap((n, i) => [i ? ", " : "", el("code", {}, n)]);
  if (names.length > limit) shown.push(el("span", { class: "more", title: names.join(", ") }, ` +${names.length - limit}`));
  return shown;
}

export class Dojo {
  // hooks: onResult(runId, node, {verdict} | {error}) when a check of the node on screen comes back;
  // onSolved(names) when nodes are solved for the first time.
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.results = new Map();  // "<run_id>/<node>" -> {code, verdict} | {code, error}
    this.latest = new Map();   // "<run_id>/<node>" -> the number of its newest check
    this.run = null;
    this.name = null;
    this.t = (key) => key;
    this.lang = "en";
    this.pending = 0;         // check requests in flight, to drop a stale answer
    this.solutionOpen = false;
    this.storageWarned = false;
    this.editor = new Editor({
      id: "dojo-code", label: "", minLines: 3, maxLines: 9,
      onSubmit: () => this.check(),
      onInput: (text) => this.saveDraft(text),
    });
    this.parts = {
      head: el("header", { class: "dojo-head" }),
      forward: el("div", { class: "dojo-forward" }),
      scope: el("div", { class: "dojo-scope" }),
      actions: el("div", { class: "dojo-actions" }),
      result: el("div", { class: "dojo-result", id: "dojo-result", "aria-live": "polite" }),
      solution: el("div", { class: "dojo-solution", id: "dojo-solution", hidden: true }),
      storage: el("p", { class: "dojo-storage note", hidden: true }),
      busy: el("div", { class: "dojo-busy", id: "dojo-busy" }),
    };
    this.busy = new BusyNotice(this.parts.busy);  // a check waiting out a busy server counts down here
    this.checkButton = el("button", { type: "button", class: "btn btn-primary", id: "dojo-check" });
    this.solutionButton = el("button", { type: "button", class: "btn", id: "dojo-show-solution", "aria-controls": "dojo-solution", "aria-expanded": "false" });
    this.resetButton = el("button", { type: "button", class: "btn btn-quiet", id: "dojo-reset" });
    this.kbd = el("span", { class: "kbd-hint muted" });
    this.checkButton.addEventListener("click", () => this.check());
    this.solutionButton.addEventListener("click", () => this.toggleSolution());
    this.resetButton.addEventListener("click", () => this.editor.replaceAll(this.starter()));
    add(this.parts.actions, this.checkButton, this.solutionButton, this.resetButton, this.kbd);
    fill(root, this.parts.head, this.parts.forward, this.parts.scope, this.editor.root,
      this.parts.actions, this.parts.storage, this.parts.busy, this.parts.result, this.parts.solution);
  }

  key() {
    return `${this.run?.run_id}/${this.name}`;
  }

  summary() {
    return this.run?.nodes.find((n) => n.name === this.name) ?? null;
  }

  starter() {
    return `d${this.name} = `;
  }

  // The node on screen changed (or the run did): its draft, and its last verdict in this run if any.
  show(run, name) {
    const sameNode = this.run?.config.net === run.config.net && this.run?.config.variant === run.config.variant && this.name === name;
    this.run = run;
    if (!sameNode) {
      this.busy.cancel();  // the notice belongs to the node on screen: a check of another one gives up
      this.name = name;
      this.solutionOpen = false;
      this.editor.value = store.read(store.draftKey(run.config.net, run.config.variant, name), null) ?? this.starter();
    }
    this.draw();
  }

  relabel(t, lang) {
    this.t = t;
    this.lang = lang;
    this.busy.relabel(t);
    if (this.run) this.draw();
  }

  result() {
    return this.results.get(this.key()) ?? null;
  }

  resultFor(runId, node) {
    return this.results.get(`${runId}/${node}`) ?? null;
  }

  draw() {
    const t = this.t;
    const s = this.summary();
    if (!s) return;
    const { gradients, forward } = scopeHint(this.run, this.name);
    this.editor.textarea.setAttribute("aria-label", t("dojo_editor_label", { name: `d${this.name}` }));
    fill(this.parts.head,
      el("h2", { class: "dojo-title", id: "dojo-title" }, t("dojo_write"), " ", el("code", {}, `d${this.name}`)),
      el("span", { class: "detail-shape num", title: t("shape") }, fmt.shape(s.shape)));
    fill(this.parts.forward, s.kind === "param"
      ? el("p", { class: "muted dojo-param" }, t("param_forward"))
      : el("code", { class: "code-line" }, s.forward));
    fill(this.parts.scope,
      el("span", { class: "scope-label", title: t("dojo_given_title") }, t("dojo_given")),
      el("span", { class: "scope-names", id: "dojo-given" }, gradients.length ? codeList(gradients, SHOWN_GRADIENTS)
        : el("span", { class: "muted" }, t("dojo_no_gradients", { name: `d${this.name}` }))),
      el("span", { class: "scope-label" }, t("dojo_also")),
      el("span", { class: "scope-names" }, codeList(forward, SHOWN_FORWARD), el("span", { class: "muted" }, ` · ${t("dojo_scope_rest")}`)));
    this.checkButton.textContent = t("dojo_check");
    this.checkButton.title = t("dojo_check_title");
    this.resetButton.textContent = t("dojo_reset");
    this.resetButton.title = t("dojo_reset_title");
    this.kbd.textContent = t("dojo_keys");
    this.drawSolution();
    this.drawResult();
  }

  toggleSolution() {
    this.solutionOpen = !this.solutionOpen;
    this.drawSolution();
    if (this.solutionOpen) this.parts.solution.scrollIntoView({ block: "nearest" });
  }

  drawSolution() {
    const t = this.t;
    const s = this.summary();
    this.solutionButton.textContent = t(this.solutionOpen ? "dojo_hide_solution" : "dojo_show_solution");
    this.solutionButton.setAttribute("aria-expanded", String(this.solutionOpen));
    this.parts.solution.hidden = !this.solutionOpen;
    if (!this.solutionOpen || !s) return;
    fill(this.parts.solution,
      el("h3", { class: "subhead" }, t("dojo_solution")),
      el("pre", { class: "formula", id: "dojo-formula" }, s.formula),
      s.notes.map((text) => el("p", { class: "note" }, el("strong", {}, `${t("note")}: `), text)));
  }

  saveDraft(text) {
    const key = store.draftKey(this.run.config.net, this.run.config.variant, this.name);
    const ok = text.trim() === this.starter().trim() ? (store.remove(key), true) : store.write(key, text);
    if (!ok && !this.storageWarned) {
      this.storageWarned = true;
      this.parts.storage.textContent = this.t("dojo_no_storage");
      this.parts.storage.hidden = false;
    }
    this.root.querySelector(".verdict")?.classList.toggle("stale", this.result()?.code !== text);
  }

  async check() {
    if (!this.run) return;
    const code = this.editor.value;
    const runId = this.run.run_id;
    const node = this.name;
    const key = this.key();
    const seq = ++this.pending;
    this.latest.set(key, seq);
    this.busy.cancel();  // an older check still waiting out a busy server gives way to this one
    this.checkButton.disabled = true;
    this.root.dataset.checking = "true";
    let entry;
    try {
      entry = { code, verdict: await retrying(() => api.checkCode(runId, node, code, this.lang), this.busy) };
    } catch (err) {
      entry = { code, error: err };
    }
    if (seq === this.pending) {
      this.checkButton.disabled = false;
      delete this.root.dataset.checking;
    }
    if (this.latest.get(key) !== seq) return;  // a newer check of this node was sent: its answer counts
    this.results.set(key, entry);
    let fresh = [];
    // solved: passed here and on the other minibatches (an answer that holds on this batch only is not)
    if (entry.verdict?.passed && !verdictParts.failedBatches(entry.verdict.batches).length) {
      fresh = progress.recordSolved(this.run.config.net, this.run.config.variant, [{ name: node, status: entry.verdict.status }]);
      if (fresh.length) this.hooks.onSolved(fresh);
    }
    entry.fresh = fresh.length > 0;
    if (key !== this.key()) return;  // the learner moved on: the verdict waits for their return
    this.drawResult();
    this.parts.result.scrollIntoView({ block: "nearest" });  // in a short panel the verdict is below the editor
    this.hooks.onResult(runId, node, entry);
  }

  drawResult() {
    const entry = this.result();
    const box = this.parts.result;
    if (!entry) {
      fill(box);
      this.editor.clearMarks();
      delete box.dataset.status;
      return;
    }
    if (entry.error) {
      this.drawError(entry.error);
    } else {
      this.drawVerdict(entry.verdict, entry.fresh);
      this.editor.clearMarks();
      // the one edit that makes it right, marked where it goes (while the code is the code checked)
      const fix = entry.verdict.fix;
      if (fix && entry.code === this.editor.value) this.editor.mark([fix.line], "fix", fix.message, fix.col);
    }
    box.querySelector(".verdict")?.classList.toggle("stale", entry.code !== this.editor.value);
  }

  drawVerdict(verdict, fresh) {
    const t = this.t;
    const box = this.parts.result;
    box.dataset.status = verdict.status;
    const facts = [
      [t("maxdiff"), fmt.diff(verdict.maxdiff)],
      [t("relerr"), fmt.num(verdict.relerr)],
      [t("shape"), verdict.status === "shape_mismatch"
        ? t("dojo_shape_vs", { got: fmt.shape(verdict.shape), want: fmt.shape(verdict.expected_shape) })
        : fmt.shape(verdict.shape)],
    ];
    if (verdict.dtype && verdict.dtype !== verdict.expected_dtype) facts.push(["dtype", `${verdict.dtype} ≠ ${verdict.expected_dtype}`]);
    const solved = progress.loadSolved(this.run.config.net, this.run.config.variant);
    const count = progress.solvedNames(solved, this.run.nodes.map((n) => n.name)).length;
    // the telling line first (the server puts the cause first), then one line each for what needs
    // acting on (an edit that fixes it, another minibatch it fails on, rounding proved); the rest of
    // the findings, the tolerance table and every batch are in the details
    const [first] = verdict.diagnosis;
    fill(box, el("div", { class: `verdict verdict-${verdict.status}`, dataset: { status: verdict.status } },
      el("div", { class: "verdict-head" },
        statusBadge(verdict.status, t, "badge-verdict"),
        el("code", { class: "verdict-var", title: t("dojo_variable") }, verdict.variable),
        verdict.passed ? el("span", { class: "verdict-solved" },
          fresh ? t("dojo_solved_new", { n: count, total: this.run.nodes.length }) : t("dojo_solved")) : null),
      el("p", { class: "compare" }, facts.map(([label, value]) =>
        el("span", { class: "compare-item" }, el("span", { class: "muted" }, label), " ", el("span", { class: "num" }, value)))),
      verdict.nonfinite.length ? el("p", { class: "note note-mismatch" }, t("dojo_nonfinite", { fields: verdict.nonfinite.join(", ") })) : null,
      first ? el("ul", { class: "diagnosis" }, el("li", { class: "telling", id: "dojo-telling" }, first)) : null,
      verdictParts.fixLine(verdict.fix, t, (line, col) => this.editor.goTo(line, col)),
      verdictParts.batchWarning(verdict.batches, t),
      verdictParts.roundingLine(verdict.rounding, t),
      el("div", { class: "strips" }, verdictParts.batchStrip(verdict.batches, t), verdict.exact ? null : verdictParts.lensStrip(verdict.lens, t)),
      verdictParts.details(verdict, t, "dojo-details"),
      verdict.output.length ? [el("h3", { class: "subhead" }, t("dojo_printed")),
        el("pre", { class: "dojo-output" }, verdict.output.join("\n"))] : null));
  }

  drawError(err) {
    const t = this.t;
    const box = this.parts.result;
    box.dataset.status = "error";
    const isCode = err.code === "code_error";
    const text = err instanceof Cancelled ? t("busy_cancelled", { message: err.message })
      : err.status === 0 ? t("network_error")
        : err.status === 429 && err.retryAfter ? `${err.message} (${t("retry_in", { s: err.retryAfter })})`
          : err.message;
    const where = isCode && err.line ? el("button", { type: "button", class: "link dojo-goto" }, t("dojo_goto", { line: err.line })) : null;
    where?.addEventListener("click", () => this.editor.goTo(err.line, err.col));
    fill(box, el("div", { class: "verdict verdict-error", role: "alert", dataset: { kind: err.kind ?? err.code } },
      el("div", { class: "verdict-head" },
        el("span", { class: "badge badge-mismatch badge-verdict" }, isCode ? t(`code_kind_${err.kind}`) : t("dojo_failed")), where),
      el("p", { class: "dojo-error-text", id: "dojo-error" }, text)));
    if (isCode && err.line) this.editor.mark([err.line], "error", text);
    else this.editor.clearMarks();
  }
}
