// A websocket that reconnects with exponential backoff and jitter, and reports its state.

// Close codes after which reconnecting cannot help (README "Websocket protocol"), and why.
const REFUSALS = {
  4401: "Signed out — sign in again to continue.",
  4403: "This conversation is no longer shared with you.",
  4404: "This conversation was deleted or does not exist.",
};

// Close codes after which trying again later can help, and what the page says meanwhile: the
// server holds only so many sockets per account (or per address, for a link's anonymous
// viewers). The page retries at the slowest pace, and connects once another tab has closed.
const BUSY = {
  4429: "Too many conversations open at once: close some tabs. Trying again…",
};
const BUSY_ATTEMPT = 6; // the backoff's ceiling: a try every 5 to 10 s
// A 4429 after an `error` frame `rate_limited`: an anonymous viewer's address opened share links
// too often this minute. The page says so and tries again once the frame's `retry_after` has
// passed (sooner would only be refused again, and counted).
const RATE_LIMITED = "Too many requests from your address. Trying again soon…";

// A connection can die without closing (the network changed, the laptop slept) and the browser
// may go on writing into it for minutes. A frame with a client_id is always answered (its
// message.created, or an error): one left without any frame in return for this long means the
// connection is gone, and it is replaced (what was waiting is sent again; the server
// deduplicates by client_id).
const ANSWER_TIMEOUT_MS = 10_000;

// A page that only reads writes nothing, so the rule above would never catch its connection
// dying: after this long without a frame from the server it sends a ping, which is answered
// (pong) like a frame with a client_id, under the same timeout.
const PING_AFTER_MS = 25_000;

// How long a socket whose session ended waits before trying the browser's session again.
const SESSION_RETRY_MS = 1500;

export class ReconnectingSocket {
  /** `refusals`: the page's own words for some of the close codes (a share link's page, say). */
  constructor(url, { onFrame, onOpen, onStatus, refusals = {} }) {
    this.url = url;
    this.refusals = { ...REFUSALS, ...refusals };
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onStatus = onStatus;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.queue = [];
    this.closed = false;
    this.ready = false;
    this.refusal = ""; // set when the server refused the session for good (see REFUSALS)
    this.refusalCode = 0; // and its close code
    this.retryAfter = 0; // seconds, from a refusal of the handshake as rate_limited
    this.sessionRetried = false; // a 4401 on an open socket is tried once more
    this.answerTimer = null;
    this.lastHeard = 0;
    // Checked every few seconds rather than timed from the last frame: a streaming reply
    // brings dozens a second, and none of them need touch a timer.
    setInterval(() => this.pingIfQuiet(), PING_AFTER_MS / 5);
    window.addEventListener("online", () => this.backOnline());
    window.addEventListener("offline", () => {
      if (!this.refusal) this.setStatus("offline"); // a refusal's reason stays shown
    });
  }

  connect() {
    this.closed = false;
    clearTimeout(this.timer);
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      this.heard();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "pong") return; // its arrival was all it had to say
      if (frame.type === "error" && frame.code === "rate_limited" && !this.ready) {
        this.retryAfter = Number(frame.retry_after) || 60; // the close comes next
      }
      if (frame.type === "ready") {
        this.attempt = 0;
        this.ready = true;
        this.sessionRetried = false;
        this.setStatus("connected");
        this.onOpen(frame);
        const queued = this.queue.splice(0);
        for (const item of queued) this.send(item);
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.heard();
      const wasReady = this.ready;
      this.ready = false;
      this.socket = null;
      if (this.closed) return;
      const refusal = this.refusals[event.code];
      if (event.code === 4401 && wasReady && !this.sessionRetried) {
        // The session this socket opened with ended, but this browser may be signed in under
        // a new one (a password changed here renews it; the close can beat the new cookie to
        // the browser, hence the wait): one more try tells which.
        this.sessionRetried = true;
        this.setStatus("reconnecting");
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), SESSION_RETRY_MS);
        return;
      }
      if (event.code === 4429 && this.retryAfter) {
        const wait = this.retryAfter * 1000 + Math.random() * 5000;
        this.retryAfter = 0;
        this.setStatus("reconnecting", RATE_LIMITED);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), wait);
        return;
      }
      if (BUSY[event.code]) {
        this.attempt = Math.max(this.attempt, BUSY_ATTEMPT - 1);
        this.scheduleReconnect(BUSY[event.code]);
        return;
      }
      if (refusal) {
        // Final: trying again would be refused again. Nothing queued can be sent now.
        this.refusal = refusal;
        this.refusalCode = event.code;
        this.queue = [];
        this.setStatus("offline", refusal);
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect(detail = "") {
    this.attempt += 1;
    const base = Math.min(10_000, 500 * 2 ** (this.attempt - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this.setStatus(navigator.onLine === false ? "offline" : "reconnecting", detail);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  backOnline() {
    if (this.refusal) return; // refused for good: its reason stays shown
    // A short outage may leave the socket open: then only the "offline" status needs undoing.
    if (this.socket && this.ready) this.setStatus("connected");
    else this.reconnectNow();
  }

  reconnectNow() {
    if (this.socket || this.closed || this.refusal) return;
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  }

  /** Send now if connected, otherwise queue until the next `ready`. */
  send(frame) {
    if (this.refusal) return false;
    if (this.socket && this.ready && this.socket.readyState === WebSocket.OPEN) {
      this.write(frame);
      return true;
    }
    this.queue.push(frame);
    return false;
  }

  /** Send only if connected (for syncs, which are redone on every reconnect anyway). */
  sendIfOpen(frame) {
    if (this.socket && this.ready && this.socket.readyState === WebSocket.OPEN) {
      this.write(frame);
    }
  }

  write(frame) {
    this.socket.send(JSON.stringify(frame));
    if ((frame.client_id || frame.type === "ping") && !this.answerTimer) {
      this.answerTimer = setTimeout(() => this.replace(), ANSWER_TIMEOUT_MS);
    }
  }

  /** A frame came (or the socket closed): the connection was alive. */
  heard() {
    this.lastHeard = Date.now();
    clearTimeout(this.answerTimer);
    this.answerTimer = null;
  }

  /** Nothing heard for a while on a connection thought open: ask the server for a word. */
  pingIfQuiet() {
    if (this.answerTimer || Date.now() - this.lastHeard < PING_AFTER_MS) return;
    if (this.socket && this.ready && this.socket.readyState === WebSocket.OPEN) {
      this.write({ type: "ping" });
    }
  }

  /** The connection went silent with a frame unanswered: give it up and open another. */
  replace() {
    this.answerTimer = null;
    const socket = this.socket;
    if (!socket || this.closed) return;
    this.socket = null; // its close, whenever it comes, is ignored
    this.ready = false;
    socket.close();
    this.reconnectNow();
  }

  setStatus(status, detail = "") {
    this.status = status;
    this.onStatus(status, detail);
  }

  /** For tests and debugging: drop the connection as a network failure would. */
  drop() {
    if (this.socket) this.socket.close();
  }
}
