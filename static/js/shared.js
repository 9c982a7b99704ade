// The page a share link opens (/s/<token>/): the transcript drawn as the conversation page draws
// it (markdown.js: the same rendering and sanitizing; a long one as it is read, replies.js), then
// followed live, read-only, over the link's socket (README "Sharing"). Without this script the
// server's transcript stays as it is.
import { renderMarkdown } from "./markdown.js";
import {
  ACTIVE,
  applyCompleted,
  applyDelta,
  applyFailed,
  applySnapshot,
  applyStarted,
  announcingReplies,
  DrawPacing,
  FINISH_NOTES,
  LazyDrawing,
  placeholder,
  replyState,
  resumeReplies,
  resyncingQuietReplies,
  syncAgainLater,
} from "./replies.js";
import { ReconnectingSocket } from "./socket.js";
import { copyText, el, placeChildren, toast } from "./util.js";

// What a link shows (frames.LINK_ROLES): a signed-in viewer who may see the conversation by
// right gets its socket's full frames, tool results included, and they are held, not drawn.
const SHOWN_ROLES = new Set(["user", "assistant"]);
const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

const page = JSON.parse(document.getElementById("page-data").textContent);
const root = document.querySelector(".shared-transcript");
const list = root.querySelector(".shared-messages");
const endedNote = root.querySelector(".shared-ended");
const stateNote = root.querySelector("[data-shared-state]");
const statusBadge = document.getElementById("connection-status");

const NO_LONGER_LIVE = "What is shown below is as it was then; it no longer updates.";
// The socket's close codes (README "Websocket protocol") in this page's words.
const REFUSALS = {
  4401: page.signed_in
    ? `You are signed out — sign in again to follow this conversation. ${NO_LONGER_LIVE}`
    : `This link now needs you to sign in. ${NO_LONGER_LIVE}`,
  // Public links switched off under an anonymous viewer close with 4401 (signing in helps),
  // so 4403 is the link's own end for everyone.
  4403: `This link no longer works: it was revoked or it expired. ${NO_LONGER_LIVE}`,
  4404: `This conversation was deleted. ${NO_LONGER_LIVE}`,
};

// --- state --------------------------------------------------------------------------------

/** The branch the link shows, oldest first: down to the newest message (a message posted under
 * an earlier one starts another branch, which the link shows from then on). */
let branch = [];
/** id → message on `branch`. */
const nodes = new Map();
/** message id → its <article>. */
const articles = new Map();
/** message body → what it was drawn from ({key, lazy}); see fillArticle. */
const bodies = new WeakMap();
/** reply id → true while waiting for a reply.snapshot (deltas are then ignored). */
const syncing = new Map();
const dirty = new Set();
let structureDirty = true;
let frameRequested = false;
let live = true; // false once the socket is refused for good (the link ended)
let readyCount = 0;
let catchUpCount = 0;
let catchingUp = false;
/** message.created frames that came while the page was read again: placed once it is. */
const held = [];

function setBranch(messages) {
  branch = messages;
  const kept = new Set(messages.map((node) => node.id));
  for (const id of nodes.keys()) {
    if (!kept.has(id)) {
      nodes.delete(id);
      articles.delete(id);
      syncing.delete(id);
    }
  }
  for (const node of messages) nodes.set(node.id, node);
  structureDirty = true;
}

/** Put a new message on the branch, under its parent (what came after the parent belongs to
 * another branch now); false when its parent is not one this page holds. */
function place(message) {
  if (nodes.has(message.id)) return true;
  let at = 0;
  if (message.parent_id) {
    at = branch.findIndex((node) => node.id === message.parent_id) + 1;
    if (at === 0) return false;
  }
  const node = { ...message, content: message.content || "", seq: message.seq || 0 };
  setBranch([...branch.slice(0, at), node]);
  return true;
}

/** As the server's transcript (sharing.link_transcript): a reply that only called a tool has no
 * text to show. */
function visible(node) {
  return SHOWN_ROLES.has(node.role) && Boolean(node.content || ACTIVE.has(node.status));
}

function isNewer(createdAt) {
  if (!createdAt) return false;
  for (const node of nodes.values()) if (node.created_at >= createdAt) return false;
  return true;
}

// --- rendering --------------------------------------------------------------------------------

function schedule(id) {
  if (id) dirty.add(id);
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flushRender);
}

function isAtBottom() {
  const scroller = document.scrollingElement;
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
}

function scrollToBottom() {
  document.scrollingElement.scrollTop = document.scrollingElement.scrollHeight;
}

// A reply being written is drawn no more often than its drawings' cost allows (replies.js).
const pacing = new DrawPacing((id) => schedule(id));

function flushRender() {
  frameRequested = false;
  pacing.begin();
  const follow = live && isAtBottom();
  const structureChanged = structureDirty;
  if (structureDirty) {
    structureDirty = false;
    const wanted = [];
    for (const node of branch) {
      if (!visible(node)) continue;
      let article = articles.get(node.id);
      if (!article) {
        article = el("article", { class: `message message-${node.role}`, "data-id": node.id });
        articles.set(node.id, article);
        dirty.add(node.id);
        if (node.role === "assistant") lazyDrawing.observe(article);
      }
      wanted.push(article);
    }
    placeChildren(list, wanted);
  }
  const placed = lazyDrawing.size;
  for (const id of dirty) {
    const node = nodes.get(id);
    const article = articles.get(id);
    if (!node || !article) continue;
    // One already drawn waits for its turn; a new one (or one drawn again empty) at once.
    if (ACTIVE.has(node.status) && article.hasChildNodes() && !pacing.mayDraw(id)) continue;
    fillArticle(article, node);
  }
  dirty.clear();
  if (follow) scrollToBottom();
  if (lazyDrawing.size && (structureChanged || lazyDrawing.size > placed)) lazyDrawing.drawInView();
  lazyDrawing.drawWhenIdle();
  pacing.end();
}

// A long transcript's replies are drawn as they are read (replies.js), as on the conversation page.
const lazyDrawing = new LazyDrawing(list, {
  draw(article) {
    const node = nodes.get(article.dataset.id);
    if (node) fillArticle(article, node, { full: true });
  },
  schedule: (article) => schedule(article.dataset.id),
  following: () => live && isAtBottom(),
  toBottom: scrollToBottom,
});

/** `full`: draw the markdown even away from the viewport. */
function fillArticle(article, node, { full = false } = {}) {
  const writing = ACTIVE.has(node.status);
  article.setAttribute("aria-label", node.author);
  article.classList.toggle("is-streaming", writing && live);
  article.dataset.status = node.status;
  const header = el(
    "header",
    { class: "message-head" },
    el("span", { class: "message-author", text: node.author }),
    node.role === "assistant" && writing && live
      ? el("span", { class: "message-state", text: replyState(node) })
      : null,
  );
  // A body drawn from the same text and state is kept (a redraw after the link ended changes
  // the heads); one being written is drawn again every time.
  const key = writing && live ? null : JSON.stringify([node.content, node.status, node.finish_reason, writing]);
  const heldBack =
    node.role === "assistant" && !writing && Boolean(node.content) && !full && !lazyDrawing.isNear(article);
  const old = article.querySelector(":scope > .message-body");
  const drawn = old && bodies.get(old);
  if (key !== null && drawn && drawn.key === key && !(drawn.lazy && !heldBack)) {
    article.querySelector(":scope > .message-head").replaceWith(header);
    return;
  }
  const body = el("div", { class: "message-body" });
  bodies.set(body, { key, lazy: heldBack });
  lazyDrawing.hold(article, heldBack);
  if (node.role === "assistant") {
    const content = el("div", { class: "message-content" });
    if (heldBack) content.append(placeholder(node.content));
    else if (node.content) content.append(renderMarkdown(node.content));
    else if (writing && live) {
      content.append(el("span", { class: "typing", "aria-label": "Waiting for the answer" }, "…"));
    }
    body.append(content);
    if (writing && !live) {
      body.append(el("p", { class: "message-note", text: "This reply was still being written." }));
    } else if (["failed", "interrupted", "cancelled"].includes(node.status)) {
      const text = node.status === "cancelled" ? "Stopped." : "The reply did not finish.";
      body.append(el("p", { class: `message-error status-${node.status}`, role: "note", text }));
    } else if (node.status === "complete" && FINISH_NOTES[node.finish_reason]) {
      // Ended early of its own accord, as the conversation page says under it.
      body.append(el("p", { class: "message-note", role: "note", text: FINISH_NOTES[node.finish_reason] }));
    }
  } else {
    body.append(el("div", { class: "user-text", text: node.content }));
  }
  article.replaceChildren(header, body);
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-code]");
  if (!button) return;
  const code = button.closest("pre")?.querySelector("code");
  const ok = await copyText(code ? code.textContent : "");
  toast(ok ? "Copied." : "Could not copy.", { timeout: 2000 });
});

// --- frames -----------------------------------------------------------------------------------

function requestSync(replyId, afterSeq) {
  syncing.set(replyId, true);
  socket.sendIfOpen({ type: "reply.sync", reply_id: replyId, after_seq: afterSeq });
}

/** What the link shows, read again (after a reconnect, or when a message came under one this
 * page does not hold): messages not held are added, and the replies among them still being
 * written are followed from the text the reading has. */
async function catchUp(listed, retries = 1) {
  const number = ++catchUpCount;
  catchingUp = true;
  let data = null;
  try {
    const response = await fetch(page.messages_url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.ok && !response.redirected) data = await response.json();
  } catch {
    data = null; // the link's socket says why, if the link ended
  }
  if (number !== catchUpCount) return; // a newer reading is on its way
  if (data && live) {
    const messages = [];
    for (const message of data.messages) {
      const known = nodes.get(message.id);
      if (known) {
        // Continued and finished while this page was away: the reply grew past what it holds.
        const grew = known.role === "assistant" && (message.seq || 0) > (known.seq || 0);
        if (grew && !ACTIVE.has(known.status) && !syncing.get(known.id)) requestSync(known.id, known.seq || 0);
        messages.push(known);
        continue;
      }
      const node = { ...message, content: message.content || "", seq: message.seq || 0 };
      if (listed.has(node.id) || (node.role === "assistant" && ACTIVE.has(node.status))) {
        requestSync(node.id, node.seq);
      }
      messages.push(node);
    }
    setBranch(messages);
    if (data.title && data.title !== page.title) handlers["conversation.updated"]({ title: data.title });
  }
  catchingUp = false;
  let missing = false;
  for (const frame of held.splice(0)) {
    if (!place(frame.message)) {
      missing = missing || SHOWN_ROLES.has(frame.message.role);
      continue;
    }
    // Its deltas may have come before it was placed: what it has is asked for again.
    const node = nodes.get(frame.message.id);
    if (node.role === "assistant" && !syncing.get(node.id)) requestSync(node.id, node.seq);
  }
  if (missing && data && retries > 0) catchUp(new Set(), retries - 1);
  schedule();
}

const handlers = {
  ready(frame) {
    readyCount += 1;
    const listed = resumeReplies(nodes, frame.active_replies, requestSync);
    // Messages posted while this socket was away (or before it first joined) are read again.
    if (readyCount > 1 || isNewer(frame.newest_message_at)) catchUp(listed);
  },
  "message.created"(frame) {
    if (catchingUp) {
      held.push(frame);
      return;
    }
    if (place(frame.message)) schedule(frame.message.id);
    else if (SHOWN_ROLES.has(frame.message.role)) catchUp(new Set());
  },
  "reply.started"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applyStarted(node, frame, syncing, requestSync)) return;
    schedule(node.id);
  },
  "reply.delta"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applyDelta(node, frame, syncing, requestSync)) return;
    structureDirty = structureDirty || !articles.has(node.id);
    schedule(node.id);
  },
  "reply.snapshot"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applySnapshot(node, frame, syncing, requestSync)) return;
    structureDirty = true; // a reply with no text may have some now, or none any more
    schedule(node.id);
  },
  "reply.completed"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applyCompleted(node, frame, syncing)) return;
    structureDirty = true;
    schedule(node.id);
  },
  "reply.failed"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applyFailed(node, frame, syncing)) return;
    structureDirty = true;
    schedule(node.id);
  },
  "conversation.updated"(frame) {
    if (!frame.title) return;
    page.title = frame.title;
    for (const heading of document.querySelectorAll("[data-conversation-title]")) {
      heading.textContent = frame.title;
    }
    document.title = `${frame.title} (shared)`;
  },
  error(frame) {
    // A reply the server could not catch up for this page just now: asked for again shortly.
    // (The link's ends come as close codes: onStatus.)
    syncAgainLater(frame, nodes, syncing, requestSync);
  },
};

/** The link ended (revoked, expired, public links switched off), the conversation was deleted,
 * or the viewer signed out: the page says so and follows nothing more. */
function stop(reason) {
  live = false;
  endedNote.textContent = reason;
  if (!page.signed_in && reason === REFUSALS[4401] && page.sign_in_url) {
    // Signing in brings the link back (the sign-in page returns here).
    const signIn = document.createElement("a");
    signIn.href = page.sign_in_url;
    signIn.textContent = "Sign in to follow it again";
    endedNote.append(" ", signIn);
  }
  endedNote.hidden = false;
  stateNote.textContent = "no longer live";
  statusBadge.textContent = "Not live";
  statusBadge.dataset.status = "offline";
  // Nothing it offers works without the link any more.
  for (const form of document.querySelectorAll("form[data-fork]")) form.hidden = true;
  for (const id of nodes.keys()) dirty.add(id);
  structureDirty = true;
  schedule();
}

function onStatus(status, detail) {
  statusBadge.hidden = false;
  if (socket.refusal) {
    if (live) stop(socket.refusal);
    return;
  }
  statusBadge.textContent = detail || STATUS_TEXT[status] || status;
  statusBadge.dataset.status = status;
  if (status === "connected") stateNote.textContent = "live";
}

/** The transcript as the server wrote it (templates/sharing/shared.html), the page's only copy:
 * each message as the link's socket sends it, read from its article (its markdown source is its
 * .text's text: escaped by the server, never parsed as markup here). */
function serverMessages() {
  return Array.from(list.querySelectorAll(":scope > article[data-id]"), (article) => ({
    id: article.dataset.id,
    parent_id: article.dataset.parentId || null,
    role: article.dataset.role,
    author: article.querySelector(":scope > .author").textContent,
    content: article.querySelector(":scope > .text").textContent,
    status: article.dataset.status,
    finish_reason: article.dataset.finishReason || "",
    seq: Number(article.dataset.seq) || 0,
    created_at: article.dataset.createdAt,
  }));
}

// The server's transcript is drawn again, as the conversation page draws (its articles give way
// to the script's).
setBranch(serverMessages());
list.classList.add("messages");
flushRender();

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${location.host}${page.socket_path}`, {
  onFrame: announcingReplies(
    nodes,
    resyncingQuietReplies(nodes, syncing, requestSync, (frame) => handlers[frame.type]?.(frame)),
  ),
  onOpen: () => {},
  onStatus,
  refusals: REFUSALS,
});
// Exposed for debugging and the browser tests (e.g. to simulate a dropped connection).
window.chatSocket = socket;
socket.connect();
