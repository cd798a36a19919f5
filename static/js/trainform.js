// The Train view's form: the header's network (its choice, shown in this view too), the sizes the
// training stream trains it with, the run's length, seed and audit, and one line naming the network's
// recipe. What each network has comes from GET /api/nets (the header's list, nets.js): its sizes with
// their ranges, and under `train` the stream's defaults (the recipe's sizes, steps and optimizer),
// which are the fields' placeholders. An empty field is the stream's default; a size the network does
// not have is not in the form.

const v = new URL(import.meta.url).search;
const S = await import(`./state.js${v}`);
const { NetControls } = await import(`./nets.js${v}`);

// The recipe in words: "SGD, lr 0.1, then 0.01 from 75 % of the steps" / "AdamW, lr 0.0005, weight decay 0.1".
export function recipeText(train, t) {
  if (!train) return "";
  const percent = Math.round(100 * train.lr_decay_at);
  const decays = train.lr_decayed !== train.lr && train.lr_decay_at < 1;
  if (train.optimizer === "adamw") {
    return t(decays ? "train_recipe_adamw_decay" : "train_recipe_adamw",
      { lr: train.lr, lr2: train.lr_decayed, at: percent, wd: train.weight_decay });
  }
  return t(decays ? "train_recipe_sgd_decay" : "train_recipe_sgd", { lr: train.lr, lr2: train.lr_decayed, at: percent });
}

export class TrainForm {
  // parts: {form, select, sizes, recipe}; app: the page's context (state, t)
  constructor(app, parts) {
    this.app = app;
    this.parts = parts;
    this.controls = new NetControls(parts.select, parts.sizes, S.TRAIN_SIZE_FIELDS.map((name) => name.slice(2)),
      { prefix: "t_", defaults: (net) => net.train?.sizes ?? null });
    this.net = null;  // the network the fields were drawn for
    // the state follows what is typed, so a redraw (the language, the ranges arriving) keeps it, and
    // so does the URL (replaced, not pushed: typing refines the view), so a reload keeps it too
    parts.form.addEventListener("input", (event) => {
      const name = event.target.name;
      if (!S.TRAIN_FIELDS.some((f) => f.name === name)) return;
      app.state[name] = event.target.value.trim();
      S.writeUrl(app.state);
    });
  }

  setNets(list) {
    this.controls.setNets(list);
  }

  // The fields of `net`; another network than the one drawn clears the sizes and steps typed for it.
  // Once /api/nets has said which sizes `net` has, a size it lacks (a link's t_n_hidden for the GPT)
  // is dropped; until then every size of the state is kept (a link's sizes wait for their fields).
  draw(net) {
    const { state, t } = this.app;
    if (this.net !== null && this.net !== net) S.clearTrainSizes(state);
    const known = this.controls.net(net);
    if (known) {
      const own = new Set(known.sizes.map((s) => `t_${s.name}`));
      for (const name of S.TRAIN_SIZE_FIELDS) if (!own.has(name)) state[name] = "";
    }
    const drawn = this.controls.draw(net, t, state.lang);
    this.net = net;
    const train = this.controls.net(net)?.train ?? null;
    const steps = this.parts.form.elements.t_steps;
    steps.placeholder = train ? String(train.steps) : "";
    this.parts.recipe.textContent = recipeText(train, t);
    this.parts.recipe.hidden = !train;
    if (drawn) this.show();
  }

  show() {
    const { form } = this.parts;
    for (const f of S.TRAIN_FIELDS) if (form.elements[f.name]) form.elements[f.name].value = this.app.state[f.name];
  }

  // The fields into the state, and the stream's query. A field not in the form keeps the state's
  // value: before /api/nets has answered there are no size fields yet, and a link's sizes must not
  // be wiped by the first read (draw() drops the sizes the network does not have).
  read() {
    const { form } = this.parts;
    const state = this.app.state;
    for (const f of S.TRAIN_FIELDS) if (form.elements[f.name]) state[f.name] = form.elements[f.name].value.trim();
    return S.trainParams(state, this.net ?? state.net);
  }
}
