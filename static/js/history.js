// Back and Forward step through the user's own steps: each entry's URL is the page state it showed,
// and applying an entry redoes only what differs from the page on screen. An arrow-key walk through
// the nodes is one step, however many nodes it passes.

const v = new URL(import.meta.url).search;
const S = await import(`./state.js${v}`);
const i18n = await import(`./i18n.js${v}`);

// A walk with the arrow keys is one step of history: a key pressed within this long of the previous
// one replaces the entry the walk began with, so Back returns to where the walk started.
const WALK_MS = 1200;
let lastArrowAt = -Infinity;

export function arrowHistory() {
  const now = performance.now();
  const how = now - lastArrowAt < WALK_MS ? "replace" : "push";
  lastArrowAt = now;
  return how;
}

// Back/Forward: the page becomes what the entry's URL says. `page`: the controllers and redraws of
// main.js ({grad, redrawAll, showView, showTrainForm}).
export function installHistory(app, page) {
  const { grad } = page;
  window.addEventListener("popstate", () => {
    const state = app.state;
    const next = S.fromQuery(location.search);
    const diff = S.changed(state, next);
    const shown = S.runConfig(state);
    for (const f of S.FIELDS) if (!f.config) state[f.name] = next[f.name];
    if (diff.has("lang")) {
      app.t = i18n.translator(state.lang);
      page.redrawAll();
    }
    if (diff.has("dojo")) grad.showSide();
    if (diff.has("view")) page.showView();
    page.showTrainForm();
    if (!grad.run) return;  // the first run is still on its way: it will show the entry's node
    // the config fields of `state` are the run's on screen (they change when a run arrives)
    if (!S.sameConfig(grad.pendingRun ?? shown, next)) grad.loadRun({ ...state, ...S.runConfig(next) });
    else if (diff.has("lang")) grad.relang();  // the run's notes and the node's figure, in the entry's language
    else if (diff.has("node") || diff.has("diff_scale") || diff.has("sample")) grad.selectNode(state.node || grad.order[0]);
  });
}
