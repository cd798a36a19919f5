// The cmp table: the network's gradients in backward order, as the lecture's cmp() printed them, plus the
// status badges. It draws what it is given; main.js owns selection and clicks (event delegation).

const v = new URL(import.meta.url).search;  // siblings share this module's ?v= so a release busts all
const { el, fill, add } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);

export function statusBadge(status, t, extraClass = "") {
  if (!status) return el("span", { class: "badge badge-none" }, "—");
  return el("span", {
    class: `badge badge-${status} ${extraClass}`.trim(),
    title: t(`status_${status}_title`),
    dataset: { status },
  }, t(`status_${status}`));
}

// The local check in one character, so the column stays narrow: = exact, ≈ approx, ≠ mismatch
// (and, in a graded cell, ! for a step whose own lines failed when run alone).
const LOCAL_SYMBOL = { exact: "=", approx: "≈", mismatch: "≠", shape_mismatch: "⊘", missing: "–", error: "!" };

export function localBadge(status, t) {
  const text = t("local_title", { status: t(`status_${status}`) });
  return el("span", { class: `badge badge-${status} badge-symbol`, title: text, "aria-label": text, dataset: { status } },
    LOCAL_SYMBOL[status] ?? "?");
}

function check(ok, t, rounding = false) {
  const cls = ok ? "tick yes" : rounding ? "tick no rounding" : "tick no";
  return el("span", { class: cls, "aria-label": t(ok ? "yes" : "no") }, ok ? "✓" : "✗");
}

function solvedMark(t) {
  return el("span", { class: "solved-mark", title: t("solved_title"), "aria-label": t("solved_title") }, "✓");
}

function row(node, t, solved) {
  const label = el("button", { type: "button", class: "node-link", dataset: { node: node.name } },
    el("code", {}, node.name),
    node.fused ? el("span", { class: "tag tag-fused", title: t("fused_by", { block: node.fused }) }, "fused") : null,
    node.skipped_by ? el("span", { class: "skip-mark", title: t("skipped_title", { block: node.skipped_by }),
      "aria-label": t("skipped") }, "↷") : null,
    solved.has(node.name) ? solvedMark(t) : null);
  return el("tr", { dataset: { node: node.name, status: node.status, skippedBy: node.skipped_by ?? null },
    class: `kind-${node.kind}${solved.has(node.name) ? " solved" : ""}${node.skipped_by ? " skipped" : ""}` },
    el("th", { scope: "row" }, label),
    el("td", { class: "c col-exact" }, check(node.exact, t, node.approx)),
    el("td", { class: "c col-approx" }, check(node.approx, t)),
    el("td", { class: "r num", dataset: { maxdiff: node.maxdiff ?? "" },
      title: node.relerr !== null ? `${t("relerr")} ${fmt.num(node.relerr)}` : null }, fmt.diff(node.maxdiff)),
    el("td", {}, statusBadge(node.status, t)),
    el("td", { class: "c" }, localBadge(node.local_status, t)));
}

// In the fused variant a row above each run of skipped nodes says which one-step formula skips them.
function groupRow(block, count, t) {
  return el("tr", { class: "group-row", dataset: { block } },
    el("td", { colspan: 6, title: t("skipped_title", { block }) }, t("skipped_group", { block, n: count })));
}

// `solved`: the nodes the learner has solved in the dojo (a small ✓ after the name).
export function drawTable(tbody, nodes, t, solved = new Set()) {
  const rows = [];
  nodes.forEach((node, i) => {
    const block = node.skipped_by;
    if (block && nodes[i - 1]?.skipped_by !== block) {
      let count = 0;
      while (nodes[i + count]?.skipped_by === block) count += 1;
      rows.push(groupRow(block, count, t));
    }
    rows.push(row(node, t, solved));
  });
  fill(tbody, rows);
}

// Progress changes without rebuilding the table (the selection and scroll position stay).
export function markSolved(tbody, solved, t) {
  for (const tr of tbody.querySelectorAll("tr[data-node]")) {
    const mark = tr.querySelector(".solved-mark");
    const is = solved.has(tr.dataset.node);
    tr.classList.toggle("solved", is);
    const link = tr.querySelector(".node-link");
    if (is && !mark && link) add(link, solvedMark(t));
    if (!is && mark) mark.remove();
  }
}

export function drawTableMessage(tbody, text) {
  fill(tbody, el("tr", { class: "placeholder" }, el("td", { colspan: 6 }, text)));
}

// Selection only toggles classes, so walking the nodes never rebuilds the table.
export function markSelected(tbody, name) {
  for (const tr of tbody.querySelectorAll("tr.selected")) {
    tr.classList.remove("selected");
    tr.querySelector(".node-link")?.removeAttribute("aria-current");
  }
  const tr = tbody.querySelector(`tr[data-node="${CSS.escape(name)}"]`);
  if (!tr) return;
  tr.classList.add("selected");
  tr.querySelector(".node-link")?.setAttribute("aria-current", "true");
  revealRow(tr);
}

// Scrolls the table (not the page) so the row is in view below the sticky header. Where the table
// does not scroll itself (a phone: the page scrolls), nothing moves: a click in the graph must not
// jump the page up to the table.
function revealRow(tr) {
  const wrap = tr.closest(".table-wrap");
  if (!wrap || wrap.scrollHeight <= wrap.clientHeight + 1) return;
  const head = wrap.querySelector("thead")?.offsetHeight ?? 0;
  const top = tr.offsetTop;
  const bottom = top + tr.offsetHeight;
  if (top - head < wrap.scrollTop) wrap.scrollTop = top - head;
  else if (bottom > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = bottom - wrap.clientHeight;
}
