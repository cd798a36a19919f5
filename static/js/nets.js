// The header's network choice and the chosen network's own size fields. What each network has comes
// from GET /api/nets (its sizes with defaults and ranges); until that list is here, the run's config
// says which sizes there are. A size the architecture fixes (min = max, like the WaveNet's block_size
// of 8) is shown read-only. The values in the fields are the state's (gradients.js fills them in):
// this module only builds the fields, so a value the server rejected stays in its field.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);
const { hasLabel } = await import(`./i18n.js${v}`);
const S = await import(`./state.js${v}`);
const api = await import(`./api.js${v}`);
const { retrying } = await import(`./retry.js${v}`);

// The sizes of a network as the header draws them: from /api/nets, or (without it) the sizes a run's
// config carries, with no range.
function sizesFrom(net, config, sizeNames) {
  if (net) return net.sizes;
  return sizeNames.filter((name) => config?.[name] !== undefined && config[name] !== "")
    .map((name) => ({ name, default: null, min: null, max: null, help: "" }));
}

// `prefix`: of the input's name and id ("t_" in the Train view's form, whose fields are the stream's)
function sizeField(size, t, prefix = "") {
  const fixed = size.min !== null && size.min === size.max;
  const id = `ctl-${prefix}${size.name}`;
  // the page's own words where it has them (both languages), else the server's
  const help = hasLabel(`size_help_${size.name}`) ? t(`size_help_${size.name}`) : size.help;
  const title = fixed ? t("size_fixed_title", { name: size.name, value: size.min })
    : size.min !== null ? t("size_title", { help, min: size.min, max: size.max }) : help || null;
  const named = size.name === "batch_size";  // the one size with a word of its own ("batch"); the others are code names
  return el("div", { class: `field field-size${fixed ? " field-fixed" : ""}`, dataset: { size: size.name } },
    el("label", { for: id, class: named ? null : "code-label", title }, named ? t("batch_size") : size.name),
    el("input", {
      id, name: `${prefix}${size.name}`, type: "number", step: 1, inputmode: "numeric", title,
      min: size.min, max: size.max, placeholder: size.default, readonly: fixed, tabindex: fixed ? -1 : null,
      "aria-readonly": fixed ? "true" : null, dataset: { field: size.name },
    }));
}

export class NetControls {
  // select: the <select> of networks; box: where the size fields go; sizeNames: every size the state knows;
  // prefix: of the fields' names and ids; defaults(net) → {size: value}: the placeholders, when they are
  // not the sizes' own defaults (the Train view shows what the stream trains: the MLP's n_hidden 200)
  constructor(select, box, sizeNames, { prefix = "", defaults = null } = {}) {
    this.select = select;
    this.box = box;
    this.sizeNames = sizeNames;
    this.prefix = prefix;
    this.defaults = defaults;
    this.nets = null;     // [{name, title, sizes}] from /api/nets, once it has come
    this.drawn = null;    // what the fields were drawn for: "<net>|<sizes>|<lang>|<networks known>"
    this.drawnNet = null;
  }

  get loaded() {
    return this.nets !== null;
  }

  setNets(list) {
    this.nets = list;
    this.drawn = null;
  }

  net(name) {
    return this.nets?.find((n) => n.name === name) ?? null;
  }

  // The choice (every network, and the one on screen even if the server does not know it: a link's
  // typo stays visible beside the server's message) and the sizes of `name`. `config`: the run's
  // config, for the sizes to show before /api/nets has answered. Redraws only what changed, so a
  // field keeps its focus and what the user typed.
  draw(name, t, lang, config = null) {
    const net = this.net(name);
    const own = net && this.defaults ? this.defaults(net) : null;
    const sizes = sizesFrom(net, config, this.sizeNames).map((s) => (own?.[s.name] === undefined ? s : { ...s, default: own[s.name] }));
    const key = `${name}|${sizes.map((s) => `${s.name}:${s.min}:${s.max}`).join(",")}|${lang}|${this.nets?.length ?? 0}`;
    if (key === this.drawn) return false;
    // the same network in another language (or with its ranges now known): what the fields hold stays
    const kept = this.drawnNet === name
      ? new Map([...this.box.querySelectorAll("input")].map((input) => [input.name, input.value])) : new Map();
    this.drawn = key;
    this.drawnNet = name;
    const names = this.nets ? this.nets.map((n) => n.name) : [];
    if (!names.includes(name)) names.push(name);
    fill(this.select, names.map((n) => el("option", { value: n, title: this.net(n)?.title ?? null }, n)));
    this.select.value = name;
    this.select.title = net ? t("net_title", { title: net.title }) : t("net_choice_title");
    fill(this.box, sizes.map((size) => sizeField(size, t, this.prefix)));
    for (const input of this.box.querySelectorAll("input")) if (kept.has(input.name)) input.value = kept.get(input.name);
    return true;
  }
}

// The header's config form: the network choice, its size fields and the other config fields.
// `shown()` says what the header is to show: {values} (the config on its way, else the state) and
// {run} (the run document on screen, or null).
export class ConfigForm {
  constructor(app, shown) {
    this.app = app;
    this.shown = shown;
    this.controls = new NetControls(app.dom.netSelect, app.dom.sizeFields, S.SIZE_FIELDS);
    this.request = null;  // GET /api/nets in flight
    this.onNets = null;   // (list) => …: another form that offers the networks (the Train view's)
  }

  // The fields of `net` (before /api/nets has answered: the sizes the run on screen has). True if
  // they were drawn anew (empty: the caller fills them).
  draw(net) {
    const { run } = this.shown();
    const config = run?.config.net === net ? run.config : null;
    return this.controls.draw(net, this.app.t, this.app.state.lang, config);
  }

  // Every config field as `values` says (a successful run's config, or the state at the start).
  show(values) {
    this.draw(values.net);
    const form = this.app.dom.form;
    for (const name of S.CONFIG_FIELDS) if (form.elements[name]) form.elements[name].value = values[name];
  }

  // A size the network does not have is not in the form: it is "" (not sent).
  read() {
    const form = this.app.dom.form;
    return Object.fromEntries(S.CONFIG_FIELDS.map((name) => [name, form.elements[name]?.value.trim() ?? ""]));
  }

  // GET /api/nets, once: the choice and each network's sizes and ranges. A failure leaves the header
  // as the run's config draws it; the next run asks again.
  load() {
    if (this.controls.loaded || this.request) return;
    this.request = retrying(() => api.fetchNets(this.app.state.lang), this.app.busy, "nets")
      .then((list) => {
        this.controls.setNets(list);
        // the fields of the network on screen, or of the one on its way (with the values it asked for)
        const { values } = this.shown();
        const form = this.app.dom.form;
        if (this.draw(values.net)) for (const name of S.SIZE_FIELDS) if (form.elements[name]) form.elements[name].value = values[name];
        this.onNets?.(list);
      })
      .catch(() => {})
      .finally(() => { this.request = null; });
  }
}
