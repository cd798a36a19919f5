// The forward computation graph as SVG, laid out from the run document's `graph` (nodes + forward
// edges), so it still works if the network changes:
//   columns  = longest-path layers; a parameter or data node sits in the column just before its
//              first use ("params beside the step that uses them");
//   lanes    = the spine (the path back from the loss that takes the shortest branch at every merge)
//              runs straight along lane 0, so skip edges like bndiff → bnraw are never hidden behind
//              the side branch (bndiff2 → bnvar → bnvar_inv), which gets a lane of its own;
//   rows     = the columns wrap into as few rows as fit the width, breaking where fewest edges cross.

const v = new URL(import.meta.url).search;
const { el, svg, fill, add } = await import(`./dom.js${v}`);

const FONT = '600 11.5px ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace';
const NODE_H = 19;
const LANE_H = 22;
const ROW_GAP = 18;
const PAD_X = 6;
const PAD_Y = 6;
const MIN_GAP = 16;
const MAX_GAP = 60;

let measureCanvas = null;
function textWidth(text) {
  measureCanvas ??= document.createElement("canvas").getContext("2d");
  measureCanvas.font = FONT;
  return measureCanvas.measureText(text).width;
}

function topoOrder(names, preds, succs) {
  const indegree = new Map(names.map((n) => [n, preds.get(n).length]));
  const queue = names.filter((n) => indegree.get(n) === 0);
  const order = [];
  while (queue.length) {
    const n = queue.shift();
    order.push(n);
    for (const s of succs.get(n)) {
      indegree.set(s, indegree.get(s) - 1);
      if (indegree.get(s) === 0) queue.push(s);
    }
  }
  for (const n of names) if (!order.includes(n)) order.push(n);  // a cycle would be a server bug: still draw
  return order;
}

function assignLayers(names, preds, succs, order) {
  const layer = new Map();
  for (const n of order) layer.set(n, Math.max(0, ...preds.get(n).map((p) => (layer.get(p) ?? 0) + 1)));
  for (const n of names) {
    if (preds.get(n).length === 0 && succs.get(n).length > 0) {
      layer.set(n, Math.max(0, Math.min(...succs.get(n).map((s) => layer.get(s))) - 1));
    }
  }
  return layer;
}

function findSpine(nodes, preds, succs, layer) {
  const sinks = nodes.filter((n) => succs.get(n.name).length === 0);
  sinks.sort((a, b) => (b.kind === "loss") - (a.kind === "loss") || layer.get(b.name) - layer.get(a.name));
  const spine = new Set();
  const kindOf = new Map(nodes.map((n) => [n.name, n.kind]));
  let current = sinks[0]?.name;
  while (current !== undefined && !spine.has(current)) {
    spine.add(current);
    const ps = preds.get(current);
    if (!ps.length) break;
    const inner = ps.filter((p) => preds.get(p).length > 0).sort((a, b) => layer.get(a) - layer.get(b));
    const data = ps.filter((p) => kindOf.get(p) === "data");
    current = inner[0] ?? data[0] ?? ps[0];
  }
  return spine;
}

function assignLanes(nodes, preds, layer, spine) {
  const lane = new Map();
  const used = new Map();  // layer -> Set of lanes taken
  const take = (name, candidates) => {
    const taken = used.get(layer.get(name)) ?? new Set();
    used.set(layer.get(name), taken);
    const free = candidates.find((c) => !taken.has(c)) ?? [...Array(20).keys()].map((i) => i + 3).find((c) => !taken.has(c));
    taken.add(free);
    lane.set(name, free);
  };
  const rank = (n) => (spine.has(n.name) ? 0 : n.kind === "intermediate" || n.kind === "loss" ? 1 : n.kind === "data" ? 2 : 3);
  const sorted = [...nodes].sort((a, b) => layer.get(a.name) - layer.get(b.name) || rank(a) - rank(b));
  for (const n of sorted) {
    if (spine.has(n.name)) take(n.name, [0]);
    else if (n.kind === "data") take(n.name, [1, -1, 2, -2]);
    else if (n.kind === "param") take(n.name, [-1, 1, -2, 2]);
    else {
      // keep a side branch on one lane: follow a predecessor that is itself off the spine
      const branch = preds.get(n.name).map((p) => lane.get(p)).filter((l) => l !== undefined && l !== 0);
      take(n.name, [...branch, -1, 1, -2, 2]);
    }
  }
  return lane;
}

// Split columns 0..n-1 into rows that fit `avail`: fewest rows first, then fewest crossing edges.
function chooseRows(colWidths, crossings, avail) {
  const n = colWidths.length;
  const best = Array(n + 1).fill(Infinity);
  const prev = Array(n + 1).fill(-1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    for (let i = j - 1; i >= 0; i--) {
      const width = colWidths.slice(i, j).reduce((a, b) => a + b, 0) + (j - i - 1) * MIN_GAP;
      if (width > avail && j - i > 1) break;
      const slack = Math.max(0, avail - width) / avail;
      const cost = best[i] + 1000 + (i > 0 ? crossings[i] * 10 : 0) + slack * slack;
      if (cost < best[j]) {
        best[j] = cost;
        prev[j] = i;
      }
    }
  }
  const rows = [];
  for (let j = n; j > 0; j = prev[j]) rows.unshift([prev[j], j]);
  return rows;
}

export function layoutGraph(graph, width) {
  const nodes = graph.nodes;
  if (!nodes.length) return { nodes: new Map(), edges: [], width, height: 0 };
  const names = nodes.map((n) => n.name);
  const known = new Set(names);
  const edges = graph.edges.filter(([a, b]) => known.has(a) && known.has(b));
  const preds = new Map(names.map((n) => [n, []]));
  const succs = new Map(names.map((n) => [n, []]));
  for (const [a, b] of edges) {
    succs.get(a).push(b);
    preds.get(b).push(a);
  }
  const layer = assignLayers(names, preds, succs, topoOrder(names, preds, succs));
  const spine = findSpine(nodes, preds, succs, layer);
  const lane = assignLanes(nodes, preds, layer, spine);

  const nLayers = Math.max(0, ...layer.values()) + 1;
  const box = new Map(nodes.map((n) => [n.name, { ...n, w: Math.max(30, Math.ceil(textWidth(n.name)) + 18), h: NODE_H }]));
  const colWidths = Array(nLayers).fill(0);
  for (const b of box.values()) colWidths[layer.get(b.name)] = Math.max(colWidths[layer.get(b.name)], b.w);
  const crossings = Array.from({ length: nLayers }, (_, k) => edges.filter(([a, b]) => layer.get(a) < k && layer.get(b) >= k).length);
  const avail = Math.max(200, width - 2 * PAD_X);
  const rows = chooseRows(colWidths, crossings, avail);

  let top = PAD_Y;
  const rowBottoms = [];
  const rowOf = new Map();
  rows.forEach(([start, end], r) => {
    const members = [...box.values()].filter((b) => layer.get(b.name) >= start && layer.get(b.name) < end);
    const lanes = members.map((b) => lane.get(b.name));
    const minLane = Math.min(...lanes);
    const maxLane = Math.max(...lanes);
    const used = colWidths.slice(start, end).reduce((a, b) => a + b, 0);
    const gap = end - start > 1 ? Math.min(MAX_GAP, Math.max(MIN_GAP, (avail - used) / (end - start - 1))) : 0;
    const rowWidth = used + gap * (end - start - 1);
    let x = PAD_X + Math.max(0, (avail - rowWidth) / 2);
    const centres = [];
    for (let k = start; k < end; k++) {
      centres[k] = x + colWidths[k] / 2;
      x += colWidths[k] + gap;
    }
    for (const b of members) {
      b.x = centres[layer.get(b.name)] - b.w / 2;
      b.y = top + (lane.get(b.name) - minLane) * LANE_H + (LANE_H - NODE_H) / 2;
      b.row = r;
      rowOf.set(b.name, r);
    }
    top += (maxLane - minLane + 1) * LANE_H;
    rowBottoms.push(top);
    top += ROW_GAP;
  });
  const height = top - ROW_GAP + PAD_Y;

  const routed = edges.map(([a, b]) => ({
    from: a, to: b, wraps: box.get(a).row !== box.get(b).row, d: edgePath(box.get(a), box.get(b), rowBottoms),
  }));
  return { nodes: box, edges: routed, width, height };
}

function edgePath(s, t, rowBottoms) {
  const sx = s.x + s.w;
  const sy = s.y + s.h / 2;
  const tx = t.x - 2;  // leave room for the arrowhead
  const ty = t.y + t.h / 2;
  if (s.row === t.row) {
    const dx = Math.max(12, (tx - sx) / 2);
    return `M${sx},${sy} C${sx + dx},${sy} ${tx - dx},${ty} ${tx},${ty}`;
  }
  // Wrapping to a later row: out to the right, back along the gap under the row, in from the left.
  const gy = rowBottoms[s.row] + ROW_GAP / 2;
  const r = 14;
  return `M${sx},${sy} C${sx + r},${sy} ${sx + r},${gy} ${sx},${gy} L${tx - r},${gy} C${tx - 2 * r},${gy} ${tx - 2 * r},${ty} ${tx},${ty}`;
}

export function drawGraph(root, layout, { selected, selectable, t }) {
  root.setAttribute("viewBox", `0 0 ${layout.width} ${layout.height}`);
  root.setAttribute("height", String(layout.height));
  const defs = svg("defs", {},
    ["arrow", "arrow-active"].map((id) => svg("marker", {
      id, viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    }, svg("path", { d: "M0,0.5 L8,4 L0,7.5 z", class: `arrowhead ${id}` }))));
  const edgeLayer = svg("g", { class: "edges" }, layout.edges.map((e) =>
    svg("path", { class: e.wraps ? "edge wrap" : "edge", d: e.d, "marker-end": "url(#arrow)", dataset: { from: e.from, to: e.to } })));
  const nodeLayer = svg("g", { class: "nodes" }, [...layout.nodes.values()].map((b) => {
    const canSelect = selectable.has(b.name);
    const statusText = b.status ? t(`status_${b.status}`) : "—";
    const title = t("node_title", { name: b.name, kind: t(`kind_${b.kind}`), status: statusText });
    // in the fused variant, the nodes a one-step formula jumps over are drawn dashed and faded
    return svg("g", {
      class: `gnode kind-${b.kind} status-${b.status ?? "none"}${canSelect ? "" : " inert"}${b.skipped_by ? " skipped" : ""}`,
      transform: `translate(${b.x},${b.y})`,
      dataset: { node: b.name, skippedBy: b.skipped_by ?? null },
    },
    svg("title", {}, b.skipped_by ? `${title}\n${t("skipped_title", { block: b.skipped_by })}` : title),
    svg("rect", { width: b.w, height: b.h, rx: b.kind === "param" ? 3 : b.h / 2 }),
    svg("text", { x: b.w / 2, y: b.h / 2, "dominant-baseline": "central", "text-anchor": "middle" }, b.name));
  }));
  fill(root, defs, edgeLayer, nodeLayer);
  markSelectedNode(root, selected);
}

// Selection only toggles classes: the selected node, and its incoming and outgoing edges.
export function markSelectedNode(root, name) {
  for (const g of root.querySelectorAll(".gnode.selected")) g.classList.remove("selected");
  for (const e of root.querySelectorAll(".edge.in, .edge.out")) {
    e.classList.remove("in", "out");
    e.setAttribute("marker-end", "url(#arrow)");
  }
  if (!name) return;
  root.querySelector(`.gnode[data-node="${CSS.escape(name)}"]`)?.classList.add("selected");
  for (const e of root.querySelectorAll(".edge")) {
    const dir = e.dataset.to === name ? "in" : e.dataset.from === name ? "out" : null;
    if (!dir) continue;
    e.classList.add(dir);
    e.setAttribute("marker-end", "url(#arrow-active)");
    add(e.parentNode, e);  // drawn last, so it is on top of the grey edges
  }
}

export function drawLegend(ul, t, skipped = false) {
  const statuses = ["exact", "approx", "mismatch", "missing"];
  fill(ul,
    statuses.map((s) => el("li", { class: `legend-item status-${s}`, title: t(`status_${s}_title`) },
      el("span", { class: "swatch" }), t(`status_${s}`))),
    el("li", { class: "legend-item legend-param" }, t("kind_param")),
    skipped ? el("li", { class: "legend-item legend-skipped", id: "legend-skipped" }, t("legend_skipped")) : null);
}
