// A busy server answers 429 with Retry-After (too many runs, checks or grades at once: a class
// submitting together). The page then waits and asks again, showing "busy — retrying in 3 s" with a
// Cancel button, instead of showing a failure. A BusyNotice is that line of text in one place of the
// page (the header strip for runs and nodes, the dojo panel, the whole-cell dialog); `retrying` is the
// loop around any request.

const v = new URL(import.meta.url).search;
const { el, fill } = await import(`./dom.js${v}`);

export const MAX_RETRIES = 5;      // then the 429 is shown as the failure it is
export const LONGEST_WAIT_S = 60;  // a server asking for longer than this is not "busy for a moment"
const DEFAULT_WAIT_S = 2;          // a 429 without Retry-After (a proxy's): still worth one short wait

// The error of a request the user cancelled while it waited: callers show the 429's own message.
export class Cancelled extends Error {
  constructor(cause) {
    super(cause?.message ?? "cancelled");
    this.name = "Cancelled";
    this.cause = cause;
  }
}

function waitFor(err) {
  if (err?.status !== 429) return null;
  const seconds = err.retryAfter ?? DEFAULT_WAIT_S;
  return seconds <= LONGEST_WAIT_S ? Math.max(1, Math.ceil(seconds)) : null;
}

// Calls send() until it answers or fails with something other than a 429, waiting out each 429's
// Retry-After on `notice` (at most MAX_RETRIES times). Without a notice nothing waits: a prefetch that
// meets a busy server simply fails, and the request the user is waiting for retries. Throws Cancelled
// if the user cancels, or the wait is superseded by a newer request on the same notice. `tag` names
// the kind of request ("run", "node"), so a newer one can cancel the wait of an older one of its kind.
export async function retrying(send, notice, tag = "") {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const seconds = waitFor(err);
      if (!notice || seconds === null || attempt > MAX_RETRIES) throw err;
      if (!(await notice.countdown(seconds, attempt, tag))) throw new Cancelled(err);
    }
  }
}

export class BusyNotice {
  // root: an (empty) element the notice draws into; it is hidden while nothing waits.
  constructor(root) {
    this.root = root;
    this.t = (key) => key;
    this.timer = null;
    this.finish = null;  // resolves the countdown in progress: true = retry now, false = cancelled
    root.hidden = true;
    root.classList.add("busy");
    root.setAttribute("role", "status");
    // built once: the countdown only changes their text, so a focused Cancel button keeps its focus
    this.text = el("span", { class: "busy-text" });
    this.attemptText = el("span", { class: "muted busy-attempt" });
    this.cancelButton = el("button", { type: "button", class: "link busy-cancel" });
    this.cancelButton.addEventListener("click", () => this.cancel());
    fill(root, el("span", { class: "busy-spinner", "aria-hidden": "true" }), this.text, this.attemptText, this.cancelButton);
  }

  relabel(t) {
    this.t = t;
    if (this.finish) this.draw();
  }

  get waiting() {
    return this.finish !== null;
  }

  // Resolves true after `seconds` (counting down on screen), false if cancelled first.
  countdown(seconds, attempt, tag = "") {
    this.cancel();  // one wait per notice: a newer request supersedes the older one's
    this.left = seconds;
    this.attempt = attempt;
    this.tag = tag;
    return new Promise((resolve) => {
      this.finish = (retry) => {
        clearInterval(this.timer);
        this.timer = null;
        this.finish = null;
        this.root.hidden = true;
        delete this.root.dataset.left;
        resolve(retry);
      };
      this.draw();
      this.root.hidden = false;
      this.timer = setInterval(() => {
        this.left -= 1;
        if (this.left <= 0) this.finish(true);
        else this.draw();
      }, 1000);
    });
  }

  // Ends the wait in progress (only if it is of kind `tag`, when given): its request gives up.
  cancel(tag = null) {
    if (tag === null || tag === this.tag) this.finish?.(false);
  }

  draw() {
    const t = this.t;
    this.root.dataset.left = String(this.left);
    this.text.textContent = t("busy_retrying", { s: this.left });
    this.attemptText.textContent = t("busy_attempt", { n: this.attempt, max: MAX_RETRIES });
    this.cancelButton.textContent = t("busy_cancel");
  }
}
