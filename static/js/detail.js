// The node detail beside the figure: forward line, backward formula, notes, shape, comparison and
// statistics. It draws the node document the server sent; nothing here is derived from tensors.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);
const { statusBadge } = await import(`./table.js${v}`);

// Transposed (a row per statistic, a column per tensor): four numeric columns fit the narrow panel.
const STAT_TENSORS = ["value", "manual", "autograd", "diff"];
const STAT_NAMES = ["min", "max", "mean", "std", "norm"];

function statsTable(stats, t) {
  return el("table", { class: "stats" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""),
      STAT_TENSORS.map((name) => el("th", { scope: "col", class: `r stats-${name}` }, t(`row_${name}`))))),
    el("tbody", {}, STAT_NAMES.map((stat) => el("tr", {},
      el("th", { scope: "row" }, t(`stat_${stat}`)),
      STAT_TENSORS.map((name) => {
        const s = stats[name];
        const x = s ? s[stat] : null;
        return el("td", { class: "r num", title: x !== null && x !== undefined ? String(x) : null }, fmt.num(x, 2));
      })))));
}

function displayNote(doc, t) {
  if (!doc.how) return null;
  if (doc.downsampled) {
    return el("p", { class: "display-note downsampled", dataset: { downsampled: "true" } },
      el("span", { class: "tag tag-warn" }, t("downsampled")), " ", doc.how);
  }
  return el("p", { class: "display-note" }, el("span", { class: "tag" }, t("display")), " ", doc.how);
}

export function drawDetail(container, doc, t) {
  const s = doc.summary;
  const local = statusBadge(s.local_status, t, "badge-small");
  local.textContent = `${t("local_check")}: ${t(`status_${s.local_status}`)}`;
  local.title = t("col_local_title");
  const forward = s.kind === "param"
    ? el("dd", { class: "muted" }, t("param_forward"))
    : el("dd", {}, el("code", { class: "code-line" }, s.forward));
  const compare = [
    [t("maxdiff"), fmt.diff(s.maxdiff)],
    [t("relerr"), fmt.num(s.relerr)],
    [`${t("local_check")} ${t("maxdiff")}`, fmt.diff(s.local_maxdiff)],
  ];
  const parts = [
    el("header", { class: "detail-head" },
      el("h2", { class: "detail-name", id: "detail-name", dataset: { node: doc.name } }, el("code", {}, doc.name)),
      el("span", { class: "chip" }, t(`kind_${doc.kind}`)),
      el("span", { class: "detail-shape num", title: t("shape") }, fmt.shape(doc.shape)),
      el("span", { class: "detail-badges" }, statusBadge(s.status, t), local)),
    el("dl", { class: "detail-lines" },
      el("dt", {}, t("forward")), forward,
      el("dt", {}, t("backward")), el("dd", {}, el("pre", { class: "formula" }, s.formula))),
    s.fused ? el("p", { class: "note note-fused" }, t("fused_by", { block: s.fused })) : null,
    s.skipped_by ? el("p", { class: "note note-skipped", id: "detail-skipped" }, t("skipped_title", { block: s.skipped_by })) : null,
    s.notes.map((text) => el("p", { class: "note" }, el("strong", {}, `${t("note")}: `), text)),
    s.message ? el("p", { class: `note note-${s.status}` }, s.message) : null,
    s.nonfinite ? el("p", { class: "note note-mismatch" }, t("nonfinite")) : null,
    el("p", { class: "compare" }, compare.map(([label, value]) =>
      el("span", { class: "compare-item" }, el("span", { class: "muted" }, label), " ", el("span", { class: "num" }, value)))),
    displayNote(doc, t),
    el("h3", { class: "subhead" }, t("stats")),
    statsTable(doc.stats, t),
  ];
  fill(container, parts);  // fill() skips the absent (null) parts
}

export function drawDetailMessage(container, text) {
  fill(container, el("p", { class: "detail-empty muted" }, text));
}
