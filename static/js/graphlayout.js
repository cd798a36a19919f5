// The forward graph's layout, for whatever network the run document carries (nodes + forward edges),
// with no coordinates per network:
//   columns  = longest-path layers; a parameter or data node sits in the column just before its first
//              use, and gets a copy beside a use far from the first (a tied weight used at both ends);
//   lanes    = the spine (the path back from the loss that takes the shortest branch at every merge)
//              runs straight along lane 0, so a skip edge (bndiff → bnraw, a residual connection) runs
//              along an empty lane and is never hidden behind the side branch, which gets a lane of its
//              own; parameters sit beside their consumer, on the side away from the spine;
//   rows     = the columns wrap into as few rows as fit the width, breaking where fewest edges cross;
//   folding  = when the rows are taller than the box allows (`budget`), the rows around the selected
//              node keep their size and the others become an overview: one small box per node at its
//              lane, coloured by status, with its tooltip. The whole network stays on screen.
// Pure geometry: nothing here touches the page (graph.js draws it; the text widths come from it).

// Row styles: full size; squashed (the full row's boxes at their places, flat and without labels);
// packed (small boxes side by side, many columns to a row: the overview of a large network).
const FULL = { nodeH: 19, laneH: 22, minGap: 16, maxGap: 60, gapAfter: 18, overview: false };
const SQUASHED = { ...FULL, nodeH: 6, laneH: 8, gapAfter: 10, overview: true };
const PACKED = { nodeH: 5, laneH: 7, minGap: 3, maxGap: 3, gapAfter: 8, boxW: 9, overview: true };
const PAD_X = 6;
const PAD_Y = 6;
const COPY_SPAN = 8;  // layers between two uses of a parameter beyond which the later one gets a copy
const ROUND = 14;     // radius of an edge's turn into a later row

function topoOrder(names, preds, succs) {
  const indegree = new Map(names.map((n) => [n, preds.get(n).length]));
  const queue = names.filter((n) => indegree.get(n) === 0);
  const order = [];
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i];
    order.push(n);
    for (const s of succs.get(n)) {
      indegree.set(s, indegree.get(s) - 1);
      if (indegree.get(s) === 0) queue.push(s);
    }
  }
  const seen = new Set(order);
  for (const n of names) if (!seen.has(n)) order.push(n);  // a cycle would be a server bug: still draw
  return order;
}

function adjacency(ids, edges) {
  const preds = new Map(ids.map((n) => [n, []]));
  const succs = new Map(ids.map((n) => [n, []]));
  for (const { from, to } of edges) {
    succs.get(from).push(to);
    preds.get(to).push(from);
  }
  return { preds, succs };
}

// Longest-path layers; sources (parameters, data) just before their first use.
function assignLayers(names, preds, succs) {
  const layer = new Map();
  for (const n of topoOrder(names, preds, succs)) layer.set(n, Math.max(0, ...preds.get(n).map((p) => (layer.get(p) ?? 0) + 1)));
  for (const n of names) {
    if (preds.get(n).length === 0 && succs.get(n).length > 0) {
      layer.set(n, Math.max(0, Math.min(...succs.get(n).map((s) => layer.get(s))) - 1));
    }
  }
  return layer;
}

// The boxes to draw: one per node, plus a copy of a source node beside each use far from its first
// (so a tied weight does not pull an edge across the whole graph). Box ids are the node names, and
// "<name>#<k>" for the copies; every box knows its node.
function buildBoxes(graph) {
  const names = graph.nodes.map((n) => n.name);
  const known = new Set(names);
  const realEdges = graph.edges.filter(([a, b]) => known.has(a) && known.has(b)).map(([from, to]) => ({ from, to }));
  const real = adjacency(names, realEdges);
  const layer = assignLayers(names, real.preds, real.succs);
  const boxes = new Map(graph.nodes.map((n) => [n.name, { ...n, id: n.name, copy: false }]));
  const moved = new Map();  // "from→to" -> the copy's id
  for (const n of graph.nodes) {
    const uses = real.succs.get(n.name);
    if (real.preds.get(n.name).length || uses.length < 2) continue;
    const sorted = [...uses].sort((a, b) => layer.get(a) - layer.get(b));
    let k = 0;
    let last = layer.get(sorted[0]);
    for (const use of sorted) {
      if (layer.get(use) - last > COPY_SPAN) {
        k += 1;
        const id = `${n.name}#${k}`;
        boxes.set(id, { ...n, id, copy: true });
        layer.set(id, layer.get(use) - 1);
      }
      last = layer.get(use);
      if (k) moved.set(`${n.name}\u0000${use}`, `${n.name}#${k}`);
    }
  }
  const edges = realEdges.map(({ from, to }) => ({ from: moved.get(`${from}\u0000${to}`) ?? from, to, node: from }));
  const ids = [...boxes.keys()];
  return { boxes, edges, ids, layer, ...adjacency(ids, edges) };
}

// The spine as a map: each of its boxes -> the next one towards the loss.
function findSpine(boxes, preds, succs, layer) {
  const all = [...boxes.values()];
  const sinks = all.filter((b) => succs.get(b.id).length === 0);
  sinks.sort((a, b) => (b.kind === "loss") - (a.kind === "loss") || layer.get(b.id) - layer.get(a.id));
  const spine = new Map();
  let current = sinks[0]?.id;
  let after = null;
  while (current !== undefined && !spine.has(current)) {
    spine.set(current, after);
    const ps = preds.get(current);
    if (!ps.length) break;
    const inner = ps.filter((p) => preds.get(p).length > 0).sort((a, b) => layer.get(a) - layer.get(b));
    const data = ps.filter((p) => boxes.get(p).kind === "data");
    after = current;
    current = inner[0] ?? data[0] ?? ps[0];
  }
  return spine;
}

// Lanes: the spine on 0; a side branch follows its predecessor's lane; sources (parameters, data) go
// beside their consumer, on the side away from the spine (above it first).
function assignLanes(boxes, preds, succs, layer, spine) {
  const lane = new Map();
  const used = new Map();  // layer -> lanes taken
  const take = (id, candidates) => {
    const taken = used.get(layer.get(id)) ?? new Set();
    used.set(layer.get(id), taken);
    let free = candidates.find((c) => !taken.has(c));
    for (let d = 1; free === undefined; d++) free = [-d, d].find((c) => c !== 0 && !taken.has(c));
    taken.add(free);
    lane.set(id, free);
  };
  const isSource = (b) => preds.get(b.id).length === 0 && b.kind !== "loss";
  const byLayer = (a, b) => layer.get(a.id) - layer.get(b.id);
  const inner = [...boxes.values()].filter((b) => !isSource(b)).sort((a, b) => byLayer(a, b) || spine.has(b.id) - spine.has(a.id));
  for (const b of inner) {
    if (spine.has(b.id)) take(b.id, [0]);
    else {
      const branch = preds.get(b.id).map((p) => lane.get(p)).filter((l) => l !== undefined && l !== 0);
      take(b.id, [...branch, -1, 1, -2, 2]);
    }
  }
  const sources = [...boxes.values()].filter(isSource).sort(byLayer);
  for (const b of sources) {
    const c = lane.get(succs.get(b.id)[0]) ?? 0;
    const side = c > 0 ? 1 : -1;
    const near = c === 0 ? [-1, 1, -2, 2] : [c + side, c + 2 * side, c - side, c + 3 * side];
    take(b.id, b.kind === "data" && c === 0 ? [1, -1, 2, -2] : near.filter((l) => l !== 0));
  }
  return lane;
}

// The gap between two rows: an edge into the next row turns in it (a little more room than the
// smaller row's own gap where a full row meets an overview row).
function gapBetween(a, b) {
  return a.style === b.style ? a.style.gapAfter : Math.min(a.style.gapAfter, b.style.gapAfter) + 3;
}

// Splits columns [from, to) into rows that fit `avail`: fewest rows first, then fewest crossing edges.
function chooseRows(from, to, colWidths, crossings, avail, minGap) {
  const n = to - from;
  const best = Array(n + 1).fill(Infinity);
  const prev = Array(n + 1).fill(-1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    let width = -minGap;
    for (let i = j - 1; i >= 0; i--) {
      width += colWidths[from + i] + minGap;
      if (width > avail && j - i > 1) break;
      const slack = Math.max(0, avail - width) / avail;
      const cost = best[i] + 1000 + (i > 0 ? crossings[from + i] * 10 : 0) + slack * slack;
      if (cost < best[j]) {
        best[j] = cost;
        prev[j] = i;
      }
    }
  }
  const rows = [];
  for (let j = n; j > 0; j = prev[j]) rows.unshift({ start: from + prev[j], end: from + j });
  return rows;
}

export function layoutGraph(graph, width, { selected = "", budget = Infinity, textWidth = (s) => 7 * s.length } = {}) {
  if (!graph.nodes.length) return { boxes: new Map(), edges: [], rows: [], width, height: 0, folded: false };
  const { boxes, edges, ids, layer, preds, succs } = buildBoxes(graph);
  const spine = findSpine(boxes, preds, succs, layer);
  const lane = assignLanes(boxes, preds, succs, layer, spine);
  const nCols = Math.max(0, ...layer.values()) + 1;
  const cols = Array.from({ length: nCols }, () => []);
  for (const id of ids) cols[layer.get(id)].push(id);
  for (const b of boxes.values()) b.fullW = Math.max(30, Math.ceil(textWidth(b.name)) + 18);
  const widths = {
    full: cols.map((c) => Math.max(0, ...c.map((id) => boxes.get(id).fullW))),
    packed: cols.map((c) => (c.length ? PACKED.boxW : 0)),
  };
  const crossings = Array(nCols).fill(0);
  for (const { from, to } of edges) for (let k = layer.get(from) + 1; k <= layer.get(to); k++) crossings[k] += 1;
  const avail = Math.max(200, width - 2 * PAD_X);
  const lanesOf = (row) => {
    let lo = 0;
    let hi = 0;  // lane 0 in every row: a skip edge along the spine always has its lane
    for (let k = row.start; k < row.end; k++) for (const id of cols[k]) {
      lo = Math.min(lo, lane.get(id));
      hi = Math.max(hi, lane.get(id));
    }
    return { lo, hi };
  };
  const styled = (rows, style) => rows.map((r) => ({ ...r, style, ...lanesOf(r) }));
  const heightOf = (rows) => 2 * PAD_Y + rows.reduce((sum, r, i) =>
    sum + (r.hi - r.lo + 1) * r.style.laneH + (i < rows.length - 1 ? gapBetween(r, rows[i + 1]) : 0), 0);

  const full = styled(chooseRows(0, nCols, widths.full, crossings, avail, FULL.minGap), FULL);
  let rows = full;
  if (heightOf(full) > budget) {
    // The rows around the selection stay full size; the others are squashed in place, or (if that is
    // still too tall) their columns are packed into overview rows. The full rows grow towards the
    // selection's neighbours while they fit.
    const target = boxes.get(selected) ? layer.get(selected) : nCols - 1;
    const at = Math.max(0, full.findIndex((r) => target >= r.start && target < r.end));
    const packed = (from, to) => (to > from ? styled(chooseRows(from, to, widths.packed, crossings, avail, PACKED.minGap), PACKED) : []);
    const arrangements = [
      (lo, hi) => full.map((r, i) => (i >= lo && i < hi ? r : { ...r, style: SQUASHED })),
      (lo, hi) => [...packed(0, full[lo].start), ...full.slice(lo, hi), ...packed(full[hi - 1].end, nCols)],
    ];
    for (const arrange of arrangements) {
      let [lo, hi] = [at, at + 1];
      rows = arrange(lo, hi);
      for (let grown = true; grown;) {
        grown = false;
        for (const [l, h] of [[lo, hi + 1], [lo - 1, hi]]) {
          if (l < 0 || h > full.length) continue;
          const next = arrange(l, h);
          if (heightOf(next) <= budget) {
            [lo, hi, rows, grown] = [l, h, next, true];
            break;
          }
        }
      }
      if (heightOf(rows) <= budget) break;
    }
  }

  // positions
  let top = PAD_Y;
  rows.forEach((row, r) => {
    const { style } = row;
    const w = (id) => style.boxW ?? boxes.get(id).fullW;
    const colW = style.boxW ? widths.packed : widths.full;
    const span = row.end - row.start;
    const used = colW.slice(row.start, row.end).reduce((a, b) => a + b, 0);
    const gap = span > 1 ? Math.min(style.maxGap, Math.max(style.minGap, (avail - used) / (span - 1))) : 0;
    let x = PAD_X + Math.max(0, (avail - used - gap * (span - 1)) / 2);
    row.top = top;
    row.left = x;
    for (let k = row.start; k < row.end; k++) {
      const centre = x + colW[k] / 2;
      for (const id of cols[k]) {
        const b = boxes.get(id);
        b.w = w(id);
        b.h = style.nodeH;
        b.x = centre - b.w / 2;
        b.y = top + (lane.get(id) - row.lo) * style.laneH + (style.laneH - style.nodeH) / 2;
        b.row = r;
        b.overview = style.overview;
      }
      x += colW[k] + gap;
    }
    row.right = x - gap;
    const rowTop = top;
    row.laneY = (l) => rowTop + (l - row.lo) * style.laneH + style.laneH / 2;
    top += (row.hi - row.lo + 1) * style.laneH;
    row.bottom = top;
    if (r < rows.length - 1) top += gapBetween(row, rows[r + 1]);
  });
  const height = top + PAD_Y;

  const routed = edges.map((e) => {
    const s = boxes.get(e.from);
    const t = boxes.get(e.to);
    const along = spine.get(e.from) === e.to;  // consecutive on the spine: lane 0 is free between them
    return { from: e.node, to: e.to, wraps: s.row !== t.row && !along, along: along && s.row !== t.row,
      overview: s.overview && t.overview, d: edgePath(s, t, rows, along, width) };
  });
  return { boxes, edges: routed, rows, width, height, folded: rows !== full };
}

// Into a later row: out to the right, down into the gap under the row, along it, and in from the left
// (never further out than `edge`, the drawing's own border).
function turn(x1, y1, gy, x2, y2, edge) {
  const out = Math.min(x1 + ROUND, edge);
  const back = Math.max(x2 - 2 * ROUND, 1);
  return `C${out},${y1} ${out},${gy} ${x1},${gy} L${x2 - ROUND},${gy} C${back},${gy} ${back},${y2} ${x2},${y2}`;
}

function edgePath(s, t, rows, along, width) {
  const sx = s.x + s.w;
  const sy = s.y + s.h / 2;
  const tx = t.x - 2;  // room for the arrowhead
  const ty = t.y + t.h / 2;
  if (s.row === t.row) {
    const dx = Math.max(s.overview ? 3 : 12, (tx - sx) / 2);
    return `M${sx},${sy} C${sx + dx},${sy} ${tx - dx},${ty} ${tx},${ty}`;
  }
  const gapBelow = (r) => (rows[r].bottom + rows[r + 1].top) / 2;
  if (along) {
    // a skip edge along the spine (a residual stream): along lane 0 of every row it passes
    let d = `M${sx},${sy} L${rows[s.row].right},${sy} `;
    let y = sy;
    for (let r = s.row; r < t.row; r++) {
      const next = rows[r + 1];
      const ny = next.laneY(0);
      const endX = r + 1 === t.row ? tx : next.right;
      d += `${turn(rows[r].right, y, gapBelow(r), next.left, ny, width - 1)} L${endX},${ny} `;
      y = ny;
    }
    return d.trim();
  }
  if (t.row === s.row + 1) return `M${sx},${sy} ${turn(sx, sy, gapBelow(s.row), tx, ty, width - 1)}`;
  // any other long edge: down the right margin to the gap above its target's row
  const mx = width - 3;
  const g1 = gapBelow(s.row);
  const g2 = gapBelow(t.row - 1);
  return `M${sx},${sy} C${sx + ROUND},${sy} ${sx + ROUND},${g1} ${sx + 2 * ROUND},${g1} L${mx - ROUND},${g1} `
    + `Q${mx},${g1} ${mx},${g1 + ROUND} L${mx},${g2 - ROUND} Q${mx},${g2} ${mx - ROUND},${g2} `
    + `L${tx - ROUND},${g2} C${tx - 2 * ROUND},${g2} ${tx - 2 * ROUND},${ty} ${tx},${ty}`;
}

// Whether `name` is drawn full size (every box of it): if not, selecting it asks for a new layout.
export function shownInFull(layout, name) {
  let found = false;
  for (const b of layout.boxes.values()) {
    if (b.name !== name) continue;
    if (b.overview) return false;
    found = true;
  }
  return found || !layout.folded;
}
