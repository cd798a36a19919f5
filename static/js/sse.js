// Server-Sent Events read with fetch() rather than EventSource, for two reasons: EventSource cannot
// read a 4xx body (the server's 422 message for a bad parameter, its 429 "busy" with Retry-After), and
// it reconnects on its own, which would start a second training. Aborting the fetch closes the
// connection, which ends the training on the server at once; stopStream() ends it gracefully.

const v = new URL(import.meta.url).search;
const { ApiError, errorFrom } = await import(`./api.js${v}`);

// Feeds text to `onEvent(name, data)` one complete event at a time (the format of the HTML standard:
// "event:" and "data:" lines, a blank line ends an event, ":" starts a comment such as a keep-alive).
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.name = "";
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();  // an incomplete last line waits for the next chunk
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent(this.name || "message", this.data.join("\n"));
      this.name = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.name = value;
    else if (field === "data") this.data.push(value);
  }
}

// Streams `url` and calls onEvent(name, parsedJson) per event. Resolves when the server ends the
// stream; rejects with an ApiError for an HTTP error (the server's message) or a lost connection,
// and with the AbortError when `signal` aborts it.
export async function streamEvents(url, { signal, onEvent }) {
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "text/event-stream" }, cache: "no-store" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { error: "network", message: "" });
  }
  if (!response.ok) throw await errorFrom(response);
  const parser = new SseParser((name, text) => {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return;  // every event of ours is JSON; anything else is not for us
    }
    onEvent(name, data);
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (err.name === "AbortError" || signal?.aborted) throw signal?.reason ?? err;
        throw new ApiError(0, { error: "network", message: "" });
      }
      if (chunk.done) break;
      parser.push(chunk.value);
    }
    parser.push("\n\n");  // a last event without its blank line still counts
  } finally {
    reader.releaseLock();
  }
}

// Asks the server to stop the stream named `streamId` gracefully: the run finishes its step, evaluates
// and sends "done" (stopped: true) on the open stream. Rejects with an ApiError when the server cannot
// (no such stream there: 404), so the caller can close the stream instead.
export async function stopStream(streamId) {
  let response;
  try {
    response = await fetch(`/api/train/stop?${new URLSearchParams({ stream_id: streamId })}`,
      { method: "POST", headers: { Accept: "application/json" }, cache: "no-store" });
  } catch {
    throw new ApiError(0, { error: "network", message: "" });
  }
  if (!response.ok) throw await errorFrom(response);
}
