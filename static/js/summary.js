// The run at a glance (loss and how many gradients agree) and the minibatch as text.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);

const STATUS_ORDER = ["exact", "approx", "mismatch", "shape_mismatch", "missing"];
const BATCH_SHOWN = 256;  // a batch of 4096 would be 4096 DOM nodes for text nobody scrolls through

export function drawSummary(lossEl, countsEl, dataEl, run, t) {
  dataEl.textContent = t("data_info", { name: run.data.name, words: run.data.words.toLocaleString(t("locale")) });
  dataEl.title = t("data_title", { vocab: run.data.vocab, fingerprint: run.data.fingerprint });
  lossEl.textContent = fmt.loss(run.loss);
  const total = run.nodes.length;
  const exact = run.counts.exact ?? 0;
  const chips = [el("span", { class: `total ${exact === total ? "all-exact" : ""}`.trim(), dataset: { exact, total } },
    t("counts_all", { n: exact, total }))];
  for (const status of STATUS_ORDER.slice(1)) {
    const n = run.counts[status];
    if (n) chips.push(el("span", { class: `count badge badge-${status}`, title: t(`status_${status}_title`) }, `${n} ${t(`status_${status}`)}`));
  }
  fill(countsEl, ...chips);
}

export function drawSummaryMessage(lossEl, countsEl, text) {
  lossEl.textContent = "—";
  fill(countsEl, el("span", { class: "muted" }, text));
}

export function drawBatch(list, batch, t) {
  const shown = batch.slice(0, BATCH_SHOWN).map((item) =>
    el("li", {}, el("code", { class: "ctx" }, item.context), el("span", { class: "arrow", "aria-hidden": "true" }, "→"),
      el("code", { class: "tgt" }, item.target)));
  if (batch.length > BATCH_SHOWN) shown.push(el("li", { class: "more muted" }, t("batch_more", { n: batch.length - BATCH_SHOWN })));
  // the grid's columns fit the network's context length (app.css)
  const longest = Math.max(1, ...batch.slice(0, BATCH_SHOWN).map((item) => item.context.length + item.target.length - 1));
  list.style.setProperty("--ctx", String(longest));
  fill(list, ...shown);
}

// A run of a trained network says so ("after 20,000 training steps"), with the way back to the
// gradients at initialisation; at initialisation there is nothing to say.
export function drawTrained(container, steps, t) {
  const n = Number(steps) || 0;
  container.hidden = n === 0;
  if (!n) {
    fill(container);
    return;
  }
  fill(container,
    el("span", { class: "trained-chip", dataset: { steps: String(n) } }, t("trained_after", { steps: n.toLocaleString(t("locale")) })),
    el("button", { type: "button", class: "link", id: "at-init", title: t("at_init_title") }, t("at_init")));
}
