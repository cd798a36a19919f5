// What a judged answer carries beyond its status, drawn the same way in the dojo's verdict and in a
// graded cell's rows: the one-edit fix (`fix`), the proof that an approx answer is rounding
// (`rounding`), the same code on other minibatches (`batches`) and the verdict under other tolerance
// standards (`lens`). Each part is one short line; the numbers behind it are in a table or a tooltip
// for whoever opens the details. The sentences come from the server, in the page's language; only
// the labels are the page's.

const v = new URL(import.meta.url).search;
const { el } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);

// "torch.testing.assert_close" -> "assert_close", "llm.c test_gpt2" -> "llm.c": short enough for a pill.
export function shortStandard(name) {
  const words = name.split(" ");
  return words.length > 1 ? words[0] : name.split(".").at(-1);
}

// The share of a standard's tolerance the worst entry takes: "16 %", "> 1000 %", "∞".
function share(used) {
  if (used === null || used === undefined) return "∞";
  const pct = used * 100;
  if (pct > 1000) return "> 1000 %";
  return `${pct < 1 && pct > 0 ? pct.toPrecision(1) : Math.round(pct)} %`;
}

function mark(ok) {
  return el("span", { class: ok ? "tick yes" : "tick no", "aria-hidden": "true" }, ok ? "✓" : "✗");
}

// The batches the answer failed on (another minibatch of the same network and sizes).
export function failedBatches(batches) {
  return (batches ?? []).filter((b) => !b.passed);
}

// "one edit makes it right: …" with a button that puts the caret where the edit goes.
export function fixLine(fix, t, goTo) {
  if (!fix) return null;
  const go = el("button", { type: "button", class: "link fix-goto", title: t("fix_goto_title") },
    t("fix_goto", { line: fix.line, col: fix.col }));
  go.addEventListener("click", () => goTo(fix.line, fix.col));
  return el("p", { class: "verdict-line fix-line", dataset: { kind: fix.kind, status: fix.status } },
    el("span", { class: "line-icon", "aria-hidden": "true" }, "✎"), el("span", {}, fix.message, " ", go));
}

// For an approx answer: "rounding, proved in float64 · at most 27 ulps", its numbers in the tooltip.
export function roundingLine(rounding, t) {
  if (!rounding) return null;
  const numbers = t("rounding_numbers", {
    ulps: rounding.ulps, index: `[${rounding.index.join(", ")}]`, yours: fmt.num(rounding.yours, 9),
    autograd: fmt.num(rounding.autograd, 9), f64: fmt.diff(rounding.float64_maxdiff),
  });
  const head = rounding.proved === true ? t("rounding_proved") : rounding.proved === false ? t("rounding_not_proved") : t("rounding_ulps_only");
  return el("p", { class: `verdict-line rounding-line ${rounding.proved ? "proved" : ""}`.trim(), title: numbers,
    dataset: { proved: String(rounding.proved), ulps: rounding.ulps } },
  el("span", { class: "line-icon", "aria-hidden": "true" }, rounding.proved ? "≈" : "?"),
  el("span", {}, head, el("span", { class: "muted" }, ` · ${t("rounding_ulps", { n: rounding.ulps })}`)));
}

// The first other minibatch the answer fails on, in the server's words.
export function batchWarning(batches, t) {
  const failed = failedBatches(batches);
  if (!failed.length) return null;
  const first = failed[0];
  return el("p", { class: "verdict-line batch-warning", dataset: { seed: String(first.seed) } },
    el("span", { class: "line-icon", "aria-hidden": "true" }, "⚠"),
    el("span", {}, t("batch_fails", { seed: first.seed, n: failed.length, total: batches.length }), " ",
      first.diagnosis[0] ?? t(`status_${first.status}`)));
}

// "other minibatches ✓ ✓ ✗": one mark per batch, its seed and finding in the tooltip.
export function batchStrip(batches, t) {
  if (!batches?.length) return null;
  return el("span", { class: "strip batch-strip" },
    el("span", { class: "strip-label muted" }, t("batches_label")),
    batches.map((b) => el("span", {
      class: `pill ${b.passed ? "pill-ok" : "pill-bad"}`, dataset: { seed: String(b.seed), status: b.status },
      title: `${t("batch_seed", { seed: b.seed })}: ${t(`status_${b.status}`)}${b.diagnosis[0] ? ` · ${b.diagnosis[0]}` : ""}`,
    }, mark(b.passed))));
}

// "tolerances ✓ allclose ✓ assert_close ✗ gradcheck …": the answer under each named standard.
export function lensStrip(lens, t) {
  if (!lens?.length) return null;
  return el("span", { class: "strip lens-strip" },
    el("span", { class: "strip-label muted", title: t("lens_title") }, t("lens_label")),
    lens.map((row) => el("span", {
      class: `pill ${row.passed ? "pill-ok" : "pill-bad"}`, dataset: { standard: row.standard, passed: String(row.passed) },
      title: `${row.source} · ${t("lens_used", { share: share(row.used) })}`,
    }, mark(row.passed), shortStandard(row.standard))));
}

// The lens as a table, for the details: standard, rtol, atol, the share of the tolerance used, verdict.
export function lensTable(lens, t) {
  if (!lens?.length) return null;
  return el("table", { class: "lens-table" },
    el("thead", {}, el("tr", {}, [t("lens_standard"), "rtol", "atol", t("lens_share"), ""].map((h, i) =>
      el("th", { scope: "col", class: i && i < 4 ? "r" : null }, h)))),
    el("tbody", {}, lens.map((row) => el("tr", { title: row.source },
      el("th", { scope: "row" }, el("code", {}, row.standard)),
      el("td", { class: "r num" }, fmt.num(row.rtol, 2)),
      el("td", { class: "r num" }, fmt.num(row.atol, 2)),
      el("td", { class: "r num" }, share(row.used)),
      el("td", { class: "c" }, mark(row.passed))))));
}

// What the details hold: the diagnosis lines after the first (without the fix's, which has its own
// line), the lens table, the rounding numbers and every other minibatch's finding.
export function detailParts(item, t) {
  const rest = item.diagnosis.slice(1).filter((line) => line !== item.fix?.message);
  const r = item.rounding;
  return [
    rest.length ? el("ul", { class: "diagnosis diagnosis-rest" }, rest.map((text) => el("li", {}, text))) : null,
    r ? el("p", { class: "detail-numbers" }, t("rounding_numbers", {
      ulps: r.ulps, index: `[${r.index.join(", ")}]`, yours: fmt.num(r.yours, 9), autograd: fmt.num(r.autograd, 9),
      f64: fmt.diff(r.float64_maxdiff) })) : null,
    item.batches?.length ? el("ul", { class: "batch-list-detail" }, item.batches.map((b) => el("li", {},
      mark(b.passed), " ", el("span", { class: "num" }, t("batch_seed", { seed: b.seed })), ": ",
      b.diagnosis[0] ?? t(`status_${b.status}`)))) : null,
    lensTable(item.lens, t),
  ];
}

// The details, folded (a learner reads the first line; the rest is one click away).
export function details(item, t, id = null) {
  const parts = detailParts(item, t).filter(Boolean);
  if (!parts.length) return null;
  return el("details", { class: "verdict-details", id },
    el("summary", {}, t("verdict_details")), parts);
}
