// The learner's progress over a network's gradients, per network and backward variant: which nodes
// they have solved (exact or approx, in the dojo or in a whole cell), shown as a ninja belt and "12/26" (of the network's own count).

const v = new URL(import.meta.url).search;
const { el, svg, fill } = await import(`./dom.js${v}`);
const store = await import(`./store.js${v}`);

// The belt earned at each share of the network's gradients: white at the start, black when all are
// solved. Shares of 13ths, so the MLP's 26 gradients keep their belts at 4, 8, 12, 16, 20 and 26.
export const BELTS = [
  { name: "white", share: 0 },
  { name: "yellow", share: 2 / 13 },
  { name: "orange", share: 4 / 13 },
  { name: "green", share: 6 / 13 },
  { name: "blue", share: 8 / 13 },
  { name: "brown", share: 10 / 13 },
  { name: "black", share: 1 },
];

// The count of solved gradients a belt needs, out of `total`.
export function beltAt(belt, total) {
  return belt.share === 1 ? total : Math.round(belt.share * total);
}

const PASSED = new Set(["exact", "approx"]);

export function passed(status) {
  return PASSED.has(status);
}

export function beltFor(count, total) {
  let belt = BELTS[0];
  for (const b of BELTS) if (count >= beltAt(b, total)) belt = b;
  return belt;
}

export function nextBelt(count, total) {
  return BELTS.find((b) => beltAt(b, total) > count) ?? null;
}

// {node: {status, at}}: the best verdict so far (an exact is not downgraded by a later approx).
export function loadSolved(net, variant) {
  const solved = store.read(store.solvedKey(net, variant), {});
  return solved && typeof solved === "object" && !Array.isArray(solved) ? solved : {};
}

// Records passed verdicts [{name, status}]; returns the names solved for the first time.
export function recordSolved(net, variant, verdicts) {
  const solved = loadSolved(net, variant);
  const fresh = [];
  for (const { name, status } of verdicts) {
    if (!passed(status)) continue;
    if (!solved[name]) fresh.push(name);
    if (solved[name]?.status !== "exact") solved[name] = { status, at: new Date().toISOString() };
  }
  store.write(store.solvedKey(net, variant), solved);
  return fresh;
}

export function solvedNames(solved, names) {
  return names.filter((name) => solved[name]);
}

// A tied belt: the band, the knot and its two ends, in the belt's colour (CSS sets it by class).
function beltIcon(name) {
  return svg("svg", { class: `belt-icon belt-${name}`, viewBox: "0 0 30 17", width: "30", height: "17", "aria-hidden": "true" },
    svg("rect", { x: "0.5", y: "3.5", width: "29", height: "5", rx: "1.5" }),
    svg("path", { d: "M13.5 8 L10 16 L13 16 L15 10.5 Z" }),
    svg("path", { d: "M16.5 8 L20 16 L17 16 L15 10.5 Z" }),
    svg("rect", { x: "12", y: "1.5", width: "6", height: "9", rx: "1.5" }));
}

export function drawBelt(container, count, total, t) {
  const belt = beltFor(count, total);
  const next = nextBelt(count, total);
  const title = next
    ? t("belt_title_next", { belt: t(`belt_${belt.name}`), n: count, total, more: beltAt(next, total) - count, next: t(`belt_${next.name}`) })
    : t("belt_title_done", { belt: t(`belt_${belt.name}`), n: count, total });
  container.title = title;
  container.dataset.solved = String(count);
  container.dataset.belt = belt.name;
  container.setAttribute("role", "img");
  container.setAttribute("aria-label", title);
  fill(container,
    beltIcon(belt.name),
    el("span", { class: "belt-count num", "aria-hidden": "true" }, `${count}/${total}`),
    el("span", { class: "belt-name", "aria-hidden": "true" }, t(`belt_${belt.name}`)));
}
