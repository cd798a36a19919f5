// The page's one state object and its URL form. Everything a viewer sees is a function of it, so
// `?seed=…&batch_size=…&node=…` reproduces a teacher's exact view and a reload restores it.
// To add a field, add one line to FIELDS.

// kind "int" and "text" fields are sent to the server as typed; the server validates them and its
// message is shown. "enum" fields that only the page uses fall back to their default when invalid.
export const FIELDS = [
  // the network (GET /api/nets lists them); its sizes follow it
  { name: "net", kind: "text", config: true, default: "mlp" },
  // Seeds go up to 2^63 − 1, beyond what a JS number holds exactly, so every config value stays the
  // string the user typed; api.js writes integer-looking strings into the JSON body verbatim.
  { name: "seed", kind: "int", config: true, default: "2147483647" },
  // The sizes a network may have. "" = the network's own default (the server resolves it, and the
  // run's config then fills the field in); a size the network does not have stays "" and is neither
  // sent nor written into the URL.
  { name: "batch_size", kind: "int", config: true, size: true, default: "" },
  { name: "n_embd", kind: "int", config: true, size: true, default: "" },
  { name: "n_hidden", kind: "int", config: true, size: true, default: "" },
  { name: "block_size", kind: "int", config: true, size: true, default: "" },
  { name: "n_head", kind: "int", config: true, size: true, default: "" },
  { name: "n_layer", kind: "int", config: true, size: true, default: "" },
  { name: "dtype", kind: "text", config: true, default: "float32" },
  { name: "variant", kind: "text", config: true, default: "chain" },
  // 0: the gradients at initialisation; N: of the network after N SGD steps (the Train view's result)
  { name: "train_steps", kind: "int", config: true, default: "0" },
  // 0: that training ran its whole schedule; M: it was stopped after train_steps of M steps (Train view's Stop)
  { name: "train_schedule_steps", kind: "int", config: true, default: "0" },
  { name: "node", kind: "text", config: false, default: "" },  // "" = the first row of the table
  { name: "diff_scale", kind: "enum", config: false, default: "linear", allowed: ["linear", "log"] },
  // the sample shown of a (batch, head, ·, ·) node such as attention (sample.js); the server checks it
  { name: "sample", kind: "int", config: false, default: "0" },
  { name: "lang", kind: "enum", config: false, default: "en", allowed: ["en", "de"] },
  { name: "view", kind: "enum", config: false, default: "grad", allowed: ["grad", "train"] },
  { name: "dojo", kind: "enum", config: false, default: "0", allowed: ["0", "1"] },  // the node's side panel: detail or dojo
  // The Train view's form. `param` is the query parameter of /api/train/stream (whose 422 names it in
  // `field`); `view` keeps these out of the URL while another view is on screen. The network is the
  // header's (`net`); "" = the stream's default for it (its recipe's steps and sizes, GET /api/nets),
  // neither sent nor written into the URL. A size the network does not have stays "".
  { name: "t_steps", kind: "int", config: false, view: "train", param: "steps", default: "" },
  { name: "t_batch_size", kind: "int", config: false, view: "train", param: "batch_size", trainSize: true, default: "" },
  { name: "t_n_embd", kind: "int", config: false, view: "train", param: "n_embd", trainSize: true, default: "" },
  { name: "t_n_hidden", kind: "int", config: false, view: "train", param: "n_hidden", trainSize: true, default: "" },
  { name: "t_block_size", kind: "int", config: false, view: "train", param: "block_size", trainSize: true, default: "" },
  { name: "t_n_head", kind: "int", config: false, view: "train", param: "n_head", trainSize: true, default: "" },
  { name: "t_n_layer", kind: "int", config: false, view: "train", param: "n_layer", trainSize: true, default: "" },
  { name: "t_seed", kind: "int", config: false, view: "train", param: "seed", default: "2147483647" },
  { name: "t_audit_every", kind: "int", config: false, view: "train", param: "audit_every", default: "1000" },
];

export const CONFIG_FIELDS = FIELDS.filter((f) => f.config).map((f) => f.name);
export const SIZE_FIELDS = FIELDS.filter((f) => f.size).map((f) => f.name);
export const TRAIN_FIELDS = FIELDS.filter((f) => f.view === "train");
export const TRAIN_SIZE_FIELDS = TRAIN_FIELDS.filter((f) => f.trainSize).map((f) => f.name);

export function defaults() {
  return Object.fromEntries(FIELDS.map((f) => [f.name, f.default]));
}

export function fromQuery(search) {
  const params = new URLSearchParams(search);
  const state = defaults();
  for (const f of FIELDS) {
    const raw = params.get(f.name);
    if (raw === null) continue;
    const value = raw.trim();
    if (f.kind === "enum" && !f.allowed.includes(value)) continue;
    state[f.name] = value;
  }
  return state;
}

// Every field is written, defaults included: a permalink must not change meaning if a default does.
// (A view's own fields only while that view is shown: they mean nothing to the others; a size only
// when the network has it.)
export function toQuery(state) {
  const params = new URLSearchParams();
  for (const f of FIELDS) {
    if ((f.name === "node" || f.size || f.view === "train") && !state[f.name]) continue;
    if (f.view && f.view !== state.view) continue;
    params.set(f.name, state[f.name]);
  }
  return params.toString();
}

// `how`: "push" for a deliberate step (another node, view, config), so Back returns to where the user
// was; "replace" for what only refines the current view (typing, language, scale, an alias resolved).
export function writeUrl(state, how = "replace") {
  const query = toQuery(state);
  if (location.search.slice(1) === query) return;
  if (how === "push") history.pushState(null, "", `${location.pathname}?${query}`);
  else history.replaceState(null, "", `${location.pathname}?${query}`);
}

// The fields that differ between two states (to apply a history step: only what changed is redone).
export function changed(a, b) {
  return new Set(FIELDS.map((f) => f.name).filter((name) => a[name] !== b[name]));
}

export function runConfig(state) {
  return Object.fromEntries(CONFIG_FIELDS.map((name) => [name, state[name]]));
}

// The state's config fields as a run document's config says them (its sizes resolved by the server):
// every size the network has, and "" for the others.
export function configOf(runConfig) {
  return Object.fromEntries(CONFIG_FIELDS.map((name) => [name, runConfig[name] === undefined ? "" : String(runConfig[name])]));
}

// The sizes of a run's config as state fields: the network's as strings, "" for the sizes it lacks.
export function sizesOf(runConfig) {
  return Object.fromEntries(SIZE_FIELDS.map((name) => [name, runConfig[name] === undefined || runConfig[name] === null ? "" : String(runConfig[name])]));
}

// Another network: its own sizes (the server's defaults), the gradients at initialisation (a trained
// network's weights belong to the network they were trained for); seed, dtype and variant stay.
export function withNet(state, net) {
  return { ...state, net, ...Object.fromEntries(SIZE_FIELDS.map((name) => [name, ""])), train_steps: "0" };
}

// The Train view's fields of another network: its own sizes and steps (the stream's defaults for it).
export function clearTrainSizes(state) {
  for (const name of [...TRAIN_SIZE_FIELDS, "t_steps"]) state[name] = "";
}

export function sameConfig(a, b) {
  return CONFIG_FIELDS.every((name) => a[name] === b[name]);
}

// The query of /api/train/stream: the header's network and the Train view's fields as typed (the
// server validates them); an empty field is the stream's default for the network.
export function trainParams(state, net = state.net) {
  return { net, ...Object.fromEntries(TRAIN_FIELDS.filter((f) => state[f.name] !== "").map((f) => [f.param, state[f.name]])),
    lang: state.lang };  // the language of the server's messages (a 422 names the rule in it)
}
