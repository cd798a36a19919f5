// The page's start: it owns the one state object (its URL form is the permalink and the history
// entry), builds the views' controllers (gradients.js, dojo.js, grade.js, train.js) and wires the
// events to them. Nothing here computes a gradient or draws; everything shown comes from the server.

// Sibling modules are imported with this module's own ?v=<static_version>, so a release busts every
// file at once (a bare "./state.js" would drop the query and could come stale from the HTTP cache).
// The template modulepreloads the same URLs, so these resolve without a request waterfall.
performance.mark("main-start");
const v = new URL(import.meta.url).search;
const [S, api, i18n, figure, keyboard, banner, retry, dojoModule, grade, train, trainform, gradients, history, sample] = await Promise.all(
  ["state", "api", "i18n", "figure", "keyboard", "banner", "retry", "dojo", "grade", "train", "trainform", "gradients", "history", "sample"]
    .map((name) => import(`./${name}.js${v}`)));

performance.mark("modules-ready");
const $ = (id) => document.getElementById(id);
const dom = {
  form: $("controls"),
  netSelect: $("ctl-net"),
  sizeFields: $("size-fields"),
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
  scaleButtons: [...document.querySelectorAll("[data-scale]")],
  scaleGroup: $("scale-group"),
  scaleNote: $("scale-note"),
  langButtons: [...document.querySelectorAll("[data-lang]")],
  viewTabs: [...document.querySelectorAll(".view-tab[data-view]")],
  views: { grad: $("view-grad"), train: $("view-train") },
  trainForm: $("train-controls"),
  trainNet: $("ctl-t_net"),
  sideTabs: [...document.querySelectorAll("[role=tab][data-side]")],
  dojo: $("dojo"),
  openCell: $("open-cell"),
  figureSource: $("figure-source"),
  sourceButtons: [...document.querySelectorAll("[data-source]")],
  sourceYours: $("source-yours"),
  belt: $("belt"),
  trained: $("summary-trained"),
};

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

// The context the controllers share. `state` is one object, changed in place; `t` follows the language.
const app = {
  state: S.fromQuery(location.search),
  t: null,
  dom,
  plotly: { ready: plotlyReady, open: () => openPlotlyGate() },
  busy: new retry.BusyNotice($("busy")),  // runs and nodes waiting out a busy server
  reportError,
  clearErrors,
};
app.t = i18n.translator(app.state.lang);
const state = app.state;

function reportError(err, form = dom.form) {
  const t = app.t;
  let message;
  if (err instanceof retry.Cancelled) message = t("busy_cancelled", { message: err.cause?.message ?? "429" });
  else message = err instanceof api.ApiError && err.status !== 0 ? err.message : t("network_error");
  banner.showError(dom.banner, dom.bannerText, message, err.field ?? err.cause?.field ?? null, form);
}

function clearErrors() {
  banner.clearError(dom.banner, dom.bannerText, dom.form);
  banner.clearFieldMarks(dom.trainForm);
}

const grad = new gradients.Gradients(app);

const dojo = new dojoModule.Dojo(dom.dojo, {
  onResult: (runId, node, entry) => grad.dojoResult(runId, node, entry),
  onSolved: () => grad.drawProgress(),
});
grad.dojo = dojo;

// another sample of an attention node: a refinement of the view (the URL is replaced, not pushed)
grad.sampler = new sample.SampleControl($("sample-control"), (value) => {
  state.sample = value;
  S.writeUrl(state);
  if (grad.run) grad.selectNode(state.node);
});

const grader = new grade.CellGrader({
  dialog: $("cell-dialog"), close: $("cell-close"), code: $("cell-code"), result: $("cell-result"), intro: $("cell-intro"),
}, {
  getRun: () => grad.run,
  onSolved: () => grad.drawProgress(),
});

function redrawAll() {
  const t = app.t;
  i18n.translatePage(document, state.lang, t);
  for (const b of dom.langButtons) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
  for (const b of dom.scaleButtons) b.setAttribute("aria-pressed", String(b.dataset.scale === state.diff_scale));
  grad.redraw();
  dojo.relabel(t, state.lang);
  grader.relabel(t, state.lang);
  trainView.relabel(t);
  trainForm.draw(headerNet());
  app.busy.relabel(t);
}

// ---- the Train view ------------------------------------------------------------------------------

// The network the header has chosen: the one on its way, else the one on screen.
function headerNet() {
  return grad.pendingRun?.net ?? state.net;
}

const trainForm = new trainform.TrainForm(app, {
  form: dom.trainForm, select: dom.trainNet, sizes: $("train-size-fields"), recipe: $("train-recipe"),
});
grad.form.onNets = (list) => {
  trainForm.setNets(list);
  trainForm.draw(headerNet());
  if (state.view === "train") S.writeUrl(state);  // without the sizes the network turned out not to have
  trainView.refreshIdle();
};

function showTrainForm() {
  trainForm.draw(headerNet());
  trainForm.show();
}

function readTrainForm() {
  const params = trainForm.read();
  S.writeUrl(state);
  return params;
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
  defaultSteps: () => dom.trainForm.elements.t_steps.placeholder,
  plotly: () => {
    openPlotlyGate();
    return plotlyReady;
  },
  showError: (err) => reportError(err, dom.trainForm),
  clearError: clearErrors,
  busyChanged: (running) => { document.body.dataset.training = String(running); },
  // "Open gradients of the trained network": the gradient view of the run config the stream returned
  openGradients(rc) {
    // the stream's config: its network (the MLP before streams said), seed, steps and sizes, and the schedule
    // of a training stopped early (0: it ran its whole schedule)
    const next = { ...state, ...S.sizesOf(rc), net: rc.net ?? "mlp", seed: String(rc.seed), train_steps: String(rc.train_steps),
      train_schedule_steps: String(rc.train_schedule_steps ?? 0) };
    state.view = "grad";
    S.writeUrl(state, "push");  // Back returns to the Train view and its result
    grad.loadRun(next);  // first: with this request pending, showView starts no other
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
  clearErrors();
  grad.showSourceToggle();
  if (isTrain) {
    showTrainForm();  // the header may have chosen another network meanwhile
    trainView.show();
  } else if (!grad.run && !grad.pendingRun) {
    grad.loadRun({ ...state });  // a page opened on the Train view loads its gradients only when they are wanted
  }
}

// ---- history: Back and Forward step through the user's own steps (history.js) -------------------

history.installHistory(app, { grad, redrawAll, showView, showTrainForm });

// ---- events --------------------------------------------------------------------------------------

dom.form.addEventListener("change", (event) => {
  if (event.target === dom.netSelect) grad.switchNet(dom.netSelect.value);
  else if (event.target.dataset.field) grad.applyConfig();
});
dom.form.addEventListener("submit", (event) => {
  event.preventDefault();  // Enter in a field: apply now, never navigate
  grad.applyConfig();
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
  grad.applyConfig({ timing: "new-batch" });
});

dom.bannerClose.addEventListener("click", clearErrors);

for (const tab of dom.viewTabs) {
  tab.addEventListener("click", () => {
    if (tab.dataset.view === state.view) return;
    state.view = tab.dataset.view;
    S.writeUrl(state, "push");
    showView();
  });
}

for (const tab of dom.sideTabs) {
  tab.addEventListener("click", () => {
    if (tab.dataset.side === state.dojo) return;
    state.dojo = tab.dataset.side;
    S.writeUrl(state, "push");
    grad.showSide();
  });
}

for (const button of dom.sourceButtons) button.addEventListener("click", () => grad.showFigureSource(button.dataset.source));

dom.openCell.addEventListener("click", () => grader.open());

dom.trained.addEventListener("click", (event) => {
  if (!event.target.closest("#at-init")) return;
  dom.form.elements.train_steps.value = "0";  // back to the gradients at initialisation
  dom.form.elements.train_schedule_steps.value = "0";
  grad.applyConfig();
});

// The network, chosen in the Train view: the header's choice (the gradient view follows), its sizes here.
dom.trainNet.addEventListener("change", () => {
  const net = dom.trainNet.value;
  grad.switchNet(net);
  trainForm.draw(net);
  trainView.refreshIdle();
});

dom.trainForm.addEventListener("input", (event) => {
  event.target.removeAttribute("aria-invalid");
  event.target.closest(".field")?.classList.remove("invalid");
});

// Another tab solved a node: the belt here follows.
window.addEventListener("storage", () => grad.drawProgress());

dom.tbody.addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-node]");
  if (row) grad.userSelect(row.dataset.node);
});

dom.graph.addEventListener("click", (event) => {
  const node = event.target.closest(".gnode");
  if (node && !node.classList.contains("inert")) grad.userSelect(node.dataset.node);
});

for (const button of dom.scaleButtons) {
  button.addEventListener("click", () => {
    if (button.dataset.scale === state.diff_scale) return;
    state.diff_scale = button.dataset.scale;
    redrawAll();
    if (grad.run) grad.selectNode(state.node);
    else S.writeUrl(state);
  });
}

for (const button of dom.langButtons) {
  button.addEventListener("click", () => {
    if (button.dataset.lang === state.lang) return;
    state.lang = button.dataset.lang;
    app.t = i18n.translator(state.lang);
    S.writeUrl(state);
    redrawAll();
    grad.relang();
  });
}

keyboard.installArrowKeys((step) => {
  const order = grad.order;
  if (!order.length || state.view !== "grad" || grader.isOpen) return;
  const i = Math.max(0, order.indexOf(state.node));
  const j = Math.min(order.length - 1, Math.max(0, i + step));
  // the focus follows the selected row when it was on the table (or nowhere): Enter, Space and Tab
  // then act on the row on screen, not on the one the walk started from
  const active = document.activeElement;
  const focusRow = !active || active === document.body || dom.tbody.contains(active);
  if (j !== i) grad.userSelect(order[j], { how: history.arrowHistory(), focusRow });
});

// The graph is laid out for the panel's width and the height the window gives it; redo it when they
// change (not on every pixel).
let graphBox = [0, 0];
function fitGraph() {
  const [width, height] = [dom.graphWrap.clientWidth, window.innerHeight];
  if (Math.abs(width - graphBox[0]) < 8 && height === graphBox[1]) return;
  graphBox = [width, height];
  grad.drawGraph();
}
new ResizeObserver(fitGraph).observe(dom.graphWrap);
window.addEventListener("resize", fitGraph);

figure.followPanelSize(dom.figure);
// the training charts too: a stream may start drawing them while the gradient view is on screen
for (const id of ["chart-loss", "chart-audit", "chart-ratio", "chart-saturation"]) figure.followPanelSize($(id));

// ---- start ---------------------------------------------------------------------------------------

grad.loadNets();
grad.showConfig();
showTrainForm();
redrawAll();
grad.showSide();
showView();
S.writeUrl(state);
