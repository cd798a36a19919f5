// The page's controller: it owns the one state object, asks the API client for documents, and hands
// them to the drawing modules. Nothing here computes a gradient; everything shown comes from the server.

// Sibling modules are imported with this module's own ?v=<static_version>, so a release busts every
// file at once (a bare "./state.js" would drop the query and could come stale from the HTTP cache).
// The template modulepreloads the same URLs, so these resolve without a request waterfall.
performance.mark("main-start");
const v = new URL(import.meta.url).search;
const [S, api, i18n, table, graph, detail, figure, summary, keyboard, banner] = await Promise.all(
  ["state", "api", "i18n", "table", "graph", "detail", "figure", "summary", "keyboard", "banner"]
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

function drawRun() {
  summary.drawSummary(dom.loss, dom.counts, dom.dataInfo, run, t);
  summary.drawBatch(dom.batch, run.batch, t);
  table.drawTable(dom.tbody, run.nodes, t);
  table.markSelected(dom.tbody, state.node);
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
}

function reportError(err) {
  const message = err instanceof api.ApiError && err.status !== 0 ? err.message : t("network_error");
  banner.showError(dom.banner, dom.bannerText, message, err.field ?? null, dom.form);
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
  dom.placeholder?.remove();
  dom.placeholder = null;
  await figure.drawFigure(dom.figure, doc.figure, `${doc.name}-${doc.run_id}`);
  if (seq !== nodeSeq) return;
  await new Promise((resolve) => requestAnimationFrame(resolve));  // the frame that paints it
  dom.figure.dataset.drawn = `${doc.run_id}/${doc.name}/${doc.figure.layout.meta?.diff_scale ?? state.diff_scale}`;
  if (!firstHeatmapMarked) {
    firstHeatmapMarked = true;
    performance.mark("first-heatmap");
  }
  if (timing) performance.measure(timing, `${timing}-start`);
  document.body.dataset.state = "ready";
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

dom.bannerClose.addEventListener("click", () => banner.clearError(dom.banner, dom.bannerText, dom.form));

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
  if (!order.length) return;
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

// ---- start ---------------------------------------------------------------------------------------

showConfig();
redrawAll();
loadRun(state);
