// The notebook widget's ES module (anywidget): the page's own drawing modules, wired to the widget's
// model instead of the page's API. It draws what ninja_core sends -- `doc` (the cmp table's rows, the
// forward graph, the headline) and `view` (the selected node's lines, diagnosis and figure spec) -- and
// sends back only which node is selected and the language. Nothing here computes a gradient.
//
// scripts/build_widget.py bundles this file with static/js/{dom,format,i18n,table,graph,figure}.js
// (their `await import(`./x.js${v}`)` lines made static imports, since an ES module loaded from a
// string has no URL to resolve siblings against) and the page's plotly.js, into
// ninja_core/notebook/widget.js. The page's modules are imported as they are.

import Plotly from "./plotly.js";
import { el, fill } from "./dom.js";
import { translator } from "./i18n.js";
import { drawTable, markSelected, statusBadge, localBadge } from "./table.js";
import { layoutGraph, drawGraph, markSelectedNode, drawLegend, revealNode, shownInFull } from "./graph.js";
import { arranged, arrangementFor } from "./figure.js";

// The page's plot settings (figure.js's CONFIG): no cloud links; the widget's own plotly instance, so
// a notebook's other plotly.js (another version, on window) is never used or touched.
const PLOT_CONFIG = {
  showSendToCloud: false, showEditInChartStudio: false, showLink: false, displaylogo: false, responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines", "sendChartToCloud"],
};

// The widget's few own words; everything else is the page's labels (i18n.js) or ninja_core's prose.
const WORDS = {
  en: { table: "gradients", graph: "forward graph", node: "selected node", variable: "your variable",
    diagnosis: "diagnosis", forward: "your forward tensors", none: "no gradient to show", click: "click a row or a node" },
  de: { table: "Gradienten", graph: "Vorwärtsgraph", node: "gewählter Knoten", variable: "deine Variable",
    diagnosis: "Diagnose", forward: "deine Vorwärts-Tensoren", none: "kein Gradient zu zeigen",
    click: "klick eine Zeile oder einen Knoten" },
};

function head(t) {
  return el("thead", {}, el("tr", {},
    el("th", { scope: "col" }, t("col_node")),
    el("th", { scope: "col", class: "c col-exact" }, t("col_exact")),
    el("th", { scope: "col", class: "c col-approx" }, t("col_approx")),
    el("th", { scope: "col", class: "r" }, t("col_maxdiff")),
    el("th", { scope: "col" }, t("col_status")),
    el("th", { scope: "col", class: "c col-local", title: t("col_local_title") }, t("col_local"))));
}

function render({ model, el: host }) {
  const tbody = el("tbody", {});
  const tableEl = el("table", { class: "cmp" });
  const tableWrap = el("div", { class: "table-wrap", tabindex: "0" }, tableEl);
  const graphSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  graphSvg.setAttribute("class", "graph");
  const legend = el("ul", { class: "legend" });
  const graphWrap = el("div", { class: "graph-wrap nw-graph-wrap" }, graphSvg);
  const headline = el("div", { class: "nw-headline" });
  const notes = el("ul", { class: "nw-notes" });
  const forward = el("div", { class: "nw-forward" });
  const nodeHead = el("div", { class: "nw-node-head" });
  const nodeLines = el("div", { class: "nw-node-lines" });
  const figureDiv = el("div", { class: "nw-figure" });
  const langButtons = ["en", "de"].map((lang) => el("button", { type: "button", dataset: { lang } }, lang.toUpperCase()));
  const titles = { table: el("h3", { class: "panel-title" }), graph: el("h3", { class: "panel-title" }),
    node: el("h3", { class: "panel-title" }) };
  const root = el("div", { class: "ninja-widget" },
    el("div", { class: "nw-top" }, headline, el("div", { class: "lang-toggle" }, langButtons)),
    notes, forward,
    el("div", { class: "nw-grid" },
      el("section", { class: "card nw-table" }, el("div", { class: "card-head" }, titles.table), tableWrap),
      el("section", { class: "card nw-graph" }, el("div", { class: "card-head" }, titles.graph, legend), graphWrap),
      el("section", { class: "card nw-node" }, el("div", { class: "card-head" }, titles.node), nodeHead, nodeLines,
        figureDiv)));
  fill(host, root);

  let t = translator(model.get("lang"));
  let words = WORDS[model.get("lang")] ?? WORDS.en;
  let width = 0;
  let layout = null;
  let figureSeq = 0;

  const doc = () => model.get("doc") ?? {};
  const names = () => (doc().nodes ?? []).map((n) => n.name);

  function select(name) {
    if (!name || !names().includes(name) || name === model.get("selected")) return;
    model.set("selected", name);
    showSelection();
    model.save_changes();
  }

  // As the page does (gradients.js): the graph for the box's width, rows far from the selected node
  // folded into the overview when the box's max-height is too small for all of them.
  function drawGraphNow() {
    const d = doc();
    if (!d.graph || !graphWrap.clientWidth) return;
    width = graphWrap.clientWidth;
    const budget = Number.parseFloat(getComputedStyle(graphWrap).maxHeight);
    const selected = model.get("selected");
    layout = layoutGraph(d.graph, width, { selected, budget: Number.isFinite(budget) ? budget : Infinity });
    drawGraph(graphSvg, layout, { selected, selectable: new Set(names()), t });
    drawLegend(legend, t, false, layout.folded);
    revealNode(graphWrap, layout, selected);
  }

  function showSelection() {
    const name = model.get("selected");
    markSelected(tbody, name);
    if (layout && !shownInFull(layout, name)) {
      drawGraphNow();
      return;
    }
    markSelectedNode(graphSvg, name);
    if (layout) revealNode(graphWrap, layout, name);
  }

  function drawDoc() {
    const d = doc();
    t = translator(model.get("lang"));
    words = WORDS[model.get("lang")] ?? WORDS.en;
    root.dataset.lang = model.get("lang");
    for (const b of langButtons) b.setAttribute("aria-pressed", String(b.dataset.lang === model.get("lang")));
    titles.table.textContent = words.table;
    titles.graph.textContent = words.graph;
    titles.node.textContent = words.node;
    fill(headline, (d.headline ?? []).map((line, i) => el(i ? "p" : "h2", {}, line)));
    fill(notes, (d.notes ?? []).map((n) => el("li", {}, n)));
    root.classList.toggle("no-local", !d.local);
    root.classList.toggle("not-judged", d.judged === false);
    fill(forward, d.forward?.length ? [
      el("h3", { class: "panel-title" }, words.forward),
      el("table", { class: "cmp" }, el("tbody", {}, d.forward.map((f) => el("tr", { class: f.root ? "root" : "" },
        el("th", { scope: "row" }, el("code", {}, f.node)), el("td", {}, el("code", {}, f.variable)),
        el("td", {}, statusBadge(f.same ? "exact" : "mismatch", t)), el("td", {}, f.message))))),
    ] : []);
    fill(tableEl, head(t), tbody);
    drawTable(tbody, d.nodes ?? [], t);
    markSelected(tbody, model.get("selected"));
    drawGraphNow();
  }

  async function drawView() {
    const v = model.get("view") ?? {};
    const seq = ++figureSeq;
    if (!v.name) {
      fill(nodeHead, el("p", { class: "muted" }, names().length ? words.click : words.none));
      fill(nodeLines);
      Plotly.purge(figureDiv);
      return;
    }
    fill(nodeHead,
      el("code", { class: "nw-node-name" }, v.name),
      statusBadge(v.status, t),
      v.local_status ? localBadge(v.local_status, t) : null,
      v.variable ? el("span", { class: "muted" }, `${words.variable}: `, el("code", {}, v.variable)) : null);
    fill(nodeLines,
      v.lines?.length ? el("pre", { class: "nw-lines" }, v.lines.join("\n")) : null,
      v.diagnosis?.length ? el("ul", { class: "nw-diagnosis", "aria-label": words.diagnosis },
        v.diagnosis.map((line) => el("li", {}, line))) : null);
    if (!v.figure) return;
    const shown = arranged(v.figure, arrangementFor(figureDiv));
    await Plotly.react(figureDiv, shown.data, shown.layout, { ...PLOT_CONFIG, toImageButtonOptions: { filename: v.name } });
    if (seq === figureSeq) root.dataset.figure = v.name;  // what is drawn (tests wait for it)
  }

  const onTable = (event) => {
    const row = event.target.closest("tr[data-node]");
    if (row && tbody.contains(row)) select(row.dataset.node);
  };
  const onGraph = (event) => {
    const node = event.target.closest(".gnode[data-node]");
    if (node && !node.classList.contains("inert")) select(node.dataset.node);
  };
  const onKey = (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const list = names();
    const at = list.indexOf(model.get("selected"));
    const next = list[Math.min(list.length - 1, Math.max(0, at + (event.key === "ArrowDown" ? 1 : -1)))];
    event.preventDefault();
    select(next);
  };
  const onLang = (event) => {
    const lang = event.target.closest("button[data-lang]")?.dataset.lang;
    if (!lang || lang === model.get("lang")) return;
    model.set("lang", lang);
    model.save_changes();
  };
  tbody.addEventListener("click", onTable);
  graphSvg.addEventListener("click", onGraph);
  tableWrap.addEventListener("keydown", onKey);
  root.querySelector(".lang-toggle").addEventListener("click", onLang);

  const onDoc = () => drawDoc();
  const onView = () => { drawView().catch((err) => console.error("ninja widget: figure failed", err)); };
  const onSelected = () => showSelection();
  model.on("change:doc", onDoc);
  model.on("change:view", onView);
  model.on("change:selected", onSelected);

  // the graph is laid out for its box's width: again whenever that changes (and once it is known)
  const resized = new ResizeObserver(() => {
    if (graphWrap.clientWidth && graphWrap.clientWidth !== width) drawGraphNow();
  });
  resized.observe(graphWrap);

  drawDoc();
  onView();

  return () => {
    model.off("change:doc", onDoc);
    model.off("change:view", onView);
    model.off("change:selected", onSelected);
    resized.disconnect();
    Plotly.purge(figureDiv);
  };
}

export default { render };
