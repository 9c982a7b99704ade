// How a reply's frames change what a page holds of it (README "Websocket protocol"): the one set
// of rules for the conversation page and a share link's page. Each function changes `node` and
// says whether it did; the page then redraws it (and does anything else of its own).
//
// A long transcript's markdown is drawn as it is read, on both pages (LazyDrawing, at the end).
// What a screen reader hears of a reply is said here too (replyAnnouncement): once when it
// starts and once when it ends, never each delta.
//
// `syncing`: reply id → true while a reply.snapshot is awaited (deltas and ends wait for it).
// `requestSync(replyId, afterSeq)`: asks for one (a gap in the sequence, a stale snapshot).

import { markdownText } from "./markdown.js";
import { announce, el } from "./util.js";

/** The statuses of a reply still being written. */
export const ACTIVE = new Set(["pending", "streaming"]);

/** What the page says under a reply that ended early of its own accord (by its finish_reason):
 * its text is not the whole answer. */
export const FINISH_NOTES = {
  length: "The reply was cut off at the token limit.",
  content_filter: "The provider's content filter withheld the rest of this reply.",
};
/** The same, said after "… replied" to a screen reader. */
const FINISH_ASIDES = { length: " (cut off at the token limit)", content_filter: " (cut short by the content filter)" };

/** How much of a finished reply is read out; the rest is in its article. */
const ANNOUNCED_CHARS = 400;

/** What to tell a screen reader about `node` after a frame changed it ("" for nothing):
 * `wasActive` says whether the page held it as being written before the frame. */
export function replyAnnouncement(node, wasActive) {
  if (node.role !== "assistant") return "";
  const active = ACTIVE.has(node.status);
  if (active) return wasActive ? "" : `${node.author} is replying…`;
  if (!wasActive) return "";
  if (node.status === "cancelled") return "Reply stopped.";
  if (node.status !== "complete") {
    return `${node.author} did not finish: ${node.error_message || "the reply failed."}`;
  }
  const cut = FINISH_ASIDES[node.finish_reason] || "";
  let text = markdownText(node.content);
  if (text.length > ANNOUNCED_CHARS) {
    const end = text.lastIndexOf(" ", ANNOUNCED_CHARS);
    text = `${text.slice(0, end > 0 ? end : ANNOUNCED_CHARS)}…`;
  }
  if (text) return `${node.author} replied${cut}: ${text}`;
  const tools = (node.tool_calls || []).map((call) => call.function?.name).filter(Boolean);
  if (tools.length) return `${node.author} asks for ${tools.join(", ")}.`;
  return `${node.author} replied with no text.`;
}

/** `handle(frame)`, telling a screen reader what the frame did to the reply it is about (a new
 * reply, or one started, finished, stopped or failed). */
export function announcingReplies(nodes, handle) {
  return (frame) => {
    const id = frame.reply_id || frame.message?.id;
    const before = id && nodes.get(id);
    const wasActive = Boolean(before) && ACTIVE.has(before.status);
    handle(frame);
    const after = id && nodes.get(id);
    if (after) announce(replyAnnouncement(after, wasActive));
  };
}

/** How long a reply shown being written may go without a frame before the page asks for it
 * again (a test sets `window.chatQuietReplyMs` before the page's scripts run, to wait less). */
const QUIET_REPLY_MS = Number(window.chatQuietReplyMs) || 15000;

/** `handle`, which also notes when each reply was last heard of; a reply shown being written
 * (pending or streaming) that goes unheard for QUIET_REPLY_MS is asked for again, from the
 * sequence number held. Its end may have been lost on the way to this page (Redis away as it
 * was published from another worker, or the process of a task the reaper had ended already
 * gone since): the server answers from the task if one still holds the reply (nothing new, it
 * goes on), else from its row. Asking again is nothing but a small frame. */
export function resyncingQuietReplies(nodes, syncing, requestSync, handle) {
  const heard = new Map();
  setInterval(() => {
    const now = performance.now();
    for (const node of nodes.values()) {
      if (node.role !== "assistant" || !ACTIVE.has(node.status) || syncing.get(node.id)) continue;
      const last = heard.get(node.id);
      if (last === undefined) heard.set(node.id, now);
      else if (now - last >= QUIET_REPLY_MS) {
        heard.set(node.id, now);
        requestSync(node.id, node.seq || 0);
      }
    }
  }, Math.min(QUIET_REPLY_MS / 3, 5000));
  return (frame) => {
    if (frame.reply_id) heard.set(frame.reply_id, performance.now());
    handle(frame);
  };
}

/** On `ready`: every reply in progress is synced from the sequence number held, and any the page
 * thought was running but the server no longer lists (it ended meanwhile) is asked about too.
 * Returns the listed ids (replies the page does not hold yet are synced once it has them). */
export function resumeReplies(nodes, activeReplies, requestSync) {
  const listed = new Set();
  for (const active of activeReplies) {
    listed.add(active.reply_id);
    const node = nodes.get(active.reply_id);
    if (node) requestSync(node.id, node.seq || 0);
  }
  for (const node of nodes.values()) {
    if (node.role === "assistant" && ACTIVE.has(node.status) && !listed.has(node.id)) {
      requestSync(node.id, node.seq || 0);
    }
  }
  return listed;
}

/** What the head of a reply being written says: that it waits for the model (in the provider's
 * queue, or before its first token) until its first delta comes, then that it is being written.
 * The server says nothing in between (reply.started comes before the upstream call is made; the
 * provider's keep-alives stay upstream), so the sign is no delta since it started: a sequence
 * number still where it started, or, for a reply this page did not see start, no text yet. */
export function replyState(node) {
  let waiting;
  if (node.status === "pending") waiting = true;
  else if (node.startedSeq !== undefined) waiting = (node.seq || 0) <= node.startedSeq;
  else waiting = !node.content && !node.reasoning && !(node.tool_calls || []).length;
  return waiting ? "Waiting for the model…" : "Writing…";
}

/** A call of the reply begins, from the sequence number its stored text has (a continuation's
 * is the text kept). A page holding another number reads the reply again: more, and its text
 * past that number is not the reply's (an older call's task, reaped while it lived, streamed on
 * past what was stored, and the page was shown it); less, and it misses some. */
export function applyStarted(node, frame, syncing, requestSync) {
  node.status = "streaming";
  node.startedSeq = frame.seq;
  if (syncing.get(node.id)) return true; // the snapshot awaited brings the reply as it is
  const held = node.seq || 0;
  if (held > frame.seq) {
    // What the page holds past the new call's start is not the reply's: the snapshot asked
    // for replaces it, though it is shorter (not an older copy: isOlderCopy).
    node.replaceNext = true;
    requestSync(node.id, 0);
  } else if (held < frame.seq) requestSync(node.id, held);
  return true;
}

/** A delta in sequence is added; one already held is dropped; a gap asks for a snapshot. */
export function applyDelta(node, frame, syncing, requestSync) {
  if (syncing.get(node.id)) return false;
  const held = node.seq || 0;
  if (frame.seq <= held) return false;
  if (frame.seq !== held + 1) {
    requestSync(node.id, held);
    return false;
  }
  node.seq = frame.seq;
  node.status = "streaming";
  if (frame.content) node.content += frame.content;
  if (frame.reasoning) node.reasoning = (node.reasoning || "") + frame.reasoning;
  if (frame.logprobs) node.logprobs = (node.logprobs || []).concat(frame.logprobs);
  return true;
}

/** The reply as the server holds it: appended after what the page has, or replacing it. */
export function applySnapshot(node, frame, syncing, requestSync) {
  syncing.delete(node.id);
  if (frame.mode !== "append" && !node.replaceNext && isOlderCopy(node, frame)) return false;
  node.replaceNext = false;
  if (frame.mode === "append") {
    if ((frame.after_seq ?? 0) !== (node.seq || 0)) {
      requestSync(node.id, 0);
      return false;
    }
    node.content += frame.content || "";
    node.reasoning = (node.reasoning || "") + (frame.reasoning || "");
    node.logprobs = (node.logprobs || []).concat(frame.logprobs || []);
  } else {
    node.content = frame.content || "";
    node.reasoning = frame.reasoning || "";
    node.logprobs = frame.logprobs || [];
  }
  if (frame.tool_calls) node.tool_calls = frame.tool_calls.length ? frame.tool_calls : node.tool_calls;
  node.seq = frame.seq;
  node.status = frame.status;
  if (frame.finish_reason !== undefined) node.finish_reason = frame.finish_reason;
  if (frame.usage !== undefined) node.usage = frame.usage;
  if (frame.charged !== undefined) node.charged = frame.charged;
  if (frame.code) node.error_code = frame.code;
  if (frame.message) node.error_message = frame.message;
  return true;
}

/** Whether a whole snapshot of a reply still being written is an older copy of what the page
 * shows: its row's last checkpoint, answered when the worker writing it went silent (killed,
 * cut off) and the reaper has not yet ended it. The page keeps the longer text it was shown,
 * rather than take back what was read under "Writing…"; the reply's end (the text kept, the
 * reason) replaces it when it comes. Not once a new call of it began behind what the page
 * holds (applyStarted: the text past its start is an older call's, to be replaced). */
function isOlderCopy(node, frame) {
  return (
    ACTIVE.has(frame.status) &&
    ACTIVE.has(node.status) &&
    (frame.seq || 0) < (node.seq || 0) &&
    (node.content || "").startsWith(frame.content || "") &&
    (node.reasoning || "").startsWith(frame.reasoning || "")
  );
}

export function applyCompleted(node, frame, syncing) {
  if (syncing.get(node.id)) return false; // the snapshot will carry the end state
  node.status = frame.status || "complete";
  node.finish_reason = frame.finish_reason || "";
  node.usage = frame.usage || null;
  if (frame.charged !== undefined) node.charged = frame.charged;
  node.seq = Math.max(node.seq || 0, frame.seq || 0);
  return true;
}

export function applyFailed(node, frame, syncing) {
  if (syncing.get(node.id)) return false;
  node.status = frame.status;
  node.error_code = frame.code || "";
  node.error_message = frame.message || "";
  if (frame.charged !== undefined) node.charged = frame.charged;
  if (frame.seq) node.seq = Math.max(node.seq || 0, frame.seq);
  return true;
}

/** An `error` frame saying the server could not read a reply it was syncing for this page (its
 * database out of reach), or did not (too many frames from this account or address just now):
 * the server holds nothing of the reply for the page any more, so the page stops waiting for
 * the snapshot and asks again, from the sequence it holds, once the frame's `retry_after` has
 * passed (a reconnect meanwhile asks anyway). True if it was one. */
export function syncAgainLater(frame, nodes, syncing, requestSync) {
  const later = frame.code === "database_unavailable" || frame.code === "rate_limited";
  if (!later || frame.request_type !== "reply.sync" || !frame.reply_id) {
    return false;
  }
  const id = frame.reply_id;
  syncing.delete(id);
  setTimeout(() => {
    const node = nodes.get(id);
    if (node && !syncing.get(id)) requestSync(id, node.seq || 0);
  }, (frame.retry_after || 2) * 1000);
  return true;
}

// --- drawing a long transcript as it is read ------------------------------------------------
// The markdown of a long conversation (highlighting, math, sanitizing) costs seconds: a reply
// is drawn at once only if it is being written or near the viewport; elsewhere its text stands
// as plain text (found by find-in-page) until it comes near the viewport, or the page is idle.

/** Markdown not drawn yet: its text, as plain text (a text node, never parsed). */
export function placeholder(text) {
  return el("div", { class: "markdown-placeholder", "data-placeholder": "", text });
}

const ANCHORED_SCROLLING = CSS.supports("overflow-anchor", "auto");
// Safari has no requestIdleCallback: a short batch every 50 ms instead.
const whenIdle = window.requestIdleCallback
  ? (callback) => window.requestIdleCallback(callback)
  : (callback) =>
      setTimeout(() => {
        const end = performance.now() + 20;
        callback({ timeRemaining: () => Math.max(0, end - performance.now()) });
      }, 50);

/** The text the reader has selected, if any. (Asked once per batch: Chromium lays the page
 * out to answer.) */
function selectedRange() {
  const selection = window.getSelection();
  return selection && selection.rangeCount && !selection.isCollapsed ? selection.getRangeAt(0) : null;
}

/** Which of a page's articles hold placeholders, and drawing them: those on screen before the
 * frame is painted, those coming near it (an IntersectionObserver), the rest in idle time,
 * newest first. A placeholder with the reader's selection in it waits for the selection to go
 * (drawing would drop it).
 *
 * The page says, for an article, whether to hold its markdown back (`isNear`, when it fills
 * it) and tells which articles hold a placeholder (`hold`); the hooks:
 * - `draw(article)`: draw its markdown in full, wherever it is;
 * - `schedule(article)`: fill it again at the next frame (it came near the viewport);
 * - `following()`: whether the page keeps to the bottom, and `toBottom()` to go there;
 * - `keepFocus(work)`: run an idle batch, keeping what the reader is typing in. */
export class LazyDrawing {
  constructor(list, { draw, schedule, following, toBottom, keepFocus = (work) => work() }) {
    this.list = list;
    this.hooks = { draw, following, toBottom, keepFocus };
    this.placeholders = new Set();
    this.near = new Set();
    this.idleRequested = false;
    this.watcher = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          // Away from the viewport an article is not laid out (content-visibility in app.css):
          // drawing its markdown then costs no layout of the page.
          entry.target.classList.toggle("is-far", !entry.isIntersecting);
          if (!entry.isIntersecting) {
            this.near.delete(entry.target);
            continue;
          }
          this.near.add(entry.target);
          if (this.placeholders.has(entry.target)) schedule(entry.target);
        }
      },
      { rootMargin: "100% 0px" }, // a viewport's height above and below
    );
    document.addEventListener("selectionchange", () => this.drawWhenIdle());
  }

  /** Watch an article that may hold a placeholder. */
  observe(article) {
    this.watcher.observe(article);
  }

  /** Whether the article is within a viewport of the screen (its markdown is drawn at once). */
  isNear(article) {
    return this.near.has(article);
  }

  /** The page filled the article: with a placeholder (`held`) or drawn. */
  hold(article, held) {
    if (held) this.placeholders.add(article);
    else this.placeholders.delete(article);
  }

  get size() {
    return this.placeholders.size;
  }

  /** Draw the placeholders on screen before the frame is painted (drawing one moves the others:
   * again until none is left on screen). Those near it follow with the IntersectionObserver. */
  drawInView() {
    for (let pass = 0; pass < 20; pass += 1) {
      const follow = this.hooks.following();
      const onScreen = [...this.placeholders].filter((article) => {
        if (!article.isConnected) return false;
        const box = article.getBoundingClientRect();
        return box.bottom > 0 && box.top < window.innerHeight;
      });
      if (!onScreen.length) return;
      const selected = selectedRange();
      for (const article of onScreen) this.drawInFull(article, selected);
      if (follow) this.hooks.toBottom();
    }
  }

  /** Draw the remaining placeholders a few at a time while the page is idle, newest first. */
  drawWhenIdle() {
    if (this.idleRequested || !this.placeholders.size) return;
    this.idleRequested = true;
    whenIdle((deadline) => {
      this.idleRequested = false;
      let drew = false;
      this.hooks.keepFocus(() => {
        const follow = this.hooks.following();
        const selected = selectedRange();
        for (let article = this.list.lastElementChild; article; article = article.previousElementSibling) {
          if (!this.placeholders.has(article) || !this.drawInFull(article, selected)) continue;
          drew = true;
          if (deadline.timeRemaining() < 20) break; // the rest of the slice lays them out
        }
        // At the bottom, scroll anchoring keeps the reader there as articles above change
        // height (without it, the page goes back down; either way the layout is left to the
        // next frame).
        if (drew && follow && !ANCHORED_SCROLLING) this.hooks.toBottom();
      });
      // Only selected or detached ones left: a selection change or a redraw asks again.
      if (drew) this.drawWhenIdle();
    });
  }

  drawInFull(article, selected) {
    if (selected && selected.intersectsNode(article)) return false;
    this.placeholders.delete(article);
    this.hooks.draw(article);
    return true;
  }
}

// A reply being written is drawn again at its frames, and each drawing renders the whole text
// so far (markdown, formulas, code) and lays it out again: the cost grows with the text. Drawn
// at every frame, a long answer with formulas took the whole main thread while it streamed: the
// page froze (typing, scrolling, Stop). Its next drawing waits this many times as long as the
// pass that drew it took, so that drawing it takes at most about a seventh of the time; a short
// reply (a few milliseconds a pass) is still drawn at every frame, and an ended one at once.
const DRAW_SPACING = 6;

/** When the replies being written may be drawn again. A page's drawing pass calls `begin()`,
 * `mayDraw(id)` for each reply being written it would draw, then `end()`. `redraw(id)`: asks the
 * page for a pass drawing that reply (once its turn has come). */
export class DrawPacing {
  constructor(redraw) {
    this.redraw = redraw;
    this.nextAt = new Map(); // reply id → when it may be drawn again (performance.now())
    this.waiting = new Set(); // reply ids with a pass asked for at their turn
    this.drawn = [];
    this.start = 0;
  }

  begin() {
    this.start = performance.now();
    this.drawn = [];
  }

  /** Whether the reply may be drawn in this pass; if not, a pass is asked for at its turn. */
  mayDraw(id) {
    const wait = (this.nextAt.get(id) || 0) - performance.now();
    if (wait <= 0) {
      this.drawn.push(id);
      return true;
    }
    if (!this.waiting.has(id)) {
      this.waiting.add(id);
      setTimeout(() => {
        this.waiting.delete(id);
        this.redraw(id);
      }, wait);
    }
    return false;
  }

  /** The pass's cost, with the layout its drawings need (done now: the browser would do it
   * before painting), spaces the next drawings of the replies it drew. */
  end() {
    if (!this.drawn.length) return;
    void document.body.offsetHeight;
    const end = performance.now();
    for (const id of this.drawn) this.nextAt.set(id, end + (end - this.start) * DRAW_SPACING);
    this.drawn = [];
  }
}
