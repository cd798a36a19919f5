// The learner's work kept in this browser (localStorage): drafts and which nodes are solved. Nothing
// of it goes to the server. Storage can be missing or full (private windows, quotas): reads then fall
// back and writes report failure, so the page can say that work will not survive a reload.

const PREFIX = "backprop-ninja/v1/";

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

// Drafts are kept per backward variant and node, not per seed or batch: the code a learner writes does
// not depend on them, and "New batch" (to try the same formula on other numbers) must not hide it.
export const draftKey = (variant, node) => `draft/${variant}/${node}`;
export const cellKey = (variant) => `cell/${variant}`;
export const solvedKey = (variant) => `solved/${variant}`;
