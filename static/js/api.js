// The JSON API client: it fetches and nothing else (no gradient is ever computed in the page).
// Every failure becomes an ApiError carrying the server's {error, message, field, allowed} body.

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;       // 0 for a network failure
    this.code = body.error || "error";
    this.field = body.field || null;
    this.allowed = body.allowed || null;
  }
}

async function request(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: { Accept: "application/json", ...(init && init.headers) } });
  } catch (err) {
    throw new ApiError(0, { error: "network", message: "" });
  }
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;  // a proxy's HTML error page, say: reported by status below
  }
  if (!response.ok) {
    throw new ApiError(response.status, body && typeof body.message === "string" ? body : { error: "http", message: `HTTP ${response.status}` });
  }
  if (body === null) throw new ApiError(response.status, { error: "bad_json", message: "the server's answer is not JSON" });
  return body;
}

const INTEGER = /^-?\d+$/;

// The body is written by hand because JSON.stringify would turn seed 9223372036854775807 into
// 9223372036854776000. An integer-looking string goes in as a JSON number, digit for digit; anything
// else goes in as a JSON string, and the server's validation message tells the user what is wrong.
export function runBody(config, intFields) {
  const parts = Object.entries(config).map(([name, value]) => {
    const text = String(value).trim();
    const literal = intFields.includes(name) && INTEGER.test(text) ? text : JSON.stringify(text);
    return `${JSON.stringify(name)}:${literal}`;
  });
  return `{${parts.join(",")}}`;
}

export function createRun(config, intFields) {
  return request("/api/runs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: runBody(config, intFields),
  });
}

// A node without its display arrays: the figure alone carries them (as base64 typed arrays).
export function fetchNode(runId, name, diffScale) {
  const query = new URLSearchParams({ arrays: "false", figure: "true", diff_scale: diffScale });
  return request(`/api/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(name)}?${query}`);
}

// Node documents by (run, node, scale), as promises so a prefetch and a click share one request.
// Bounded: a node is ~50 KB, and a class may walk many runs.
export class NodeCache {
  constructor(limit = 64) {
    this.limit = limit;
    this.entries = new Map();
  }

  get(runId, name, diffScale) {
    const key = `${runId}\u0000${name}\u0000${diffScale}`;
    let promise = this.entries.get(key);
    if (promise) {
      this.entries.delete(key);  // re-insert: Map order is the LRU order
    } else {
      promise = fetchNode(runId, name, diffScale);
      // never cache a failure (but do not evict a newer entry under the same key)
      promise.catch(() => { if (this.entries.get(key) === promise) this.entries.delete(key); });
    }
    this.entries.set(key, promise);
    while (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value);
    return promise;
  }
}
