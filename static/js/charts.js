// The Train view's four live charts, drawn with plotly.js from the stream's events as they are:
//   loss        log10 of the mean minibatch loss per progress event (the lecture's plot of lossi)
//   audit       manual vs autograd: the max relative difference per parameter at each audit step. Training
//               runs the fast fused backward, whose float32 rounding differs from autograd's by ~1e-7:
//               a guide line and a caption say so, and the axis spans several decades so it has ticks.
//   ratio       update-to-data ratio per parameter (already log10 from the server), ideal near -3
//   saturation  the fraction of tanh units with |h| > 0.97 (a network without tanh says so instead)
// The parameters are the network's, as the stream's start event names them.
// Events are buffered and drawn with Plotly.extendTraces at most five times a second: a redraw costs
// far more than an event, and nobody reads a curve faster than that.

const v = new URL(import.meta.url).search;
const { el, add } = await import(`./dom.js${v}`);

const COLORS = ["#3457d5", "#d9822b", "#8e5cc9", "#18864b", "#c8322f", "#0f9ab3", "#7a8293", "#b8860b", "#d6478f", "#5a6fd8"];
const LEGEND_MAX = 8;  // more parameters than this (WaveNet 12, GPT ~30): no legend, the hover names them
const MIN_INTERVAL_MS = 200;
const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif', size: 11, color: "#3b4456" };
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] };

function axis(title, extra = {}) {
  return { title: { text: title, standoff: 4 }, gridcolor: "#eceef3", zerolinecolor: "#d5d9e1", linecolor: "#cfd4dd", ticks: "outside", ticklen: 3, ...extra };
}

function baseLayout(t, steps, yaxis, extra = {}) {
  return {
    font: FONT,
    margin: { l: 52, r: 10, t: 8, b: 34 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    showlegend: false,
    xaxis: axis(t("chart_step"), { range: [0, steps], tickformat: "~s" }),
    yaxis,
    hovermode: "x unified",
    ...extra,
  };
}

// Until its first point, a chart shows no y ticks (an empty autorange means nothing) but a short message.
function emptyNote(text) {
  return { name: "empty", xref: "paper", yref: "paper", x: 0.5, y: 0.72, showarrow: false, text, font: { size: 12, color: "#6b7385" } };
}

function withEmpty(layout, text) {
  return { ...layout, yaxis: { ...layout.yaxis, showticklabels: false }, annotations: [...(layout.annotations ?? []), emptyNote(text)] };
}

// float32's machine epsilon, 2^-23: the size of the rounding the fused backward's audit shows
const FLOAT32_EPS = 2 ** -23;
// the audit's log axis always spans these decades (log10) at least: ticks 1e-9 … 1e-5 even when every
// difference sits within one decade (plotly's autorange gave a single tick label then)
const AUDIT_SPAN = [-9, -5];

// The audit axis range (log10 units) that holds AUDIT_SPAN and every positive value seen.
function auditRange(lo, hi) {
  return [Math.min(AUDIT_SPAN[0], Math.floor(Math.log10(lo))), Math.max(AUDIT_SPAN[1], Math.ceil(Math.log10(hi)))];
}

function auditGuide(t) {
  return {
    shapes: [{ name: "eps", type: "line", xref: "paper", x0: 0, x1: 1, y0: FLOAT32_EPS, y1: FLOAT32_EPS,
      line: { color: "#b4bbc8", width: 1, dash: "dot" } }],
    annotations: [{ name: "eps", xref: "paper", x: 1, y: Math.log10(FLOAT32_EPS), xanchor: "right", yanchor: "bottom",
      showarrow: false, text: t("chart_audit_eps"), font: { size: 10, color: "#6b7385" } }],
  };
}

const paramLegend = { orientation: "h", x: 0, y: 1, yanchor: "bottom", font: { size: 10 }, itemwidth: 30, tracegroupgap: 0 };

export class TrainCharts {
  constructor(divs, Plotly) {
    this.divs = divs;  // {loss, audit, ratio, saturation}
    this.params = [];  // the network's parameters, one trace each on the audit and ratio charts
    this.noTanh = false;
    this.Plotly = Plotly;
    // a caption under the audit chart (the last child of its card): why its differences are not zero
    // beside "26/26 bit-exact"
    this.caption = el("p", { class: "muted chart-caption", id: "chart-audit-caption" });
    add(divs.audit.parentElement, this.caption);
    this.buffer = null;
    this.timer = null;
    this.last = 0;
    this.ready = Promise.resolve();
    this.drawing = Promise.resolve();
  }

  emptyBuffer() {
    return {
      loss: { x: [], y: [], customdata: [] },
      audit: this.params.map(() => ({ x: [], y: [] })),
      ratio: this.params.map(() => ({ x: [], y: [] })),
      saturation: { x: [], y: [] },
    };
  }

  // Empty charts for a run of `config` (the stream's start event, or the form before any run);
  // `params`: the network's parameters, `tanh`: its tanh nodes (null: not known yet).
  reset(config, t, { params = [], tanh = null } = {}) {
    clearTimeout(this.timer);
    this.timer = null;
    this.params = params;
    this.noTanh = Array.isArray(tanh) && tanh.length === 0;
    this.buffer = this.emptyBuffer();
    this.config = config;
    this.t = t;
    this.filled = { loss: false, audit: false, ratio: false, saturation: false };
    this.auditSeen = { lo: Infinity, hi: 0, range: [...AUDIT_SPAN] };
    const waiting = t(config.lr ? "chart_waiting" : "chart_idle");
    const auditOff = config.audit_every === 0 || config.audit_every === "0";
    const P = this.Plotly;
    const steps = Number(config.steps) || 1;
    // the step the rate drops at (none when the recipe keeps one rate: the GPT's AdamW)
    const decays = config.lr_decay_at > 0 && config.lr_decay_at < 1 && config.lr_decayed !== config.lr;
    const decayAt = decays ? steps * config.lr_decay_at : null;
    const decay = decayAt ? {
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: decayAt, x1: decayAt, y0: 0, y1: 1, line: { color: "#b4bbc8", width: 1, dash: "dot" } }],
      annotations: [{ name: "lr-decay", xref: "x", yref: "paper", x: decayAt, y: 1, yanchor: "top", xanchor: "left", showarrow: false,
        text: ` ${t("chart_lr_decay", { lr: config.lr_decayed })}`, font: { size: 10, color: "#6b7385" } }],
    } : {};
    const traces = (extra) => this.params.map((name, i) => ({
      type: "scatter", mode: "lines", name, x: [], y: [], line: { color: COLORS[i % COLORS.length], width: 1.6 }, ...extra,
    }));
    const legend = this.params.length <= LEGEND_MAX;
    this.caption.textContent = t("chart_audit_caption");
    this.ready = Promise.all([
      P.react(this.divs.loss, [{
        type: "scatter", mode: "lines", name: "log10 loss", x: [], y: [], customdata: [], line: { color: "#3457d5", width: 1.5 },
        hovertemplate: `${t("chart_loss_hover")}<extra></extra>`,
      }], withEmpty(baseLayout(t, steps, axis(t("chart_log10_loss")), { ...decay }), waiting), CONFIG),
      P.react(this.divs.audit, traces({ mode: "lines+markers", marker: { size: 4 }, hovertemplate: "%{y:.2e}" }),
        withEmpty(baseLayout(t, steps, axis(t("chart_rel_diff"), { type: "log", tickformat: ".0e", dtick: 1,
          range: [...AUDIT_SPAN], autorange: false }),
        { showlegend: legend, legend: paramLegend, margin: { l: 52, r: 10, t: 26, b: 34 }, ...auditGuide(t) }),
        auditOff ? t("chart_audit_off") : waiting), CONFIG),
      P.react(this.divs.ratio, traces({ hovertemplate: "%{y:.2f}" }),
        withEmpty(baseLayout(t, steps, axis(t("chart_log10_ratio")), {
          showlegend: legend, legend: paramLegend, margin: { l: 52, r: 10, t: 26, b: 34 },
          shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: -3, y1: -3, line: { color: "#1c2333", width: 1.2, dash: "dash" } }],
          annotations: [{ name: "ideal", xref: "paper", x: 1, y: -3, xanchor: "right", yanchor: "bottom", showarrow: false,
            text: t("chart_ideal"), font: { size: 10, color: "#1c2333" } }],
        }), waiting), CONFIG),
      P.react(this.divs.saturation, [{
        type: "scatter", mode: "lines", name: "|h| > 0.97", x: [], y: [], line: { color: "#d9822b", width: 1.6 },
        fill: "tozeroy", fillcolor: "rgba(217, 130, 43, 0.12)", hovertemplate: "%{y:.1%}<extra></extra>",
      }], withEmpty(baseLayout(t, steps, axis(t("chart_saturated"), { tickformat: ".0%", rangemode: "tozero" })),
        this.noTanh ? t("chart_no_tanh") : waiting), CONFIG),
    ]).then(() => undefined);
    return this.ready;
  }

  // One stream event into the buffer; drawn by the next flush.
  add(event) {
    const b = this.buffer;
    if (!b) return;
    if (event.kind === "progress" && event.loss > 0) {
      b.loss.x.push(event.step);
      b.loss.y.push(Math.log10(event.loss));  // display only: the lecture plots log10 of the loss
      b.loss.customdata.push(event.loss);
    } else if (event.kind === "audit") {
      this.params.forEach((name, i) => {
        const y = event.max_rel_diff[name] ?? null;
        b.audit[i].x.push(event.step);
        b.audit[i].y.push(y);
        if (y > 0 && Number.isFinite(y)) {
          this.auditSeen.lo = Math.min(this.auditSeen.lo, y);
          this.auditSeen.hi = Math.max(this.auditSeen.hi, y);
        }
      });
    } else if (event.kind === "stats") {
      this.params.forEach((name, i) => {
        b.ratio[i].x.push(event.step);
        b.ratio[i].y.push(event.update_ratio[name] ?? null);
      });
      if (!this.noTanh) {
        b.saturation.x.push(event.step);
        b.saturation.y.push(event.saturation);
      }
    } else {
      return;
    }
    this.schedule();
  }

  schedule() {
    if (this.timer) return;
    const wait = Math.max(0, this.last + MIN_INTERVAL_MS - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  // Draws what is buffered; resolves when it is on screen. Flushes run one after another.
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const b = this.buffer;
    if (!b) return this.drawing;
    this.buffer = this.emptyBuffer();
    this.last = performance.now();
    const P = this.Plotly;
    const many = (list) => ({ x: list.map((s) => s.x), y: list.map((s) => s.y) });
    const idx = this.params.map((_, i) => i);
    const extend = (chart, update, indices) => {
      const div = this.divs[chart];
      const first = !this.filled[chart];
      this.filled[chart] = true;
      return P.extendTraces(div, update, indices).then(() => first && P.relayout(div, {
        "yaxis.showticklabels": true, annotations: (div.layout.annotations ?? []).filter((a) => a.name !== "empty") }));
    };
    this.drawing = this.drawing.then(() => this.ready).then(() => Promise.all([
      b.loss.x.length ? extend("loss", { x: [b.loss.x], y: [b.loss.y], customdata: [b.loss.customdata] }, [0]) : null,
      b.audit[0]?.x.length ? extend("audit", many(b.audit), idx).then(() => this.fitAudit()) : null,
      b.ratio[0]?.x.length ? extend("ratio", many(b.ratio), idx) : null,
      b.saturation.x.length ? extend("saturation", { x: [b.saturation.x], y: [b.saturation.y] }, [0]) : null,
    ])).then(() => undefined);
    return this.drawing;
  }

  // Widens the audit axis when a difference falls outside it (a wrong formula shows as 1e-1, not off-chart).
  fitAudit() {
    const seen = this.auditSeen;
    if (!(seen.hi > 0)) return null;
    const range = auditRange(seen.lo, seen.hi);
    if (range[0] === seen.range[0] && range[1] === seen.range[1]) return null;
    seen.range = range;
    return this.Plotly.relayout(this.divs.audit, { "yaxis.range": range });
  }

  // The final losses as dashed levels on the loss chart (their log10, like the curve).
  markLosses(losses, t) {
    const lines = [["train", losses.train_loss, "#3457d5"], ["val", losses.val_loss, "#18864b"]].filter(([, x]) => x > 0);
    const layout = this.divs.loss.layout ?? {};
    const shapes = [...(layout.shapes ?? []).filter((s) => !s.name?.startsWith("final-")),
      ...lines.map(([name, x, color]) => ({ name: `final-${name}`, type: "line", xref: "paper", x0: 0, x1: 1, y0: Math.log10(x), y1: Math.log10(x),
        line: { color, width: 1, dash: "dash" } }))];
    const annotations = [...(layout.annotations ?? []).filter((a) => !a.name?.startsWith("final-")),
      ...lines.map(([name, x, color]) => ({ name: `final-${name}`, xref: "paper", x: 0.01, y: Math.log10(x), xanchor: "left",
        yanchor: name === "val" ? "bottom" : "top", showarrow: false, text: `${t(`loss_${name}`)} ${x.toFixed(4)}`, font: { size: 10, color } }))];
    return this.drawing.then(() => this.Plotly.relayout(this.divs.loss, { shapes, annotations }));
  }

  // A language change: the axis titles and the labels on the charts, the data untouched.
  relabel(t) {
    this.t = t;
    this.caption.textContent = t("chart_audit_caption");
    if (!this.config) return Promise.resolve();
    const P = this.Plotly;
    const cfg = this.config;
    const auditOff = cfg.audit_every === 0 || cfg.audit_every === "0";
    const waiting = t(cfg.lr ? "chart_waiting" : "chart_idle");
    const text = (chart, a) => {
      if (a.name === "lr-decay") return ` ${t("chart_lr_decay", { lr: cfg.lr_decayed })}`;
      if (a.name === "ideal") return t("chart_ideal");
      if (a.name === "eps") return t("chart_audit_eps");
      if (a.name === "empty") {
        if (chart === "audit" && auditOff) return t("chart_audit_off");
        return chart === "saturation" && this.noTanh ? t("chart_no_tanh") : waiting;
      }
      if (a.name?.startsWith("final-")) return `${t(`loss_${a.name.slice(6)}`)} ${a.text.split(" ").at(-1)}`;
      return a.text;
    };
    const titles = { loss: "chart_log10_loss", audit: "chart_rel_diff", ratio: "chart_log10_ratio", saturation: "chart_saturated" };
    this.drawing = this.drawing.then(() => this.ready).then(() => Promise.all(Object.entries(titles).map(([chart, key]) => {
      const div = this.divs[chart];
      return P.relayout(div, {
        "xaxis.title.text": t("chart_step"),
        "yaxis.title.text": t(key),
        annotations: (div.layout?.annotations ?? []).map((a) => ({ ...a, text: text(chart, a) })),
      });
    }))).then(() => undefined);
    return this.drawing;
  }

  pointCount() {
    return this.divs.loss.data?.[0]?.x?.length ?? 0;
  }
}
