// The forward computation graph as SVG: graphlayout.js places the boxes and routes the edges for
// whatever network the run carries; this module measures the labels and draws. Boxes of the overview
// (the rows far from the selected node, when the whole graph does not fit its box full size) have no
// label: their tooltip names them, and a click brings them into full size.

const v = new URL(import.meta.url).search;
const { el, svg, fill, add } = await import(`./dom.js${v}`);
const layouts = await import(`./graphlayout.js${v}`);

const FONT = '600 11.5px ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace';

let measureCanvas = null;
function textWidth(text) {
  measureCanvas ??= document.createElement("canvas").getContext("2d");
  measureCanvas.font = FONT;
  return measureCanvas.measureText(text).width;
}

// `budget`: the height (px) the box can give the graph before it folds rows into the overview.
export function layoutGraph(graph, width, { selected = "", budget = Infinity } = {}) {
  return layouts.layoutGraph(graph, width, { selected, budget, textWidth });
}

export const shownInFull = layouts.shownInFull;

export function drawGraph(root, layout, { selected, selectable, t }) {
  root.setAttribute("viewBox", `0 0 ${layout.width} ${layout.height}`);
  root.setAttribute("height", String(layout.height));
  const defs = svg("defs", {},
    ["arrow", "arrow-active"].map((id) => svg("marker", {
      id, viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    }, svg("path", { d: "M0,0.5 L8,4 L0,7.5 z", class: `arrowhead ${id}` }))));
  const edgeLayer = svg("g", { class: "edges" }, layout.edges.map((e) =>
    svg("path", { class: `edge${e.wraps ? " wrap" : ""}${e.along ? " along" : ""}${e.overview ? " ov" : ""}`, d: e.d, "marker-end": e.overview ? null : "url(#arrow)",
      dataset: { from: e.from, to: e.to } })));
  const nodeLayer = svg("g", { class: "nodes" }, [...layout.boxes.values()].map((b) => {
    const canSelect = selectable.has(b.name);
    const statusText = b.status ? t(`status_${b.status}`) : "—";
    const title = t("node_title", { name: b.name, kind: t(`kind_${b.kind}`), status: statusText });
    // in the fused variant, the nodes a one-step formula jumps over are drawn dashed and faded
    return svg("g", {
      class: `gnode kind-${b.kind} status-${b.status ?? "none"}${canSelect ? "" : " inert"}${b.skipped_by ? " skipped" : ""}`
        + `${b.overview ? " ov" : ""}${b.copy ? " copy" : ""}`,
      transform: `translate(${b.x},${b.y})`,
      dataset: { node: b.name, skippedBy: b.skipped_by ?? null },
    },
    svg("title", {}, b.skipped_by ? `${title}\n${t("skipped_title", { block: b.skipped_by })}` : title),
    svg("rect", { width: b.w, height: b.h, rx: b.overview ? 2 : b.kind === "param" ? 3 : b.h / 2 }),
    b.overview ? null : svg("text", { x: b.w / 2, y: b.h / 2, "dominant-baseline": "central", "text-anchor": "middle" }, b.name));
  }));
  root.dataset.folded = String(layout.folded);
  fill(root, defs, edgeLayer, nodeLayer);
  markSelectedNode(root, selected);
}

// The selected node's box, scrolled into view inside `wrap` when the graph is taller than its box
// (never the page: the graph scrolls in its own box).
export function revealNode(wrap, layout, name) {
  if (wrap.scrollHeight <= wrap.clientHeight + 1) return;
  const box = [...layout.boxes.values()].find((b) => b.name === name);
  if (!box) return;
  if (box.y < wrap.scrollTop + 4 || box.y + box.h > wrap.scrollTop + wrap.clientHeight - 4) {
    wrap.scrollTop = Math.max(0, box.y - wrap.clientHeight / 3);
  }
}

// Selection only toggles classes: the selected node, and its incoming and outgoing edges.
export function markSelectedNode(root, name) {
  for (const g of root.querySelectorAll(".gnode.selected")) g.classList.remove("selected");
  for (const e of root.querySelectorAll(".edge.in, .edge.out")) {
    e.classList.remove("in", "out");
    if (e.classList.contains("ov")) e.removeAttribute("marker-end");
    else e.setAttribute("marker-end", "url(#arrow)");
  }
  if (!name) return;
  for (const g of root.querySelectorAll(`.gnode[data-node="${CSS.escape(name)}"]`)) g.classList.add("selected");
  for (const e of root.querySelectorAll(".edge")) {
    const dir = e.dataset.to === name ? "in" : e.dataset.from === name ? "out" : null;
    if (!dir) continue;
    e.classList.add(dir);
    e.setAttribute("marker-end", "url(#arrow-active)");
    add(e.parentNode, e);  // drawn last, so it is on top of the grey edges
  }
}

export function drawLegend(ul, t, skipped = false, folded = false) {
  const statuses = ["exact", "approx", "mismatch", "missing"];
  fill(ul,
    statuses.map((s) => el("li", { class: `legend-item status-${s}`, title: t(`status_${s}_title`) },
      el("span", { class: "swatch" }), t(`status_${s}`))),
    el("li", { class: "legend-item legend-param" }, t("kind_param")),
    skipped ? el("li", { class: "legend-item legend-skipped", id: "legend-skipped" }, t("legend_skipped")) : null,
    folded ? el("li", { class: "legend-item legend-overview", id: "legend-overview", title: t("legend_overview_title") }, t("legend_overview")) : null);
}
