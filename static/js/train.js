// The Train view: start and stop a training run that streams from the server, a progress bar with
// steps/s and time left, the four live charts, and at the end the three losses, 20 sampled names and
// a way into the gradient view of the trained network. The stream is the job: closing it (leaving the
// page, a second Stop) ends the training on the server. Stop asks the server to stop gracefully: it
// finishes the step, evaluates and sends what it reached, which this view shows like a finished run.
// A busy server (429 + Retry-After) is waited for, with a countdown, and asked again.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);
const fmt = await import(`./format.js${v}`);
const sse = await import(`./sse.js${v}`);
const api = await import(`./api.js${v}`);
const { TrainCharts } = await import(`./charts.js${v}`);

const STOP_GRACE_MS = 20_000;  // a stopping run sends its result within ~1 s; after this, close the stream

// The stream's name, chosen here so that the stop request can name it (and a proxy route both to the
// same server). getRandomValues, not randomUUID: the latter needs a secure context (https), and a
// class may reach the server by a plain http address on the school network.
function newStreamId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function duration(seconds, t) {
  if (!Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? t("secs", { s }) : t("mins", { m: Math.floor(s / 60), s: String(s % 60).padStart(2, "0") });
}

export class TrainView {
  // parts: {form, start, stop, section, bar, barFill, numbers, pill, result, charts: {loss, audit, ratio, saturation}}
  // hooks: readForm() → stream params, defaultSteps() → the steps an empty field means, plotly() → Promise<Plotly>, showError(err), clearError(),
  //        openGradients(runConfig), busyChanged(running)
  constructor(parts, hooks) {
    this.parts = parts;
    this.hooks = hooks;
    this.t = (key) => key;
    this.locale = "en-US";
    this.status = "idle";  // idle | starting | waiting | running | stopping | done | stopped | failed
    this.controller = null;
    this.streamId = null;
    this.retry = null;  // while waiting on a busy server: {until: ms timestamp, message}
    this.retryTimer = null;
    this.stopTimer = null;
    this.progress = null;  // the last progress event
    this.config = null;
    this.done = null;
    this.failure = "";
    this.charts = null;
    parts.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.running) this.start();
    });
    parts.stop.addEventListener("click", () => this.stop());
    parts.result.addEventListener("click", (event) => {
      if (event.target.closest("#open-trained") && this.done?.run_config) this.hooks.openGradients(this.done.run_config);
    });
  }

  // The charts' config before the start event: the steps left empty are the network's default.
  chartConfig(params) {
    return { steps: this.hooks.defaultSteps?.() ?? "", ...params };
  }

  get running() {
    return ["starting", "waiting", "running", "stopping"].includes(this.status);
  }

  async ensureCharts() {
    if (this.charts) return this.charts;
    const Plotly = await this.hooks.plotly();
    this.charts ??= new TrainCharts(this.parts.charts, Plotly);
    return this.charts;
  }

  // The view came on screen: the empty charts show what will be drawn, before any run.
  async show() {
    try {
      const charts = await this.ensureCharts();
      if (!charts.config) await charts.reset(this.chartConfig(this.hooks.readForm()), this.t);
    } catch {
      this.failure = this.t("plotly_failed");
      this.draw();
    }
  }

  // The form changed before any run (another network, its defaults arrived): the empty charts follow.
  async refreshIdle() {
    if (this.status !== "idle" || !this.charts) return;
    await this.charts.reset(this.chartConfig(this.hooks.readForm()), this.t);
  }

  relabel(t) {
    this.t = t;
    this.locale = t("locale");
    this.draw();
    this.charts?.relabel(t);
  }

  setStatus(status) {
    this.status = status;
    this.parts.section.dataset.state = status;
    this.hooks.busyChanged(this.running);
    this.draw();
  }

  async start() {
    const params = this.hooks.readForm();
    this.hooks.clearError();
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.progress = null;
    this.done = null;
    this.config = null;
    this.failure = "";
    this.parts.section.dataset.stream = "open";
    this.setStatus("starting");
    let charts;
    try {
      charts = await this.ensureCharts();
    } catch {
      this.failure = this.t("plotly_failed");
      this.setStatus("failed");
      return;
    }
    await charts.reset(this.chartConfig(params), this.t);
    try {
      for (;;) {
        this.streamId = newStreamId();
        try {
          await sse.streamEvents(api.trainStreamUrl({ ...params, stream_id: this.streamId }),
            { signal: controller.signal, onEvent: (name, data) => this.onEvent(name, data) });
          if (this.controller === controller && this.running) {  // ended without "done" or "error"
            this.failure = this.t("train_ended_early");
            this.setStatus("failed");
          }
          return;
        } catch (err) {
          if (this.controller !== controller) return;
          if (err.name === "AbortError") {
            this.setStatus("stopped");
            return;
          }
          if (err.status === 429 && err.retryAfter && this.status === "starting") {
            if (await this.waitToRetry(err, controller.signal)) continue;
            this.setStatus("idle");  // Stop while waiting: nothing ran
            return;
          }
          this.setStatus("failed");
          this.hooks.showError(err);
          return;
        }
      }
    } finally {
      clearTimeout(this.stopTimer);
      if (this.controller === controller) {
        await charts.flush();
        this.parts.section.dataset.stream = "closed";
      }
    }
  }

  // The server is busy (its training streams, or this client's share, are all in use): count down its
  // Retry-After on screen, then ask again. Resolves true to retry, false when Stop was pressed.
  waitToRetry(err, signal) {
    this.retry = { until: Date.now() + 1000 * err.retryAfter, message: err.message };
    this.setStatus("waiting");
    return new Promise((resolve) => {
      const finish = (again) => {
        clearInterval(this.retryTimer);
        signal.removeEventListener("abort", onAbort);
        this.retry = null;
        if (again) this.setStatus("starting");
        resolve(again);
      };
      const onAbort = () => finish(false);
      signal.addEventListener("abort", onAbort);
      this.retryTimer = setInterval(() => {
        if (Date.now() >= this.retry.until) finish(true);
        else this.drawResult();
      }, 250);
    });
  }

  // Stop: ask the server to end the run gracefully (it finishes the step, evaluates and sends done
  // with stopped: true). Before the run started, or on a second press, or if the server cannot be
  // asked, close the stream instead: that ends the training at once, with nothing to show.
  async stop() {
    if (!this.running) return;
    if (this.status !== "running" || !this.streamId) {
      this.controller?.abort();
      return;
    }
    const controller = this.controller;
    this.setStatus("stopping");
    try {
      await sse.stopStream(this.streamId);
    } catch {
      if (this.controller === controller) controller.abort();
      return;
    }
    clearTimeout(this.stopTimer);
    this.stopTimer = setTimeout(() => {
      if (this.controller === controller && this.status === "stopping") controller.abort();
    }, STOP_GRACE_MS);
  }

  onEvent(name, data) {
    if (name === "start") {
      this.config = data.config;
      if (data.stream_id) this.streamId = data.stream_id;
      this.charts.reset(data.config, this.t, { params: data.params, tanh: data.tanh });
      if (this.status === "starting") this.setStatus("running");
    } else if (name === "progress") {
      this.progress = data;
      this.charts.add(data);
      this.drawProgress();
    } else if (name === "audit" || name === "stats") {
      this.charts.add(data);
    } else if (name === "done") {
      this.done = data;
      this.progress = { ...(this.progress ?? {}), step: data.steps, steps: this.config?.steps ?? data.steps, steps_per_s: data.steps_per_s };
      this.charts.flush().then(() => this.charts.markLosses(data, this.t));
      this.setStatus(data.stopped ? "stopped" : "done");
    } else if (name === "error") {
      this.failure = data.message;
      this.setStatus("failed");
    }
  }

  draw() {
    const t = this.t;
    const { start, stop, pill } = this.parts;
    start.disabled = this.running;
    stop.disabled = !this.running;
    stop.textContent = t(this.status === "stopping" ? "train_stop_now" : "train_stop");
    for (const input of this.parts.form.querySelectorAll("input, select")) input.disabled = this.running;
    pill.textContent = t(`train_state_${this.status}`);
    pill.className = `train-pill pill-${this.status}`;
    this.drawProgress();
    this.drawResult();
  }

  drawProgress() {
    const t = this.t;
    const p = this.progress;
    const steps = p?.steps ?? this.config?.steps ?? 0;
    const step = p?.step ?? 0;
    const fraction = steps ? Math.min(1, step / steps) : 0;
    const { bar, barFill, numbers, section } = this.parts;
    barFill.style.width = `${(100 * fraction).toFixed(2)}%`;
    bar.setAttribute("aria-valuenow", String(step));
    bar.setAttribute("aria-valuemax", String(steps || 1));
    section.dataset.step = String(step);
    const n = (x) => Math.round(x).toLocaleString(this.locale);
    const items = [];
    if (steps) items.push([t("train_step"), `${n(step)} / ${n(steps)}`]);
    if (p?.steps_per_s) items.push([t("train_speed"), `${n(p.steps_per_s)}/s`]);
    if (p?.steps_per_s && this.status === "running") items.push([t("train_left"), duration((steps - step) / p.steps_per_s, t)]);
    if (p?.lr) items.push(["lr", String(p.lr)]);
    if (p?.loss) items.push([t("loss"), fmt.loss(p.loss)]);
    fill(numbers, ...(items.length ? items.map(([label, value]) =>
      el("span", { class: "train-number" }, el("span", { class: "muted" }, label), " ", el("span", { class: "num" }, value)))
      : [el("span", { class: "muted" }, t("train_hint"))]));
  }

  drawResult() {
    const t = this.t;
    const box = this.parts.result;
    const d = this.done;
    if (this.failure) {
      fill(box, el("h2", { class: "panel-title" }, t("train_result")), el("p", { class: "note note-mismatch", id: "train-failure" }, this.failure));
      return;
    }
    if (this.status === "waiting" && this.retry) {
      const s = Math.max(0, Math.ceil((this.retry.until - Date.now()) / 1000));
      fill(box, el("h2", { class: "panel-title" }, t("train_result")),
        el("p", { class: "note", id: "train-retry", dataset: { seconds: String(s) } }, t("train_busy_retry", { s })),
        el("p", { class: "muted" }, this.retry.message));
      return;
    }
    if (this.status === "stopping") {
      fill(box, el("h2", { class: "panel-title" }, t("train_result")),
        el("p", { class: "muted train-placeholder", id: "train-stopping" }, t("train_stopping")));
      return;
    }
    if (this.status === "stopped" && !d) {
      const step = this.progress?.step ?? 0;
      fill(box, el("h2", { class: "panel-title" }, t("train_result")),
        el("p", { class: "note", id: "train-stopped" }, t("train_stopped_at", { step: step.toLocaleString(this.locale) })));
      return;
    }
    if (!d) {
      fill(box, el("h2", { class: "panel-title" }, t("train_result")),
        el("p", { class: "muted train-placeholder" }, t(this.running ? "train_result_running" : "train_result_hint")));
      return;
    }
    const losses = ["train", "val", "test"].map((split) =>
      el("div", { class: `train-loss loss-${split}`, dataset: { split } },
        el("span", { class: "muted" }, t(`loss_${split}`)), el("span", { class: "num loss-value" }, fmt.loss(d[`${split}_loss`]))));
    const rc = d.run_config;
    const total = rc?.train_schedule_steps || rc?.train_steps || 0;
    fill(box,
      el("h2", { class: "panel-title" }, t("train_result")),
      d.stopped ? el("p", { class: "note", id: "train-stopped" },
        t("train_stopped_reached", { step: d.steps.toLocaleString(this.locale), total: total.toLocaleString(this.locale) })) : null,
      el("div", { class: "train-losses", id: "train-losses" }, losses),
      el("p", { class: "muted train-timing" }, t("train_timing", {
        steps: d.steps.toLocaleString(this.locale), s: d.seconds.toFixed(1), rate: Math.round(d.steps_per_s).toLocaleString(this.locale) })),
      el("h3", { class: "subhead" }, t("train_samples")),
      el("ol", { class: "samples", id: "train-samples" }, d.samples.map((name) => el("li", {}, el("code", {}, name)))),
      rc && rc.train_steps > 0 ? el("div", { class: "train-open" },
        el("button", { type: "button", class: "btn btn-primary", id: "open-trained" }, t("train_open")),
        el("p", { class: "muted" }, t("train_open_hint", { steps: rc.train_steps.toLocaleString(this.locale) }))) : null);
  }
}
