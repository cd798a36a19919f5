// The JSON API client: it fetches and nothing else (no gradient is ever computed in the page).
// Every failure becomes an ApiError carrying the server's {error, message, field, allowed} body (and,
// for a learner's code, {kind, line, col}).

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body.message || `HTTP ${status}`);
    this.status = status;       // 0 for a network failure
    this.code = body.error || "error";
    this.field = body.field || null;
    this.allowed = body.allowed || null;
    this.kind = body.kind || null;  // code_error: forbidden, limit, timeout, runtime, syntax, no_answer
    this.line = body.line ?? null;
    this.col = body.col ?? null;
    this.retryAfter = retryAfter;   // seconds, from a 429's Retry-After
  }
}

// A non-2xx response as an ApiError, with the server's JSON message when there is one.
export async function errorFrom(response) {
  let body = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = null;
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError(response.status, body && typeof body.message === "string" ? body : { error: "http", message: `HTTP ${response.status}` },
    Number.isFinite(retry) ? retry : null);
}

async function request(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: { Accept: "application/json", ...(init && init.headers) } });
  } catch (err) {
    throw new ApiError(0, { error: "network", message: "" });
  }
  if (!response.ok) throw await errorFrom(response);  // a proxy's HTML error page still gets its status
  let body = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = null;
  }
  if (body === null) throw new ApiError(response.status, { error: "bad_json", message: "the server's answer is not JSON" });
  return body;
}

const INTEGER = /^-?\d+$/;

// The body is written by hand because JSON.stringify would turn seed 9223372036854775807 into
// 9223372036854776000. An integer-looking string goes in as a JSON number, digit for digit; anything
// else goes in as a JSON string, and the server's validation message tells the user what is wrong.
// An empty field among `optional` (a network's sizes) is left out: the server takes the network's
// default for it.
export function runBody(config, intFields, optional = []) {
  const given = Object.entries(config).filter(([name, value]) => !(optional.includes(name) && String(value).trim() === ""));
  const parts = given.map(([name, value]) => {
    const text = String(value).trim();
    const literal = intFields.includes(name) && INTEGER.test(text) ? text : JSON.stringify(text);
    return `${JSON.stringify(name)}:${literal}`;
  });
  return `{${parts.join(",")}}`;
}

// The page's language goes with every request (`?lang=de`), so whatever prose the server writes
// (figure labels, notes, diagnoses, error messages) can come in the language on screen. A query
// parameter, not a body field: the run and grade bodies are strict (an unknown field is a 422), and
// a query parameter the server does not read yet is simply ignored.
function withLang(path, lang, params = {}) {
  return `${path}?${new URLSearchParams({ ...params, lang })}`;
}

export function createRun(config, intFields, optional, lang) {
  return request(withLang("/api/runs", lang), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: runBody(config, intFields, optional),
  });
}

// The networks a run can use, each with its sizes ({name, default, min, max, help}).
export function fetchNets(lang) {
  return request(withLang("/api/nets", lang));
}

// A node without its display arrays: the figure alone carries them (as base64 typed arrays).
export function fetchNode(runId, name, diffScale, lang, sample = "0") {
  return request(withLang(`/api/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(name)}`, lang,
    { arrays: "false", figure: "true", diff_scale: diffScale, sample }));
}

// The dojo: the learner's code for one node, judged on the server against autograd (the page runs no
// code and computes no gradient). A refused or failing program is a 400 ApiError with kind/line/col.
export function checkCode(runId, node, code, lang) {
  return request(withLang(`/api/runs/${encodeURIComponent(runId)}/check`, lang), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ node, code, lang }),
  });
}

// A whole exercise cell: every d<name> it defines, judged end to end and step by step.
export function gradeCell(runId, code, lang) {
  return request(withLang(`/api/runs/${encodeURIComponent(runId)}/grade`, lang), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code, lang }),
  });
}

export function trainStreamUrl(params) {
  return `/api/train/stream?${new URLSearchParams(params)}`;
}

// Node documents by (run, node, scale, language, sample), as promises so a prefetch and a click share one request.
// Bounded: a node is ~50 KB, and a class may walk many runs.
export class NodeCache {
  constructor(limit = 64) {
    this.limit = limit;
    this.entries = new Map();
  }

  get(runId, name, diffScale, lang, sample = "0") {
    const key = [runId, name, diffScale, lang, sample].join("\u0000");
    let promise = this.entries.get(key);
    if (promise) {
      this.entries.delete(key);  // re-insert: Map order is the LRU order
    } else {
      promise = fetchNode(runId, name, diffScale, lang, sample);
      // never cache a failure (but do not evict a newer entry under the same key)
      promise.catch(() => { if (this.entries.get(key) === promise) this.entries.delete(key); });
    }
    this.entries.set(key, promise);
    while (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value);
    return promise;
  }
}
