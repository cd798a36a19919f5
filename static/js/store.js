// The learner's work kept in this browser (localStorage): drafts and which nodes are solved. Nothing
// of it goes to the server. Storage can be missing or full (private windows, quotas): reads then fall
// back and writes report failure, so the page can say that work will not survive a reload.

const PREFIX = "backprop-ninja/v2/";

// v1 (before the page knew more than one network) kept drafts, cells and progress per variant only:
// all of it was the MLP's. Copied once under the MLP's v2 keys, so no learner loses work; then removed.
const V1 = "backprop-ninja/v1/";
const V1_NET = "mlp";

function migrateV1() {
  try {
    const old = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key?.startsWith(V1)) old.push(key);
    }
    for (const key of old) {
      const [kind, ...rest] = key.slice(V1.length).split("/");
      const target = `${PREFIX}${kind}/${V1_NET}/${rest.join("/")}`;
      if (localStorage.getItem(target) === null) localStorage.setItem(target, localStorage.getItem(key));
      localStorage.removeItem(key);
    }
  } catch {
    // no storage (a private window): nothing to move
  }
}
migrateV1();

export function read(key, fallback) {
  try {
    const raw = localStorage.getItem(PREFIX + key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function write(key, value) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

export function remove(key) {
  try {
    localStorage.removeItem(PREFIX + key);
  } catch {
    // nothing to keep, nothing lost
  }
}

// Drafts are kept per network, backward variant and node, not per seed or batch: the code a learner
// writes does not depend on them, and "New batch" (to try the same formula on other numbers) must not
// hide it. Progress is per network too: the MLP's solved nodes do not count for the WaveNet.
export const draftKey = (net, variant, node) => `draft/${net}/${variant}/${node}`;
export const cellKey = (net, variant) => `cell/${net}/${variant}`;
export const solvedKey = (net, variant) => `solved/${net}/${variant}`;
