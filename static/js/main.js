// The page's controller: it owns the one state object, asks the API client for documents, and hands
// them to the drawing modules. Nothing here computes a gradient; everything shown comes from the server.

// Sibling modules are imported with this module's own ?v=<static_version>, so a release busts every
// file at once (a bare "./state.js" would drop the query and could come stale from the HTTP cache).
// The template modulepreloads the same URLs, so these resolve without a request waterfall.
performance.mark("main-start");
const v = new URL(import.meta.url).search;
const [S, api, i18n, table, graph, detail, figure, summary, keyboard, banner, progress, dojoModule, grade, train] = await Promise.all(
  ["state", "api", "i18n", "table", "graph", "detail", "figure", "summary", "keyboard", "banner", "progress", "dojo", "grade", "train"]
    .map((name) => import(`./${name}.js${v}`)));

performance.mark("modules-ready");
const $ = (id) => document.getElementById(id);
const dom = {
  form: $("controls"),
  seed: $("ctl-seed"),
  newBatch: $("new-batch"),
  banner: $("banner"),
  bannerText: $("banner-text"),
  bannerClose: $("banner-close"),
  tbody: $("cmp-body"),
  loss: $("loss-value"),
  counts: $("summary-counts"),
  dataInfo: $("data-info"),
  batch: $("batch-list"),
  graph: $("graph"),
  graphWrap: $("graph-wrap"),
  legend: $("graph-legend"),
  detail: $("detail"),
  figure: $("figure"),
  placeholder: $("figure-placeholder"),
  scaleButtons: [...document.querySelectorAll("[data-scale]")],
  langButtons: [...document.querySelectorAll("[data-lang]")],
  viewTabs: [...document.querySelectorAll(".view-tab[data-view]")],
  views: { grad: $("view-grad"), train: $("view-train") },
  trainForm: $("train-controls"),
  sideTabs: [...document.querySelectorAll("[role=tab][data-side]")],
  dojo: $("dojo"),
  openCell: $("open-cell"),
  figureSource: $("figure-source"),
  sourceButtons: [...document.querySelectorAll("[data-source]")],
  sourceYours: $("source-yours"),
  belt: $("belt"),
  trained: $("summary-trained"),
};

const INT_FIELDS = S.FIELDS.filter((f) => f.kind === "int").map((f) => f.name);

let state = S.fromQuery(location.search);
let t = i18n.translator(state.lang);
let run = null;       // the run document on screen
let nodeDoc = null;   // the node document on screen
let order = [];       // node names in table (backward) order
let pendingRun = null;  // the config of the run request in flight, if any
let runSeq = 0;       // request counters: an answer that arrives after a newer request is dropped
let nodeSeq = 0;
let firstHeatmapMarked = false;
let figureSource = "manual";  // the figure beside the dojo: the project's manual backward, or "yours"
let paintSeq = 0;
const nodeCache = new api.NodeCache(32);

// plotly.js takes ~1 s of main-thread parsing. It is let in once the first node has been requested
// (so the server works while the browser parses), or after a short grace period if the server is slow.
let openPlotlyGate;
const plotlyReady = new Promise((resolve) => { openPlotlyGate = resolve; })
  .then(() => figure.loadPlotly(document.body.dataset.plotlySrc))
  .then((Plotly) => {
    performance.mark("plotly-ready");
    return Plotly;
  });
plotlyReady.catch(() => {});  // reported where a figure waits for it
setTimeout(() => openPlotlyGate(), 300);

// ---- drawing -------------------------------------------------------------------------------------

// The config fields show the run on screen; only a successful run rewrites them, so a rejected value
// stays in its field (marked) until the user corrects it.
function showConfig() {
  for (const name of S.CONFIG_FIELDS) dom.form.elements[name].value = state[name];
}

function showToggles() {
  for (const b of dom.langButtons) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
  for (const b of dom.scaleButtons) b.setAttribute("aria-pressed", String(b.dataset.scale === state.diff_scale));
}

function readControls() {
  return Object.fromEntries(S.CONFIG_FIELDS.map((name) => [name, dom.form.elements[name].value.trim()]));
}

function drawGraph() {
  if (!run) return;
  const layout = graph.layoutGraph(run.graph, dom.graphWrap.clientWidth);
  graph.drawGraph(dom.graph, layout, { selected: state.node, selectable: new Set(order), t });
}

function solvedSet() {
  return new Set(progress.solvedNames(progress.loadSolved(state.variant), order));
}

// The belt and the ✓ in the table: from localStorage, for the variant on screen.
function drawProgress() {
  if (!run) return;
  const solved = solvedSet();
  progress.drawBelt(dom.belt, solved.size, order.length, t);
  table.markSolved(dom.tbody, solved, t);
}

function drawRun() {
  summary.drawSummary(dom.loss, dom.counts, dom.dataInfo, run, t);
  summary.drawTrained(dom.trained, run.config.train_steps, t);
  summary.drawBatch(dom.batch, run.batch, t);
  table.drawTable(dom.tbody, run.nodes, t, solvedSet());
  table.markSelected(dom.tbody, state.node);
  drawProgress();
  drawGraph();
}

function drawEmpty(text) {
  summary.drawSummaryMessage(dom.loss, dom.counts, text);
  table.drawTableMessage(dom.tbody, text);
  detail.drawDetailMessage(dom.detail, text);
}

function redrawAll() {
  i18n.translatePage(document, state.lang, t);
  graph.drawLegend(dom.legend, t);
  showToggles();
  if (run) drawRun();
  else drawEmpty(t(document.body.dataset.state === "loading" ? "loading" : "no_run"));
  if (nodeDoc) detail.drawDetail(dom.detail, nodeDoc, t);
  dojo.relabel(t, state.lang);
  grader.relabel(t);
  trainView.relabel(t);
  showSourceToggle();
}

function reportError(err, form = dom.form) {
  const message = err instanceof api.ApiError && err.status !== 0 ? err.message : t("network_error");
  banner.showError(dom.banner, dom.bannerText, message, err.field ?? null, form);
}

function clearErrors() {
  banner.clearError(dom.banner, dom.bannerText, dom.form);
  banner.clearFieldMarks(dom.trainForm);
}

// ---- runs and nodes ------------------------------------------------------------------------------

async function loadRun(next, timing = null) {
  const seq = ++runSeq;
  pendingRun = next;
  document.body.dataset.state = "loading";
  let doc;
  try {
    doc = await api.createRun(S.runConfig(next), INT_FIELDS);
  } catch (err) {
    if (seq !== runSeq) return;
    pendingRun = null;
    openPlotlyGate();
    document.body.dataset.state = run ? "ready" : "error";
    if (!run) drawEmpty(t("no_run"));
    reportError(err);
    return;
  }
  if (seq !== runSeq) return;
  performance.mark("run-received");
  pendingRun = null;
  banner.clearError(dom.banner, dom.bannerText, dom.form);
  // only the config comes from the request: node, scale and language may have changed meanwhile
  state = { ...state, ...S.runConfig(next) };
  run = doc;
  order = doc.nodes.map((n) => n.name);
  document.body.dataset.runId = doc.run_id;
  showConfig();
  drawRun();
  performance.mark("run-drawn");
  await selectNode(state.node || order[0], timing);
}

function applyConfig(timing = null) {
  const next = { ...state, ...readControls() };
  // Enter in a field fires both "change" and "submit": one request is enough
  if (pendingRun && S.sameConfig(next, pendingRun)) return;
  if (run && !pendingRun && S.sameConfig(next, state)) {
    banner.clearError(dom.banner, dom.bannerText, dom.form);  // the form is back to what is shown
    return;
  }
  loadRun(next, timing);
}

async function selectNode(name, timing = null) {
  const seq = ++nodeSeq;
  const runId = run.run_id;
  state.node = name;
  S.writeUrl(state);
  table.markSelected(dom.tbody, name);
  graph.markSelectedNode(dom.graph, name);
  figureSource = "manual";  // a node opens on the reference figure; its verdict is one click away
  if (state.dojo === "1") dojo.show(run, name);
  showSourceToggle();
  const pending = nodeCache.get(runId, name, state.diff_scale);
  openPlotlyGate();
  let doc;
  try {
    doc = await pending;
  } catch (err) {
    if (seq !== nodeSeq) return;
    document.body.dataset.state = "ready";
    reportError(err);
    // an unknown node in a hand-edited link: say so, then show the first node rather than nothing
    if (err.status === 404 && order.length && name !== order[0]) await selectNode(order[0], timing);
    return;
  }
  if (seq !== nodeSeq) return;
  if (doc.name !== name) {  // the seed notebook's alias (zprebn, apreact, a) resolved by the server
    state.node = doc.name;
    S.writeUrl(state);
    table.markSelected(dom.tbody, doc.name);
    graph.markSelectedNode(dom.graph, doc.name);
    if (state.dojo === "1") dojo.show(run, doc.name);
  }
  nodeDoc = doc;
  detail.drawDetail(dom.detail, doc, t);
  await showFigure(doc, seq, timing);
  prefetchNeighbours(doc.name, runId);
}

async function showFigure(doc, seq, timing) {
  try {
    await plotlyReady;
  } catch {
    if (dom.placeholder) dom.placeholder.textContent = t("plotly_failed");
    document.body.dataset.state = "ready";
    return;
  }
  if (seq !== nodeSeq) return;
  if (!(await paintFigure(seq))) return;
  if (!firstHeatmapMarked) {
    firstHeatmapMarked = true;
    performance.mark("first-heatmap");
  }
  if (timing) performance.measure(timing, `${timing}-start`);
  document.body.dataset.state = "ready";
}

// The figure of the node on screen: the server's node figure, or the dojo verdict's (value, yours,
// autograd, |yours − autograd|). False when a newer node or paint took over meanwhile.
async function paintFigure(seq = nodeSeq) {
  const paint = ++paintSeq;
  const verdict = figureSource === "yours" ? verdictOnScreen() : null;
  const doc = nodeDoc;
  if (!verdict && (!doc || doc.name !== state.node)) return false;  // its node document is on its way
  dom.placeholder?.remove();
  dom.placeholder = null;
  if (verdict) await figure.drawFigure(dom.figure, verdict.figure, `d${verdict.node}-yours`);
  else await figure.drawFigure(dom.figure, doc.figure, `${doc.name}-${doc.run_id}`);
  if (seq !== nodeSeq || paint !== paintSeq) return false;
  await new Promise((resolve) => requestAnimationFrame(resolve));  // the frame that paints it
  if (paint !== paintSeq) return false;
  dom.figure.dataset.drawn = verdict ? `${run.run_id}/${verdict.node}/yours`
    : `${doc.run_id}/${doc.name}/${doc.figure.layout.meta?.diff_scale ?? state.diff_scale}`;
  return true;
}

function verdictOnScreen() {
  if (!run || state.dojo !== "1") return null;
  const verdict = dojo.resultFor(run.run_id, state.node)?.verdict;
  return verdict?.figure ? verdict : null;
}

// "manual | your dh" above the figure, while the dojo has a verdict with a figure for this node.
function showSourceToggle() {
  const verdict = verdictOnScreen();
  if (!verdict) figureSource = "manual";
  dom.figureSource.hidden = !verdict;
  dom.sourceYours.textContent = t("source_yours", { name: `d${state.node}` });
  for (const b of dom.sourceButtons) b.setAttribute("aria-pressed", String(b.dataset.source === figureSource));
  // the verdict's figure has one |diff| scale (linear): the toggle applies to the manual figure only
  for (const b of dom.scaleButtons) b.disabled = figureSource === "yours";
  dom.figure.dataset.source = figureSource;
}

function showFigureSource(source) {
  if (source === figureSource) return;
  figureSource = source;
  showSourceToggle();
  plotlyReady.then(() => paintFigure()).catch(() => {});
}

// ---- the dojo: node panel, progress, whole cell ---------------------------------------------------

function showSide() {
  const on = state.dojo === "1";
  document.body.dataset.dojo = state.dojo;
  for (const b of dom.sideTabs) b.setAttribute("aria-selected", String(b.dataset.side === state.dojo));
  dom.detail.hidden = on;
  dom.dojo.hidden = !on;
  dom.openCell.hidden = !on;
  if (on && run && state.node) dojo.show(run, state.node);
  const wasYours = figureSource === "yours";
  showSourceToggle();
  if (wasYours && figureSource !== "yours") paintFigure().catch(() => {});
}

const dojo = new dojoModule.Dojo(dom.dojo, {
  onResult(runId, node, entry) {
    if (run?.run_id !== runId || state.node !== node) return;
    // a verdict: show the learner's gradient against autograd; an error: back to the manual figure
    const next = entry.verdict?.figure ? "yours" : "manual";
    const repaint = next === "yours" || figureSource === "yours";
    figureSource = next;
    showSourceToggle();
    if (repaint) plotlyReady.then(() => paintFigure()).catch(() => {});
  },
  onSolved: () => drawProgress(),
});

const grader = new grade.CellGrader({
  dialog: $("cell-dialog"), close: $("cell-close"), code: $("cell-code"), result: $("cell-result"),
}, {
  getRun: () => run,
  onSolved: () => drawProgress(),
});

// ---- the Train view ------------------------------------------------------------------------------

function showTrainForm() {
  for (const f of S.TRAIN_FIELDS) dom.trainForm.elements[f.name].value = state[f.name];
}

function readTrainForm() {
  for (const f of S.TRAIN_FIELDS) state[f.name] = dom.trainForm.elements[f.name].value.trim();
  S.writeUrl(state);
  return S.trainParams(state);
}

const trainView = new train.TrainView({
  form: dom.trainForm,
  start: $("train-start"),
  stop: $("train-stop"),
  section: $("train-status"),
  bar: $("train-bar"),
  barFill: $("train-bar-fill"),
  numbers: $("train-numbers"),
  pill: $("train-pill"),
  result: $("train-result"),
  charts: { loss: $("chart-loss"), audit: $("chart-audit"), ratio: $("chart-ratio"), saturation: $("chart-saturation") },
}, {
  readForm: readTrainForm,
  plotly: () => {
    openPlotlyGate();
    return plotlyReady;
  },
  showError: (err) => reportError(err, dom.trainForm),
  clearError: clearErrors,
  busyChanged: (running) => { document.body.dataset.training = String(running); },
  // "Open gradients of the trained network": the gradient view of the run config the stream returned
  openGradients(rc) {
    const next = { ...state, seed: String(rc.seed), batch_size: String(rc.batch_size), n_embd: String(rc.n_embd),
      n_hidden: String(rc.n_hidden), train_steps: String(rc.train_steps),
      train_schedule_steps: String(rc.train_schedule_steps ?? 0) };
    loadRun(next);  // first: with this request pending, showView starts no other
    state.view = "grad";
    showView();
  },
});

function showView() {
  const isTrain = state.view === "train";
  document.body.dataset.view = state.view;
  for (const b of dom.viewTabs) b.setAttribute("aria-pressed", String(b.dataset.view === state.view));
  dom.views.grad.hidden = isTrain;
  dom.views.train.hidden = !isTrain;
  dom.form.hidden = isTrain;
  dom.trainForm.hidden = !isTrain;
  S.writeUrl(state);
  clearErrors();
  showSourceToggle();
  if (isTrain) {
    trainView.show();
  } else if (!run && !pendingRun) {
    loadRun(state);  // a page opened on the Train view loads its gradients only when they are wanted
  }
}

// The rows above and below are the likeliest next stop (arrow keys): fetch them while idle.
function prefetchNeighbours(name, runId) {
  const i = order.indexOf(name);
  const scale = state.diff_scale;
  setTimeout(() => {
    if (!run || run.run_id !== runId) return;
    for (const j of [i + 1, i - 1]) if (order[j]) nodeCache.get(runId, order[j], scale).catch(() => {});
  }, 30);
}

function userSelect(name) {
  if (!run || !order.includes(name) || (name === state.node && nodeDoc?.name === name)) return;
  performance.mark("node-switch-start");
  selectNode(name, "node-switch");
}

// ---- events --------------------------------------------------------------------------------------

dom.form.addEventListener("change", (event) => {
  if (event.target.dataset.field) applyConfig();
});
dom.form.addEventListener("submit", (event) => {
  event.preventDefault();  // Enter in a field: apply now, never navigate
  applyConfig();
});
dom.form.addEventListener("input", (event) => {
  // typing in a field the server rejected takes its red mark away; the message stays until resolved
  event.target.removeAttribute("aria-invalid");
  event.target.closest(".field")?.classList.remove("invalid");
});

dom.newBatch.addEventListener("click", () => {
  // 31 bits, like the lecture's seed: a fresh parameter draw and a fresh minibatch
  dom.seed.value = String(crypto.getRandomValues(new Uint32Array(1))[0] >>> 1);
  performance.mark("new-batch-start");
  applyConfig("new-batch");
});

dom.bannerClose.addEventListener("click", clearErrors);

for (const tab of dom.viewTabs) {
  tab.addEventListener("click", () => {
    if (tab.dataset.view === state.view) return;
    state.view = tab.dataset.view;
    showView();
  });
}

for (const tab of dom.sideTabs) {
  tab.addEventListener("click", () => {
    if (tab.dataset.side === state.dojo) return;
    state.dojo = tab.dataset.side;
    S.writeUrl(state);
    showSide();
  });
}

for (const button of dom.sourceButtons) button.addEventListener("click", () => showFigureSource(button.dataset.source));

dom.openCell.addEventListener("click", () => grader.open());

dom.trained.addEventListener("click", (event) => {
  if (!event.target.closest("#at-init")) return;
  dom.form.elements.train_steps.value = "0";  // back to the gradients at initialisation
  dom.form.elements.train_schedule_steps.value = "0";
  applyConfig();
});

dom.trainForm.addEventListener("input", (event) => {
  event.target.removeAttribute("aria-invalid");
  event.target.closest(".field")?.classList.remove("invalid");
});

// Another tab solved a node: the belt here follows.
window.addEventListener("storage", () => drawProgress());

dom.tbody.addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-node]");
  if (row) userSelect(row.dataset.node);
});

dom.graph.addEventListener("click", (event) => {
  const node = event.target.closest(".gnode");
  if (node && !node.classList.contains("inert")) userSelect(node.dataset.node);
});

for (const button of dom.scaleButtons) {
  button.addEventListener("click", () => {
    if (button.dataset.scale === state.diff_scale) return;
    state.diff_scale = button.dataset.scale;
    showToggles();
    if (run) selectNode(state.node);
    else S.writeUrl(state);
  });
}

for (const button of dom.langButtons) {
  button.addEventListener("click", () => {
    if (button.dataset.lang === state.lang) return;
    state.lang = button.dataset.lang;
    t = i18n.translator(state.lang);
    S.writeUrl(state);
    redrawAll();
  });
}

keyboard.installArrowKeys((step) => {
  if (!order.length || state.view !== "grad" || grader.isOpen) return;
  const i = Math.max(0, order.indexOf(state.node));
  const j = Math.min(order.length - 1, Math.max(0, i + step));
  if (j !== i) userSelect(order[j]);
});

// The graph is laid out for the panel's width; redo it when that changes (not on every pixel).
let lastGraphWidth = 0;
new ResizeObserver(() => {
  const width = dom.graphWrap.clientWidth;
  if (Math.abs(width - lastGraphWidth) < 8) return;
  lastGraphWidth = width;
  drawGraph();
}).observe(dom.graphWrap);

figure.followPanelSize(dom.figure);
// the training charts too: a stream may start drawing them while the gradient view is on screen
for (const id of ["chart-loss", "chart-audit", "chart-ratio", "chart-saturation"]) figure.followPanelSize($(id));

// ---- start ---------------------------------------------------------------------------------------

showConfig();
showTrainForm();
redrawAll();
showSide();
showView();
