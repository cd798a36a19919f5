// The Gradients view's controller: the run on screen, the selected node and its figure. It asks the
// API client for documents and hands them to the drawing modules (table, graph, detail, figure,
// summary); nothing here computes a gradient. `app` is the page's shared context (main.js): the one
// state object, the translator, the elements, the plotly.js gate, the busy notice and the banner.

const v = new URL(import.meta.url).search;
const [S, api, table, graph, detail, figure, summary, banner, progress, retry, nets] = await Promise.all(
  ["state", "api", "table", "graph", "detail", "figure", "summary", "banner", "progress", "retry", "nets"]
    .map((name) => import(`./${name}.js${v}`)));

export class Gradients {
  constructor(app) {
    this.app = app;
    this.run = null;         // the run document on screen
    this.nodeDoc = null;     // the node document on screen
    this.order = [];         // node names in table (backward) order
    this.pendingRun = null;  // the config of the run request in flight, if any
    this.graphLayout = null; // the graph's layout on screen (which rows are folded)
    this.runSeq = 0;         // request counters: an answer that arrives after a newer request is dropped
    this.nodeSeq = 0;
    this.paintSeq = 0;
    this.firstHeatmapMarked = false;
    this.figureSource = "manual";  // the figure beside the dojo: the project's manual backward, or "yours"
    this.cache = new api.NodeCache(32);
    this.dojo = null;        // set by main.js once the dojo exists
    this.sampler = null;     // the sample selector (sample.js), set by main.js
    this.intFields = S.FIELDS.filter((f) => f.kind === "int").map((f) => f.name);
    // the header's config fields (nets.js): they show the config on its way, else the state
    this.form = new nets.ConfigForm(app, () => ({ values: this.pendingRun ?? this.state, run: this.run }));
  }

  get state() {
    return this.app.state;
  }

  // ---- drawing -----------------------------------------------------------------------------------

  // The config fields show the run on screen; only a successful run rewrites them, so a rejected
  // value stays in its field (marked) until the user corrects it. The size fields are the network's.
  showConfig() {
    this.form.show(this.state);
  }

  readControls() {
    return this.form.read();
  }

  loadNets() {
    this.form.load();
  }

  // The graph for the box's width; the height the box allows (its CSS max-height) decides whether
  // rows far from the selected node fold into the overview.
  drawGraph() {
    if (!this.run) return;
    const { dom, t } = this.app;
    const budget = Number.parseFloat(getComputedStyle(dom.graphWrap).maxHeight);
    const layout = graph.layoutGraph(this.run.graph, dom.graphWrap.clientWidth,
      { selected: this.state.node, budget: Number.isFinite(budget) ? budget : Infinity });
    this.graphLayout = layout;
    graph.drawGraph(dom.graph, layout, { selected: this.state.node, selectable: new Set(this.order), t });
    graph.drawLegend(dom.legend, t, this.run.graph.nodes.some((n) => n.skipped_by), layout.folded);
    graph.revealNode(dom.graphWrap, layout, this.state.node);
  }

  // A node selected: its box marked, or (when it is folded into the overview) the graph laid out
  // again around it.
  showGraphSelection(name) {
    const { dom } = this.app;
    if (this.graphLayout && !graph.shownInFull(this.graphLayout, name)) {
      this.drawGraph();
      return;
    }
    graph.markSelectedNode(dom.graph, name);
    if (this.graphLayout) graph.revealNode(dom.graphWrap, this.graphLayout, name);
  }

  solvedSet() {
    return new Set(progress.solvedNames(progress.loadSolved(this.run.config.net, this.run.config.variant), this.order));
  }

  // The belt and the ✓ in the table: from localStorage, for the variant on screen.
  drawProgress() {
    if (!this.run) return;
    const solved = this.solvedSet();
    progress.drawBelt(this.app.dom.belt, solved.size, this.order.length, this.app.t);
    table.markSolved(this.app.dom.tbody, solved, this.app.t);
  }

  drawRun() {
    const { dom, t } = this.app;
    const run = this.run;
    summary.drawSummary(dom.loss, dom.counts, dom.dataInfo, run, t);
    summary.drawTrained(dom.trained, run.config.train_steps, t);
    summary.drawBatch(dom.batch, run.batch, t);
    table.drawTable(dom.tbody, run.nodes, t, this.solvedSet());
    table.markSelected(dom.tbody, this.state.node);
    this.drawProgress();
    this.drawGraph();
  }

  drawEmpty(text) {
    const { dom } = this.app;
    summary.drawSummaryMessage(dom.loss, dom.counts, text);
    table.drawTableMessage(dom.tbody, text);
    detail.drawDetailMessage(dom.detail, text);
    figure.drawFigureMessage(text);  // not "loading the plotting library…" under an error
  }

  // Everything again in the language on screen (the documents are re-fetched in it by relang()).
  redraw() {
    const { dom, t } = this.app;
    this.form.draw(this.pendingRun?.net ?? this.state.net);
    if (this.run) this.drawRun();
    else this.drawEmpty(t(document.body.dataset.state === "loading" ? "loading" : "no_run"));
    if (this.nodeDoc) detail.drawDetail(dom.detail, this.nodeDoc, t);
    this.sampler?.show(this.nodeDoc, t);
    this.showSourceToggle();
  }

  // ---- runs --------------------------------------------------------------------------------------

  // `how`: the history entry of the step ("push" for the user's own step, "replace" otherwise).
  async loadRun(next, { timing = null, how = "replace" } = {}) {
    const seq = ++this.runSeq;
    const app = this.app;
    app.busy.cancel("run");  // an older run request waiting out a busy server gives way
    this.pendingRun = next;
    document.body.dataset.state = "loading";
    let doc;
    try {
      doc = await retry.retrying(() => api.createRun(S.runConfig(next), this.intFields, S.SIZE_FIELDS, this.state.lang),
        app.busy, "run");
    } catch (err) {
      if (seq !== this.runSeq) return;
      this.pendingRun = null;
      app.plotly.open();
      document.body.dataset.state = this.run ? "ready" : "error";
      if (!this.run) this.drawEmpty(app.t("no_run"));
      // another network's fields go back to the network on screen (a rejected size stays in its field)
      if (next.net !== this.state.net && this.run) this.showConfig();
      app.reportError(err);
      S.writeUrl(this.state);  // the address shows what is on screen, not the config that failed
      return;
    }
    if (seq !== this.runSeq) return;
    performance.mark("run-received");
    this.pendingRun = null;
    banner.clearError(app.dom.banner, app.dom.bannerText, app.dom.form);
    const netChanged = this.run && this.run.config.net !== doc.config.net;
    // only the config comes from the request (seeds beyond 2^53 stay as typed), its sizes from the
    // answer (the network's defaults resolved); node, scale and language may have changed meanwhile
    Object.assign(this.state, S.runConfig(next), S.sizesOf(doc.config));
    this.run = doc;
    this.order = doc.nodes.map((n) => n.name);
    document.body.dataset.runId = doc.run_id;
    document.body.dataset.net = doc.config.net;
    this.showConfig();
    this.drawRun();
    performance.mark("run-drawn");
    this.loadNets();  // only if an earlier attempt failed
    // another network may not have the node on screen: its first row then (no "unknown node" error)
    const node = netChanged && !this.order.includes(this.state.node) ? this.order[0] : this.state.node || this.order[0];
    await this.selectNode(node, { timing, how });
  }

  // The header's network choice: the new network with its own sizes (their defaults until the run
  // says them), the same seed, dtype and variant.
  switchNet(net) {
    const next = S.withNet({ ...this.state, ...this.readControls() }, net);
    if (this.pendingRun && S.sameConfig(next, this.pendingRun)) return;
    this.form.draw(net);
    this.loadRun(next, { how: "push" });
  }

  applyConfig({ timing = null } = {}) {
    const next = { ...this.state, ...this.readControls() };
    // Enter in a field fires both "change" and "submit": one request is enough
    if (this.pendingRun && S.sameConfig(next, this.pendingRun)) return;
    if (this.run && !this.pendingRun && S.sameConfig(next, this.state)) {
      banner.clearError(this.app.dom.banner, this.app.dom.bannerText, this.app.dom.form);  // the form is back to what is shown
      return;
    }
    this.loadRun(next, { timing, how: "push" });
  }

  // The language changed: the run's notes and the node's figure come again, in it (both are cached
  // by the server, so this costs a few ms; the labels were redrawn at once).
  relang() {
    if (this.run && !this.pendingRun) this.loadRun({ ...this.state });
  }

  // ---- nodes -------------------------------------------------------------------------------------

  // `focusRow`: the keyboard moved the selection, so the focus moves with it (to the row's button).
  async selectNode(name, { timing = null, how = "replace", focusRow = false } = {}) {
    const seq = ++this.nodeSeq;
    const { dom } = this.app;
    const state = this.state;
    const runId = this.run.run_id;
    this.app.busy.cancel("node");
    state.node = name;
    S.writeUrl(state, how);
    table.markSelected(dom.tbody, name);
    if (focusRow) dom.tbody.querySelector("tr.selected .node-link")?.focus({ preventScroll: true });
    this.showGraphSelection(name);
    this.figureSource = "manual";  // a node opens on the reference figure; its verdict is one click away
    if (state.dojo === "1") this.dojo.show(this.run, name);
    this.showSourceToggle();
    this.app.plotly.open();
    const key = [runId, name, state.diff_scale, state.lang, state.sample];
    let doc;
    try {
      doc = await retry.retrying(() => this.cache.get(...key), this.app.busy, "node");
    } catch (err) {
      if (seq !== this.nodeSeq) return;
      // a permalink's sample beyond this batch: say so, then show sample 0
      if (err.status === 422 && err.field === "sample" && state.sample !== "0") {
        this.app.reportError(err);
        state.sample = "0";
        await this.selectNode(name, { timing });
        return;
      }
      document.body.dataset.state = "ready";
      this.app.reportError(err);
      // an unknown node in a hand-edited link: say so, then show the first node rather than nothing
      if (err.status === 404 && this.order.length && name !== this.order[0]) await this.selectNode(this.order[0], { timing });
      return;
    }
    if (seq !== this.nodeSeq) return;
    if (doc.name !== name) {  // the seed notebook's alias (zprebn, apreact, a) resolved by the server
      state.node = doc.name;
      S.writeUrl(state);
      table.markSelected(dom.tbody, doc.name);
      this.showGraphSelection(doc.name);
      if (state.dojo === "1") this.dojo.show(this.run, doc.name);
    }
    this.nodeDoc = doc;
    detail.drawDetail(dom.detail, doc, this.app.t);
    this.sampler?.show(doc, this.app.t);
    await this.showFigure(seq, timing);
    this.prefetchNeighbours(doc.name, runId);
  }

  async showFigure(seq, timing) {
    try {
      await this.app.plotly.ready;
    } catch {
      figure.drawFigureMessage(this.app.t("plotly_failed"));
      document.body.dataset.state = "ready";
      return;
    }
    if (seq !== this.nodeSeq) return;
    if (!(await this.paintFigure(seq))) return;
    if (!this.firstHeatmapMarked) {
      this.firstHeatmapMarked = true;
      performance.mark("first-heatmap");
    }
    if (timing) performance.measure(timing, `${timing}-start`);
    document.body.dataset.state = "ready";
  }

  // The figure of the node on screen: the server's node figure, or the dojo verdict's (value, yours,
  // autograd, |yours − autograd|). False when a newer node or paint took over meanwhile.
  async paintFigure(seq = this.nodeSeq) {
    const paint = ++this.paintSeq;
    const { dom } = this.app;
    const verdict = this.figureSource === "yours" ? this.verdictOnScreen() : null;
    const doc = this.nodeDoc;
    if (!verdict && (!doc || doc.name !== this.state.node)) return false;  // its node document is on its way
    document.getElementById("figure-placeholder")?.remove();
    if (verdict) await figure.drawFigure(dom.figure, verdict.figure, `d${verdict.node}-yours`);
    else await figure.drawFigure(dom.figure, doc.figure, `${doc.name}-${doc.run_id}`);
    if (seq !== this.nodeSeq || paint !== this.paintSeq) return false;
    await new Promise((resolve) => requestAnimationFrame(resolve));  // the frame that paints it
    if (paint !== this.paintSeq) return false;
    dom.figure.dataset.drawn = verdict ? `${this.run.run_id}/${verdict.node}/yours`
      : `${doc.run_id}/${doc.name}/${doc.figure.layout.meta?.diff_scale ?? this.state.diff_scale}`;
    return true;
  }

  verdictOnScreen() {
    if (!this.run || this.state.dojo !== "1") return null;
    const verdict = this.dojo.resultFor(this.run.run_id, this.state.node)?.verdict;
    return verdict?.figure ? verdict : null;
  }

  // "manual | your dh" above the figure, while the dojo has a verdict with a figure for this node.
  // The verdict's figure comes with a linear |diff| panel (the check has no scale): the lin/log
  // toggle is then disabled, and says so beside itself.
  showSourceToggle() {
    const { dom, t } = this.app;
    const verdict = this.verdictOnScreen();
    if (!verdict) this.figureSource = "manual";
    const yours = this.figureSource === "yours";
    dom.figureSource.hidden = !verdict;
    dom.sourceYours.textContent = t("source_yours", { name: `d${this.state.node}` });
    for (const b of dom.sourceButtons) b.setAttribute("aria-pressed", String(b.dataset.source === this.figureSource));
    for (const b of dom.scaleButtons) b.disabled = yours;
    dom.scaleGroup.title = yours ? t("scale_yours_title") : "";
    dom.scaleNote.hidden = !yours;
    dom.scaleNote.textContent = t("scale_yours");
    dom.scaleNote.title = t("scale_yours_title");
    dom.figure.dataset.source = this.figureSource;
  }

  showFigureSource(source) {
    if (source === this.figureSource) return;
    this.figureSource = source;
    this.showSourceToggle();
    this.app.plotly.ready.then(() => this.paintFigure()).catch(() => {});
  }

  // A dojo check came back for the node on screen: a verdict shows the learner's gradient against
  // autograd; an error goes back to the manual figure.
  dojoResult(runId, node, entry) {
    if (this.run?.run_id !== runId || this.state.node !== node) return;
    const next = entry.verdict?.figure ? "yours" : "manual";
    const repaint = next === "yours" || this.figureSource === "yours";
    this.figureSource = next;
    this.showSourceToggle();
    if (repaint) this.app.plotly.ready.then(() => this.paintFigure()).catch(() => {});
  }

  // The node's side panel: detail or dojo.
  showSide() {
    const { dom } = this.app;
    const on = this.state.dojo === "1";
    document.body.dataset.dojo = this.state.dojo;
    for (const b of dom.sideTabs) b.setAttribute("aria-selected", String(b.dataset.side === this.state.dojo));
    dom.detail.hidden = on;
    dom.dojo.hidden = !on;
    dom.openCell.hidden = !on;
    if (on && this.run && this.state.node) this.dojo.show(this.run, this.state.node);
    const wasYours = this.figureSource === "yours";
    this.showSourceToggle();
    if (wasYours && this.figureSource !== "yours") this.paintFigure().catch(() => {});
  }

  // The rows above and below are the likeliest next stop (arrow keys): fetch them while idle. A
  // prefetch never waits out a busy server (no notice): the click that needs the node does.
  prefetchNeighbours(name, runId) {
    const i = this.order.indexOf(name);
    const { diff_scale: scale, lang, sample } = this.state;
    setTimeout(() => {
      if (!this.run || this.run.run_id !== runId) return;
      for (const j of [i + 1, i - 1]) if (this.order[j]) this.cache.get(runId, this.order[j], scale, lang, sample).catch(() => {});
    }, 30);
  }

  userSelect(name, { how = "push", focusRow = false } = {}) {
    if (!this.run || !this.order.includes(name)) return;
    if (name === this.state.node && this.nodeDoc?.name === name) {
      if (focusRow) this.app.dom.tbody.querySelector("tr.selected .node-link")?.focus({ preventScroll: true });
      return;
    }
    performance.mark("node-switch-start");
    this.selectNode(name, { timing: "node-switch", how, focusRow });
  }
}
