// The conversation page: the message tree, the websocket, streaming render and the composer.
import { renderMarkdown, renderCode } from "./markdown.js";
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
import { followAccount } from "./account.js";
import { describeSending, readAllowance } from "./estimate.js";
import {
  copyText,
  el,
  estimateTokens,
  formatDuration,
  markRead,
  placeChildren,
  sendsMessage,
  toast,
} from "./util.js";
import { initSettings } from "./settings.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

const page = JSON.parse(document.getElementById("page-data").textContent);
const root = document.querySelector(".conversation");
const list = root.querySelector(".messages");
const composer = document.getElementById("composer");
const input = document.getElementById("composer-input");
const sendButton = document.getElementById("send-button");
const stopButton = document.getElementById("stop-button");
const composerError = document.getElementById("composer-error");
const estimate = document.getElementById("composer-estimate");
const blockedNote = document.getElementById("composer-blocked");
const statusBadge = document.getElementById("connection-status");
const confidenceToggle = document.getElementById("confidence-toggle");

// --- state --------------------------------------------------------------------------------

/** id → message (the MessageFrame shape, plus client-side bookkeeping). */
const nodes = new Map();
/** parent id ("" for roots) → child ids in the server's order (see serverOrder). */
const children = new Map();
/** parent id → the child shown on the active branch. */
const chosen = new Map();
/** reply id → true while waiting for a reply.snapshot (deltas are then ignored). */
const syncing = new Map();
/** reply id → client-side timings of the thinking phase. */
const timings = new Map();
/** message id → rendered <article>. */
const articles = new Map();
/** field id → text typed into an edit or tool-answer box (articles are rebuilt on every change). */
const drafts = new Map();
/** message body → what it was drawn from ({key, lazy}); see bodyKey. */
const bodies = new WeakMap();
const dirty = new Set();
let frameRequested = false;
let structureDirty = true;
let showConfidence = false;
let settings = { model: page.model, modelDisplayName: page.model_display_name, params: page.params };
/** client_id → {frame, text}: every frame with a client_id until its message.created (or error)
 * arrives. A connection can die with frames written into it, so they all go again after each
 * reconnect (the server deduplicates by client_id); `text` goes back to the composer on error. */
const outbox = new Map();
// Each `ready` after the first follows a gap in which message.created frames were lost: the tab
// reads the conversation again before it sends the outbox (a stale leaf would fork it).
let readyCount = 0;
let catchingUp = false;

function addNode(frame) {
  const existing = nodes.get(frame.id);
  if (existing) {
    Object.assign(existing, frame);
    return existing;
  }
  const node = { ...frame, tool_calls: frame.tool_calls || null, logprobs: frame.logprobs || [] };
  nodes.set(node.id, node);
  const key = node.parent_id || "";
  if (!children.has(key)) children.set(key, []);
  // Drawn articles this message changes: its siblings' version counters, its parent's controls
  // (Continue is only for a reply with nothing under it), and, for a tool result, the reply
  // whose calls it answers (results form a chain under it).
  for (const id of children.get(key)) dirty.add(id);
  if (node.parent_id) dirty.add(node.parent_id);
  for (let up = node; up?.role === "tool" && up.parent_id; up = nodes.get(up.parent_id)) {
    dirty.add(up.parent_id);
  }
  const siblings = children.get(key);
  const after = siblings.findIndex((id) => serverOrder(node, nodes.get(id)) < 0);
  siblings.splice(after < 0 ? siblings.length : after, 0, node.id);
  structureDirty = true;
  return node;
}

/** The server's order of messages (created_at, then id): versions are numbered by it, so
 * every tab numbers them alike, and as after a reload, whatever order their frames arrived
 * in (each worker hands its own sockets its messages before the other workers' sockets). The
 * times are compared as written (ISO 8601, in UTC: a time without a fraction sorts before one
 * with the same seconds and any, as it should), as ids are (UUIDs, as PostgreSQL orders them). */
function serverOrder(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

for (const frame of page.messages) addNode(frame);

/** Select the branch that ends at `id` (every ancestor chooses the child on its way). */
function chooseBranchTo(id) {
  let node = nodes.get(id);
  while (node) {
    chosen.set(node.parent_id || "", node.id);
    node = node.parent_id ? nodes.get(node.parent_id) : null;
  }
  structureDirty = true;
}

/** Messages this tab made (a message sent, an edit, a reply regenerated, a tool's result): its
 * frame's client_id came back with them. */
const madeHere = new Set();

/** Where the message a frame of this tab's asks for goes: its parent's id ("" for a root). */
function placeOf(frame) {
  if (frame.type === "message.send") return frame.parent_id || "";
  const edited = frame.type === "message.edit" ? nodes.get(frame.message_id) : null;
  const regenerated = frame.type === "reply.regenerate" ? nodes.get(frame.reply_id) : null;
  const replaced = edited || regenerated;
  return replaced ? replaced.parent_id || "" : null;
}

/** Whether following `node`, made elsewhere (another tab, a teammate), would take the view away
 * from what this tab made or is making in the same place: a message of its own shown as a
 * version of `node` or of one of its parents, or, with `waiting`, the branch a message, edit or
 * regenerate of its own still on its way goes to. Two tabs sending at once each keep their own
 * message; a tab with nothing of its own in the way (a teammate watching) follows. */
function takesViewFromOwn(node, { waiting = true } = {}) {
  const places = new Set(); // where this tab's messages on their way go
  const above = new Set(); // the messages shown above those places
  for (const { frame } of waiting ? outbox.values() : []) {
    const place = placeOf(frame);
    if (place === null) continue;
    places.add(place);
    for (let up = nodes.get(place); up; up = up.parent_id ? nodes.get(up.parent_id) : null) above.add(up.id);
  }
  for (let up = node; up; up = up.parent_id ? nodes.get(up.parent_id) : null) {
    const place = up.parent_id || "";
    if (places.has(place)) return true;
    const shown = shownBefore(place, up.id);
    if (shown && shown !== up.id && (madeHere.has(shown) || above.has(shown))) return true;
  }
  return false;
}

/** The message shown under `place` before `arrived` was added there (activePath's choice). */
function shownBefore(place, arrived) {
  const ids = children.get(place) || [];
  const id = chosen.get(place);
  if (id && ids.includes(id)) return id;
  return ids.filter((other) => other !== arrived).at(-1);
}

/** Whether a message of this tab's is being sent under `place` (a parent's id, "" for a root). */
function sendingUnder(place) {
  return [...outbox.values()].some(({ frame }) => frame.type === "message.send" && placeOf(frame) === place);
}

function newestMessage() {
  let newest = null;
  for (const node of nodes.values()) {
    if (!newest || node.created_at > newest.created_at) newest = node;
  }
  return newest;
}

const initialLeaf = newestMessage();
if (initialLeaf) chooseBranchTo(initialLeaf.id);

function activePath() {
  const path = [];
  let key = "";
  const seen = new Set();
  while (children.has(key)) {
    const ids = children.get(key);
    let id = chosen.get(key);
    if (!id || !ids.includes(id)) {
      // Another's message under the place this tab's is on its way to is not shown in its stead.
      if (sendingUnder(key)) break;
      id = ids[ids.length - 1];
    }
    if (seen.has(id)) break;
    seen.add(id);
    path.push(nodes.get(id));
    key = id;
  }
  return path;
}

function siblingsOf(node) {
  return children.get(node.parent_id || "") || [node.id];
}

function lastOnPath() {
  const path = activePath();
  return path.length ? path[path.length - 1] : null;
}

function activeReplyOnPath() {
  return activePath().find((node) => node.role === "assistant" && ACTIVE.has(node.status)) || null;
}

// --- rendering --------------------------------------------------------------------------------

function authorLabel(node) {
  if (node.role === "user") return node.author_id === page.user_id ? "You" : node.author;
  return node.author;
}

function schedule(id) {
  if (id) dirty.add(id);
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flushRender);
}

/** Where the reader is typing in a message (an edit or a tool answer), to restore after a redraw. */
function typingSpot() {
  const field = document.activeElement;
  if (!field || !field.id || !list.contains(field) || typeof field.selectionStart !== "number") return null;
  return { id: field.id, start: field.selectionStart, end: field.selectionEnd };
}

function restoreTypingSpot(spot) {
  const field = document.getElementById(spot.id);
  if (!field || !list.contains(field) || document.activeElement === field) return;
  field.focus();
  field.setSelectionRange(spot.start, spot.end);
}

// A reply being written is drawn no more often than its drawings' cost allows (replies.js).
const pacing = new DrawPacing((id) => schedule(id));

function flushRender() {
  frameRequested = false;
  pacing.begin();
  const spot = typingSpot();
  const structureChanged = structureDirty;
  if (structureDirty) {
    structureDirty = false;
    renderStructure();
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
  if (followBottom) scrollToBottom();
  if (lazyDrawing.size && (structureChanged || lazyDrawing.size > placed)) lazyDrawing.drawInView();
  if (spot) restoreTypingSpot(spot);
  lazyDrawing.drawWhenIdle();
  updateComposer();
  pacing.end();
}

// A long conversation's replies are drawn as they are read (replies.js).
const lazyDrawing = new LazyDrawing(list, {
  draw(article) {
    const node = nodes.get(article.dataset.id);
    if (node) fillArticle(article, node, { full: true });
  },
  schedule: (article) => schedule(article.dataset.id),
  following: () => followBottom,
  toBottom: () => scrollToBottom(),
  keepFocus(work) {
    const spot = typingSpot();
    work();
    if (spot) restoreTypingSpot(spot);
  },
});

function renderStructure() {
  const path = activePath();
  const wanted = [];
  for (const node of path) {
    let article = articles.get(node.id);
    if (!article) {
      article = el("article", { class: `message message-${node.role}`, "data-id": node.id });
      articles.set(node.id, article);
      dirty.add(node.id);
      if (node.role === "assistant") lazyDrawing.observe(article);
    }
    // Only new and changed articles are drawn again: every article of a long conversation
    // (markdown, highlighting, math) on every message froze the page for seconds.
    wanted.push(article);
  }
  for (const { frame } of outbox.values()) {
    if (frame.type === "message.send") wanted.push(pendingArticle(frame));
  }
  placeChildren(list, wanted);
  list.classList.toggle("is-empty", wanted.length === 0);
  if (followBottom) scrollToBottom();
  updateExportLinks(path);
}

/** A message sent but not yet acknowledged (it may travel again after a reconnect). */
function pendingArticle(frame) {
  return el(
    "article",
    { class: "message message-user is-pending", "aria-label": "You" },
    el(
      "header",
      { class: "message-head" },
      el("span", { class: "message-author", text: "You" }),
      el("span", { class: "message-state", text: "Sending…" }),
    ),
    el("div", { class: "message-body" }, el("div", { class: "user-text", text: frame.content })),
  );
}

// The page follows the bottom as replies grow until the reader scrolls up, by however little
// (one wheel notch is less than any "near the bottom" margin); back at the bottom, or sending,
// it follows again.
let followBottom = true;
let lastScrollTop = document.scrollingElement.scrollTop;

function isAtBottom() {
  const scroller = document.scrollingElement;
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
}

window.addEventListener(
  "scroll",
  () => {
    const top = document.scrollingElement.scrollTop;
    if (isAtBottom()) followBottom = true;
    else if (top < lastScrollTop) followBottom = false;
    lastScrollTop = top;
  },
  { passive: true },
);

function scrollToBottom() {
  const scroller = document.scrollingElement;
  scroller.scrollTop = scroller.scrollHeight;
}

/** What a message's body is drawn from: a body drawn from the same key is kept as it is (a
 * new setting, a change of the composer's state or a message elsewhere redraws the controls,
 * not the markdown); null draws it again every time (streaming, editing). */
function bodyKey(node) {
  if (node.editing || ACTIVE.has(node.status)) return null;
  const timing = timings.get(node.id);
  const calls = node.tool_calls?.length
    ? [page.blocked, [...answeredToolCalls(node)], waitingAnswers(node)]
    : null;
  return JSON.stringify([
    node.content,
    node.reasoning,
    node.status,
    node.finish_reason,
    node.error_message,
    node.tool_calls,
    calls,
    node.role === "assistant" && showConfidence && Boolean(node.logprobs?.length),
    node.role === "assistant" && Boolean(node.json_mode),
    timing ? [timing.start, timing.end] : null,
  ]);
}

/** `full`: draw the markdown even away from the viewport. */
function fillArticle(article, node, { full = false } = {}) {
  const label = authorLabel(node);
  article.setAttribute("aria-label", `${label}${node.role === "tool" ? " result" : ""}`);
  article.classList.toggle("is-streaming", ACTIVE.has(node.status));
  article.dataset.status = node.status;
  const header = el(
    "header",
    { class: "message-head" },
    el("span", { class: "message-author", text: label }),
    node.role === "assistant" && ACTIVE.has(node.status)
      ? el("span", { class: "message-state", text: replyState(node) })
      : null,
  );
  const key = bodyKey(node);
  const heldBack =
    node.role === "assistant" &&
    !ACTIVE.has(node.status) &&
    Boolean(node.content || node.reasoning) &&
    !full &&
    !lazyDrawing.isNear(article);
  const old = article.querySelector(":scope > .message-body");
  const drawn = old && bodies.get(old);
  let body = old;
  if (key === null || !drawn || drawn.key !== key || (drawn.lazy && !heldBack)) {
    body = el("div", { class: "message-body" });
    bodies.set(body, { key, lazy: heldBack });
    if (node.role === "assistant") fillAssistantBody(body, node, heldBack);
    else if (node.role === "tool") {
      body.append(el("p", { class: "tool-result-label", text: `Result for ${node.tool_call_id}` }));
      body.append(el("pre", { class: "tool-result" }, el("code", { text: node.content })));
    } else {
      body.append(el("div", { class: "user-text", text: node.content }));
    }
  }
  lazyDrawing.hold(article, bodies.get(body).lazy);
  const controls = controlsFor(node);
  const focused = focusedControl(article);
  if (body === old) {
    // Kept: only the head and the controls around it change.
    article.querySelector(":scope > .message-head").replaceWith(header);
    article.querySelector(":scope > .message-controls").replaceWith(controls);
  } else {
    article.replaceChildren(header, node.editing ? editForm(node) : body, controls);
  }
  if (node.focusVersions && article.isConnected) {
    // It replaced the article the focus was in (another version, Regenerate, an edit sent).
    const wanted = node.focusVersions === "previous" ? "Previous version" : "Next version";
    const other = node.focusVersions === "previous" ? "Next version" : "Previous version";
    node.focusVersions = null;
    refocusControl(controls, wanted) || refocusControl(controls, other);
  } else if (focused) refocusControl(controls, focused);
}

function controlName(control) {
  return control.getAttribute("aria-label") || control.textContent;
}

/** The name of the message control that has the focus in `article`, if one has: the controls
 * are drawn again on each change (every delta of a reply), and the focus would fall to the page. */
function focusedControl(article) {
  const control = document.activeElement;
  if (!control || !article.contains(control) || !control.closest(".message-controls")) return null;
  return controlName(control);
}

function refocusControl(controls, name) {
  const control = [...controls.querySelectorAll("button, summary")].find(
    (candidate) => controlName(candidate) === name && !candidate.disabled,
  );
  control?.focus();
  return Boolean(control);
}

function thinkingBlock(node, lazy) {
  if (!node.reasoning) return null;
  const timing = timings.get(node.id);
  const thinkingNow = ACTIVE.has(node.status) && !node.content && !(node.tool_calls || []).length;
  const tokens = node.usage?.completion_tokens_details?.reasoning_tokens || estimateTokens(node.reasoning);
  let summary = thinkingNow ? "Thinking…" : "Thought";
  const bits = [`~${tokens} tokens`];
  if (timing && timing.start) {
    const end = timing.end || performance.now();
    bits.push(formatDuration(end - timing.start));
  }
  summary += ` (${bits.join(", ")})`;
  const details = el(
    "details",
    { class: "thinking", "data-thinking": "" },
    el("summary", { text: summary }),
    el(
      "div",
      { class: "thinking-body" },
      lazy ? placeholder(node.reasoning) : renderMarkdown(node.reasoning),
    ),
  );
  // Open while thinking; collapsed once the answer starts, unless the reader opened it.
  details.open = node.thinkingOpen ?? thinkingNow;
  details.addEventListener("toggle", () => {
    node.thinkingOpen = details.open;
  });
  return details;
}

function fillAssistantBody(body, node, lazy) {
  const thinking = thinkingBlock(node, lazy);
  if (thinking) body.append(thinking);
  const content = el("div", { class: "message-content" });
  if (lazy && node.content) {
    content.append(placeholder(node.content));
  } else if (showConfidence && node.logprobs && node.logprobs.length) {
    content.append(confidenceView(node));
  } else if (node.json_mode && node.content) {
    content.append(jsonView(node));
  } else if (node.content) {
    content.append(renderMarkdown(node.content));
  } else if (ACTIVE.has(node.status) && !node.reasoning && !(node.tool_calls || []).length) {
    content.append(el("span", { class: "typing", "aria-label": "Waiting for the answer" }, "…"));
  }
  body.append(content);
  if (node.tool_calls && node.tool_calls.length) body.append(toolCallsView(node));
  if (node.status === "failed" || node.status === "interrupted" || node.status === "cancelled") {
    const text = node.error_message || (node.status === "cancelled" ? "Stopped." : "The reply did not finish.");
    body.append(el("p", { class: `message-error status-${node.status}`, role: "note", text }));
  } else if (node.status === "unfollowed") {
    body.append(el("p", { class: "message-note", role: "note", text: "The rest of this reply is not shown here." }));
  } else if (node.status === "complete" && FINISH_NOTES[node.finish_reason]) {
    body.append(el("p", { class: "message-note", role: "note", text: FINISH_NOTES[node.finish_reason] }));
  }
}

function jsonView(node) {
  const wrap = el("div", { class: "json-view" });
  if (ACTIVE.has(node.status)) {
    wrap.append(renderCode(node.content, "json"));
    return wrap;
  }
  let pretty = node.content;
  let verdict;
  try {
    pretty = JSON.stringify(JSON.parse(node.content), null, 2);
    verdict = el("span", { class: "json-valid", text: "Valid JSON" });
  } catch (error) {
    verdict = el("span", { class: "json-invalid", text: `Invalid JSON: ${error.message}` });
  }
  wrap.append(
    el(
      "div",
      { class: "json-head" },
      verdict,
      el("button", {
        type: "button",
        class: "small",
        text: "Copy JSON",
        onclick: () => copyAndTell(pretty),
      }),
    ),
    renderCode(pretty, "json"),
  );
  return wrap;
}

function confidenceBucket(p) {
  if (p >= 0.9) return "p-high";
  if (p >= 0.6) return "p-mid";
  if (p >= 0.3) return "p-low";
  return "p-vlow";
}

function confidenceView(node) {
  const wrap = el("div", { class: "confidence", role: "group", "aria-label": "Tokens by confidence" });
  node.logprobs.forEach((entry, index) => {
    const p = Math.exp(entry.logprob);
    const alternatives = el("span", { class: "tok-alts", role: "tooltip", id: `tok-${node.id}-${index}` });
    alternatives.append(el("span", { class: "tok-alt-head", text: `${(p * 100).toFixed(1)}%` }));
    for (const alt of entry.top_logprobs || []) {
      alternatives.append(
        el(
          "span",
          { class: "tok-alt" },
          el("code", { text: JSON.stringify(alt.token) }),
          ` ${(Math.exp(alt.logprob) * 100).toFixed(1)}%`,
        ),
      );
    }
    wrap.append(
      el(
        "span",
        {
          class: `tok ${confidenceBucket(p)}`,
          tabindex: "0",
          "data-p": p.toFixed(4),
          "aria-describedby": alternatives.id,
        },
        el("span", { class: "tok-text", text: entry.token }),
        alternatives,
      ),
    );
  });
  return wrap;
}

function answeredToolCalls(reply) {
  const answered = new Set();
  let key = reply.id;
  while (children.has(key)) {
    const tools = children.get(key).map((id) => nodes.get(id)).filter((n) => n.role === "tool");
    if (!tools.length) break;
    for (const tool of tools) answered.add(tool.tool_call_id);
    key = tools[0].id;
  }
  return answered;
}

/** The tool calls of `reply` whose answer is sent and not yet acknowledged (or refused). */
function waitingAnswers(reply) {
  const ids = [];
  for (const { frame } of outbox.values()) {
    if (frame.type === "tool.answer" && frame.reply_id === reply.id) ids.push(frame.tool_call_id);
  }
  return ids;
}

function prettyArguments(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text || "";
  }
}

function toolCallsView(node) {
  const answered = answeredToolCalls(node);
  const waiting = waitingAnswers(node);
  const wrap = el("div", { class: "tool-calls" });
  node.tool_calls.forEach((call, index) => {
    const name = call.function?.name || "(unnamed)";
    const box = el(
      "section",
      { class: "tool-call", "aria-label": `Tool call ${name}` },
      el("h3", { class: "tool-call-name" }, "Tool call ", el("code", { text: name })),
      el("pre", { class: "tool-call-args" }, el("code", { text: prettyArguments(call.function?.arguments) })),
    );
    const canAnswer =
      !page.blocked &&
      node.status === "complete" &&
      node.finish_reason === "tool_calls" && // cut off mid-call (length): nothing to answer
      call.id &&
      !answered.has(call.id);
    if (answered.has(call.id)) box.append(el("p", { class: "muted", text: "Answered." }));
    if (canAnswer) {
      const fieldId = `tool-answer-${node.id}-${index}`;
      const area = el("textarea", { id: fieldId, rows: "3", required: true });
      area.value = drafts.get(fieldId) || "";
      area.addEventListener("input", () => drafts.set(fieldId, area.value));
      const form = el(
        "form",
        { class: "tool-answer" },
        el("label", { for: fieldId, text: `Result of ${name}` }),
        area,
        el("button", {
          type: "submit",
          class: "primary small",
          text: "Send result",
          disabled: waiting.includes(call.id), // drawn again while it is being sent
        }),
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const refusal = tooLong(area.value);
        if (refusal) {
          composerError.textContent = refusal;
          return;
        }
        post({
          type: "tool.answer",
          reply_id: node.id,
          tool_call_id: call.id,
          content: area.value,
          client_id: crypto.randomUUID(),
        });
        form.querySelector("button").disabled = true;
        schedule(node.id); // its body is drawn from the answers waiting (bodyKey)
      });
      box.append(form);
    }
    wrap.append(box);
  });
  return wrap;
}

/** What the user was charged for the reply, all its calls together (a reply interrupted then
 * continued was paid for in each): from the ledger, as the server sends it (`charged`). */
function usageView(node) {
  const charged = node.charged;
  if (!charged) return null;
  const rows = [
    ["Prompt", charged.prompt_tokens],
    ["Cache hit", charged.cache_hit_tokens],
    ["Completion", charged.completion_tokens],
    ["Reasoning", charged.reasoning_tokens],
  ];
  if (charged.calls > 1) rows.push(["Calls", charged.calls]);
  const title = charged.estimated ? "Usage (estimated)" : "Usage";
  const details = el(
    "details",
    { class: "usage" },
    el("summary", { text: title }),
    el(
      "dl",
      {},
      rows.map(([name, value]) => [el("dt", { text: name }), el("dd", { text: value.toLocaleString() })]),
    ),
  );
  // Re-renders rebuild the article; keep the reader's choice.
  details.open = Boolean(node.usageOpen);
  details.addEventListener("toggle", () => {
    node.usageOpen = details.open;
  });
  return details;
}

function branchNav(node) {
  const ids = siblingsOf(node);
  if (ids.length < 2) return null;
  const index = ids.indexOf(node.id);
  const go = (delta) => {
    const target = ids[index + delta];
    if (!target) return;
    chosen.set(node.parent_id || "", target);
    // The version shown now takes the focus on the same button (its article replaces this one,
    // and the focus would fall to the page): the keyboard goes on through the versions.
    nodes.get(target).focusVersions = delta < 0 ? "previous" : "next";
    structureDirty = true;
    schedule(target);
  };
  const previous = el("button", {
    type: "button",
    class: "icon",
    "aria-label": "Previous version",
    disabled: index === 0,
    text: "‹",
    onclick: () => go(-1),
  });
  const next = el("button", {
    type: "button",
    class: "icon",
    "aria-label": "Next version",
    disabled: index === ids.length - 1,
    text: "›",
    onclick: () => go(1),
  });
  return el(
    "span",
    { class: "branch-nav", role: "group", "aria-label": `Version ${index + 1} of ${ids.length}` },
    previous,
    el("span", { class: "branch-pos", text: `${index + 1} / ${ids.length}`, "aria-hidden": "true" }),
    next,
  );
}

function controlsFor(node) {
  const bar = el("div", { class: "message-controls" });
  const nav = branchNav(node);
  if (nav) bar.append(nav);
  const active = ACTIVE.has(node.status);
  if (node.role === "user" && !node.editing) {
    bar.append(
      el("button", { type: "button", class: "small", text: "Copy", onclick: () => copyAndTell(node.content) }),
    );
    if (!page.blocked && node.author_id === page.user_id) {
      const edit = el("button", {
        type: "button",
        class: "small",
        text: "Edit",
        onclick: () => {
          node.editing = true;
          schedule(node.id);
        },
      });
      bar.append(edit);
      if (node.focusEdit) {
        // The editor was just closed: the focus goes back to the button that opened it.
        node.focusEdit = false;
        requestAnimationFrame(() => edit.focus());
      }
    }
  }
  if (node.role === "assistant") {
    if (!active && node.content) {
      bar.append(
        el("button", { type: "button", class: "small", text: "Copy", onclick: () => copyAndTell(node.content) }),
      );
    }
    // Only a reply with text to go on from: one cut off while it still thought, or while it
    // wrote a tool call, has none (the server refuses it: regenerate it instead).
    const cut =
      Boolean(node.content) &&
      ((node.status === "complete" && node.finish_reason === "length") ||
        node.status === "interrupted" ||
        node.status === "cancelled");
    // Only the last reply of its branch: the server refuses one with messages under it; and
    // only by the model that wrote it (the conversation switched since: regenerate it instead).
    const sameModel = !node.model || node.model === settings.model;
    if (!page.blocked && !active && cut && sameModel && !children.has(node.id)) {
      bar.append(
        el("button", {
          type: "button",
          class: "small",
          text: "Continue",
          // Asked once: a second click before the reply restarts would be refused.
          disabled: Boolean(node.continuing),
          onclick: (event) => {
            event.currentTarget.disabled = true;
            node.continuing = true;
            node.stopping = false; // this run of it may be stopped again
            socket.send({ type: "reply.continue", reply_id: node.id });
          },
        }),
      );
    }
    if (!page.blocked && !active) {
      bar.append(
        el("button", {
          type: "button",
          class: "small",
          text: "Regenerate",
          onclick: (event) => regenerate(node, event.currentTarget),
        }),
      );
    }
    const usage = usageView(node);
    if (usage && !active) bar.append(usage);
  }
  return bar;
}

function editForm(node) {
  const fieldId = `edit-${node.id}`;
  const opening = !drafts.has(fieldId);
  if (opening) drafts.set(fieldId, node.content);
  const area = el("textarea", { id: fieldId, class: "edit-input", rows: "3", "aria-label": "Edit message" });
  area.value = drafts.get(fieldId);
  area.addEventListener("input", () => drafts.set(fieldId, area.value));
  const close = ({ cancelled = false } = {}) => {
    node.editing = false;
    node.focusEdit = cancelled;
    drafts.delete(fieldId);
    schedule(node.id);
  };
  const form = el(
    "form",
    { class: "edit-form" },
    area,
    el(
      "div",
      { class: "edit-actions" },
      el("button", {
        type: "button",
        class: "small",
        text: "Cancel",
        onclick: () => close({ cancelled: true }),
      }),
      el("button", { type: "submit", class: "primary small", text: "Save and send" }),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = area.value;
    if (!content.trim()) return;
    // Unchanged, it would only add a copy of the message as a new version (a new answer to the
    // same message is Regenerate's): the editor closes as Cancel closes it. Not a message left
    // without an answer: sent again, it gets one.
    if (content === node.content && (children.get(node.id) || []).length) {
      close({ cancelled: true });
      return;
    }
    const refusal = tooLong(content);
    if (refusal) {
      composerError.textContent = refusal;
      return;
    }
    close();
    const clientId = crypto.randomUUID();
    focusNewVersion = clientId;
    post({ type: "message.edit", message_id: node.id, content, client_id: clientId });
  });
  area.addEventListener("keydown", (event) => {
    if (sendsMessage(event)) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape") {
      event.stopPropagation();
      close({ cancelled: true });
    }
  });
  if (opening) {
    setTimeout(() => {
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    });
  }
  return form;
}

async function copyAndTell(text) {
  const ok = await copyText(text || "");
  toast(ok ? "Copied." : "Could not copy.", { timeout: 2000 });
}

/** client_id of a reply.regenerate or message.edit whose new version takes the focus, on its
 * versions' buttons: the Regenerate button or the editor that had it goes with the version it
 * belonged to (and the focus would fall to the page). */
let focusNewVersion = null;

function regenerate(node, button) {
  const clientId = crypto.randomUUID();
  if (document.activeElement === button) focusNewVersion = clientId;
  post({ type: "reply.regenerate", reply_id: node.id, client_id: clientId });
}

function updateExportLinks(path) {
  const leaf = path.length ? path[path.length - 1].id : "";
  for (const link of document.querySelectorAll("a[data-export]")) {
    const url = new URL(link.getAttribute("href"), location.href);
    if (leaf) url.searchParams.set("leaf", leaf);
    else url.searchParams.delete("leaf");
    link.setAttribute("href", url.pathname + url.search);
  }
}

// --- composer -----------------------------------------------------------------------------------

function autoGrow() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
}

// What the user has left (day and month), from /usage/summary.json (read again at each reply's
// end, however it ended).
let allowance = null;

async function refreshAllowance() {
  allowance = await readAllowance(page.usage_url);
  updateEstimate();
}

/** The texts a message sent now goes after, as admission counts them: the system prompt and
 * the branch it goes under. */
function textsBefore() {
  const texts = page.system_prompt?.trim() ? [page.system_prompt] : [];
  for (const node of activePath()) {
    if (node.content || node.tool_calls?.length) {
      texts.push((node.content || "") + (node.tool_calls?.length ? JSON.stringify(node.tool_calls) : ""));
    }
  }
  return texts;
}

function updateEstimate() {
  const said = describeSending({
    text: input.value,
    model: (page.models || []).find((m) => m.name === settings.model),
    displayName: settings.modelDisplayName,
    allowance,
    params: settings.params || {},
    padding: page.prompt_padding,
    history: textsBefore,
    reserved: "the conversation so far, your message",
  });
  estimate.textContent = said.line;
  const warning = document.getElementById("usage-warning");
  if (warning) {
    warning.textContent = said.warning;
    warning.hidden = !warning.textContent;
  }
}

/** Block or unblock posting (the reason comes from the server: the model, the account, limits;
 * `until`: when a block for tokens spent or held may end, and the page is read again). */
function applyBlocked(reason, mayPost, until) {
  readAgainWhenUnblocked(until);
  page.may_post = mayPost;
  // An empty conversation says "Send a message to start." only to whoever may send one now.
  list.classList.toggle("is-blocked", Boolean(reason));
  if ((page.blocked || "") === (reason || "")) return;
  page.blocked = reason;
  input.disabled = Boolean(reason);
  input.placeholder = reason || `Message ${settings.modelDisplayName}`;
  if (reason) input.setAttribute("aria-describedby", "composer-blocked");
  else input.removeAttribute("aria-describedby");
  blockedNote.textContent = reason || "";
  blockedNote.hidden = !reason;
  for (const id of nodes.keys()) dirty.add(id); // Edit, Regenerate, tool answers
  schedule();
}

let unblockTimer = null;
/** Read the page again at `until` (ISO 8601: a spent period's reset, or soon while replies
 * still running hold the tokens — one in another tab or conversation tells this page nothing
 * when it ends); no sooner than 10 s from now, at most a day ahead. */
function readAgainWhenUnblocked(until) {
  clearTimeout(unblockTimer);
  const at = Date.parse(until || "");
  if (!at) return;
  const delay = Math.min(Math.max(at - Date.now() + 1000, 10_000), 86_400_000);
  unblockTimer = setTimeout(() => {
    fetchPageData().then(
      (data) => applyBlocked(data.blocked, data.may_post, data.blocked_until),
      () => readAgainWhenUnblocked(new Date(Date.now() + 30_000).toISOString()), // offline
    );
    refreshAllowance();
  }, delay);
}
readAgainWhenUnblocked(page.blocked_until);

const WAIT_FOR_THE_REPLY = "A reply is being written: send this once it ends, or Stop it first.";

function updateComposer() {
  // Stopping is posting: a reader who may not post only gets a permission error from it.
  const reply = activeReplyOnPath();
  if (!reply && composerError.textContent === WAIT_FOR_THE_REPLY) composerError.textContent = "";
  const stoppable = page.may_post && Boolean(reply);
  const focused = document.activeElement;
  stopButton.hidden = !stoppable;
  stopButton.disabled = Boolean(reply?.stopping);
  stopButton.textContent = reply?.stopping ? "Stopping…" : "Stop";
  sendButton.hidden = stoppable;
  sendButton.disabled = Boolean(page.blocked) || sending() || !input.value.trim();
  // Send and Stop take turns in one place, and Send is disabled once it has sent: the button
  // holding the focus (clicked, or reached by Tab) would drop it to the page; the composer takes it.
  const dropped = (button) => focused === button && (button.hidden || button.disabled);
  if ((dropped(sendButton) || dropped(stopButton)) && !input.disabled) input.focus();
}

/** Send a frame that carries a client_id; it stays in the outbox until acknowledged. */
function post(frame, text = null) {
  outbox.set(frame.client_id, { frame, text });
  if (frame.type === "message.send") structureDirty = true;
  keepUnsent();
  if (!catchingUp) socket.sendIfOpen(frame);
  schedule();
}

/** The outbox's entry for `clientId`, now acknowledged (or refused). */
function settle(clientId) {
  const entry = outbox.get(clientId);
  if (!entry) return null;
  outbox.delete(clientId);
  if (entry.frame.type === "message.send") structureDirty = true;
  keepUnsent();
  schedule();
  return entry;
}

function sending() {
  return [...outbox.values()].some((entry) => entry.frame.type === "message.send");
}

/** A message posted at the leaf of its branch follows whatever was posted below that leaf since
 * (what this tab missed while away): else it would fork the conversation. */
function followBranch(frame) {
  if (frame.type !== "message.send" || !frame.parent_id) return;
  let id = frame.parent_id;
  const seen = new Set();
  while (children.has(id) && !seen.has(id)) {
    seen.add(id);
    const ids = children.get(id);
    const next = chosen.get(id);
    id = next && ids.includes(next) ? next : ids[ids.length - 1];
  }
  frame.parent_id = id;
}

function sendOutbox() {
  for (const { frame } of outbox.values()) {
    followBranch(frame);
    socket.sendIfOpen(frame);
  }
}

/** The server's refusal of a message this long, said before sending it (one over a frame's
 * size would get an answer that names no message, and stay "Sending…"). Counted as the server
 * counts: in code points. */
function tooLong(text) {
  const max = page.max_message_chars;
  if (!max || text.length <= max || [...text].length <= max) return "";
  return `The message is longer than ${max} characters.`;
}

// What is typed in the composer is kept for this tab (sessionStorage, as the first message from
// the welcome screen is): a reload, a visit to another page or a restored tab finds it again.
// Per account too: whoever signs in next in this tab does not find it.
const draftKey = `draft:${page.user_id}:${page.conversation_id}`;

function saveDraft() {
  try {
    if (input.value.trim()) sessionStorage.setItem(draftKey, input.value);
    else sessionStorage.removeItem(draftKey);
  } catch {
    /* storage full or refused: the draft is only on the page */
  }
}

function savedDraft() {
  try {
    return sessionStorage.getItem(draftKey) || "";
  } catch {
    return "";
  }
}

// Messages sent and not yet acknowledged ("Sending…", offline say) are kept for the tab too: a
// reload gives back to the composer those the server never got.
const unsentKey = `unsent:${page.user_id}:${page.conversation_id}`;

function keepUnsent() {
  const unsent = [...outbox.values()]
    .filter((entry) => entry.frame.type === "message.send")
    .map((entry) => ({ client_id: entry.frame.client_id, text: entry.text }));
  try {
    if (unsent.length) sessionStorage.setItem(unsentKey, JSON.stringify(unsent));
    else sessionStorage.removeItem(unsentKey);
  } catch {
    /* storage full or refused: they are only on the page */
  }
}

/** The texts of messages a previous load of this page sent that the server does not hold. */
function takeUnsent() {
  let unsent = [];
  try {
    unsent = JSON.parse(sessionStorage.getItem(unsentKey) || "[]");
    sessionStorage.removeItem(unsentKey);
  } catch {
    return [];
  }
  const delivered = new Set(page.messages.map((message) => message.client_id).filter(Boolean));
  return unsent.filter((entry) => !delivered.has(entry.client_id)).map((entry) => entry.text);
}

function sendMessage() {
  if (socket.refusal) {
    composerError.textContent = socket.refusal; // the text stays in the composer
    return;
  }
  if (page.blocked || sending()) return;
  const content = input.value;
  if (!content.trim()) return;
  if (activeReplyOnPath()) {
    // Enter while a reply is written: said, not ignored (Send is hidden behind Stop).
    composerError.textContent = WAIT_FOR_THE_REPLY; // the text stays in the composer
    return;
  }
  const refusal = tooLong(content);
  if (refusal) {
    composerError.textContent = refusal; // the text stays in the composer
    return;
  }
  const parent = lastOnPath();
  const frame = { type: "message.send", client_id: crypto.randomUUID(), content };
  if (parent) frame.parent_id = parent.id;
  followBottom = true; // the message and its reply are what the reader wants to see now
  post(frame, content);
  input.value = "";
  saveDraft();
  composerError.textContent = "";
  autoGrow();
  updateEstimate();
  updateComposer();
}

function stopReply() {
  if (!page.may_post) return;
  const reply = activeReplyOnPath();
  if (!reply) return;
  // Said at once, though offline the stop goes out only once reconnected (the reply runs on
  // until then): the button says it was heard until the reply ends.
  reply.stopping = true;
  socket.send({ type: "reply.cancel", reply_id: reply.id });
  updateComposer();
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  sendMessage();
});
input.addEventListener("keydown", (event) => {
  if (sendsMessage(event)) {
    event.preventDefault();
    sendMessage();
  }
});
input.addEventListener("input", () => {
  saveDraft();
  autoGrow();
  updateEstimate();
  updateComposer();
});
stopButton.addEventListener("click", stopReply);

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy-code]");
  if (!button) return;
  const code = button.closest("pre")?.querySelector("code");
  copyAndTell(code ? code.textContent : "");
});

confidenceToggle?.addEventListener("click", () => {
  showConfidence = !showConfidence;
  confidenceToggle.setAttribute("aria-pressed", String(showConfidence));
  for (const id of nodes.keys()) dirty.add(id);
  schedule();
});

// --- frames ---------------------------------------------------------------------------------------

function requestSync(replyId, afterSeq) {
  syncing.set(replyId, true);
  socket.sendIfOpen({ type: "reply.sync", reply_id: replyId, after_seq: afterSeq });
}

function markTiming(node, frame) {
  let timing = timings.get(node.id);
  if (!timing) {
    timing = {};
    timings.set(node.id, timing);
  }
  if (frame.reasoning && !timing.start) timing.start = performance.now();
  if ((frame.content || frame.tool_calls) && timing.start && !timing.end) {
    timing.end = performance.now();
    node.thinkingOpen = undefined;
  }
}

function applyToolFragments(node, fragments) {
  if (!node.tool_calls) node.tool_calls = [];
  for (const fragment of fragments) {
    let call = node.tool_calls[fragment.index];
    if (!call) {
      call = { id: "", type: "function", function: { name: "", arguments: "" } };
      node.tool_calls[fragment.index] = call;
    }
    if (fragment.id) call.id = fragment.id;
    if (fragment.name) call.function.name = fragment.name;
    call.function.arguments += fragment.arguments || "";
  }
}

/** The page's data as the server would render it now (its messages, why the composer is
 * blocked): the page itself is the one endpoint that has it. */
async function fetchPageData() {
  const started = performance.now(); // what is announced from now on, the read may predate
  const response = await fetch(location.pathname, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const html = markRead(new DOMParser().parseFromString(await response.text(), "text/html"), started);
  const data = html.getElementById("page-data");
  if (!data) throw new Error("no page data (signed out?)");
  // Its sidebar is the list as it is now (first page, unfiltered): app.js takes it; and,
  // whatever the list, whether the account may start a conversation ("New chat").
  if (!location.search) document.dispatchEvent(new CustomEvent("chat:sidebar-read", { detail: html }));
  else document.dispatchEvent(new CustomEvent("chat:new-chat-read", { detail: html }));
  return { ...JSON.parse(data.textContent), readStartedAt: started };
}

/** Add the messages this tab has not seen; resume the replies among them that still run. */
function mergeMessages(frames, listed) {
  let newest = null;
  for (const frame of frames) {
    const known = nodes.get(frame.id);
    if (known) {
      // Continued and finished while we were away: the reply grew past what we hold.
      const grew = known.role === "assistant" && (frame.seq || 0) > (known.seq || 0);
      if (grew && !ACTIVE.has(known.status) && !syncing.get(known.id)) {
        requestSync(known.id, known.seq || 0);
      }
      continue;
    }
    const node = addNode(frame);
    // It reached the server; only its answer did not.
    if (node.client_id && settle(node.client_id)) {
      madeHere.add(node.id);
      chooseBranchTo(node.id);
    }
    if (listed.has(node.id) || (node.role === "assistant" && ACTIVE.has(node.status))) {
      requestSync(node.id, node.seq || 0);
    }
    if (!newest || node.created_at > newest.created_at) newest = node;
  }
  // What this tab is still sending goes after the branch shown (followBranch): not waited for.
  if (newest && !takesViewFromOwn(newest, { waiting: false })) chooseBranchTo(newest.id);
}

/** Whether a message created at `createdAt` (ISO 8601, as in message frames) is newer than
 * every message this tab holds. */
function isNewer(createdAt) {
  if (!createdAt) return false;
  for (const node of nodes.values()) if (node.created_at >= createdAt) return false;
  return true;
}

async function catchUp(listed, readyNumber) {
  catchingUp = true;
  updateComposer();
  let data = null;
  try {
    data = await fetchPageData();
  } catch (error) {
    console.warn("could not re-read the conversation after reconnecting:", error);
  }
  if (readyNumber !== readyCount) return; // a newer connection catches up for itself
  if (data) {
    mergeMessages(data.messages, listed);
    applyBlocked(data.blocked, data.may_post, data.blocked_until);
    // Named (or renamed) while the frame saying so could not reach this tab.
    if (data.title !== page.title) handlers["conversation.updated"]({ title: data.title });
    // Its settings, saved elsewhere while the frame saying so could not reach this tab.
    // Not settings older than those taken since the read began (a frame, a save's answer).
    if (data.settings_version !== page.settings_version && data.readStartedAt >= settingsTakenAt) {
      handlers["conversation.settings"](data);
    }
  }
  catchingUp = false;
  sendOutbox();
  schedule();
}

const handlers = {
  ready(frame) {
    readyCount += 1;
    const listed = resumeReplies(nodes, frame.active_replies, requestSync);
    // A page rendered before the newest message (created between the page and this socket
    // joining) re-reads the page, as a reconnect does.
    if (readyCount > 1 || isNewer(frame.newest_message_at)) catchUp(listed, readyCount);
    else sendOutbox();
  },
  "message.created"(frame) {
    const existed = nodes.has(frame.message.id);
    const node = addNode(frame.message);
    const own = Boolean(frame.message.client_id && settle(frame.message.client_id));
    if (own) madeHere.add(node.id);
    if (frame.message.client_id && frame.message.client_id === focusNewVersion) {
      focusNewVersion = null;
      node.focusVersions = "previous";
    }
    if ((!existed || !frame.duplicate) && (own || !takesViewFromOwn(node))) chooseBranchTo(node.id);
    schedule(node.id);
  },
  "reply.started"(frame) {
    const node = nodes.get(frame.reply_id);
    // A Stop pressed for an earlier run of it (a continuation runs the same reply again).
    if (node) node.continuing = node.stopping = false;
    if (!node || !applyStarted(node, frame, syncing, requestSync)) return;
    schedule(node.id);
  },
  "reply.delta"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applyDelta(node, frame, syncing, requestSync)) return;
    markTiming(node, frame);
    if (frame.tool_calls) applyToolFragments(node, frame.tool_calls);
    schedule(node.id);
  },
  "reply.snapshot"(frame) {
    const node = nodes.get(frame.reply_id);
    if (!node || !applySnapshot(node, frame, syncing, requestSync)) return;
    if (!ACTIVE.has(node.status)) node.stopping = false; // ended: a later run may be stopped
    schedule(node.id);
  },
  "reply.completed"(frame) {
    refreshAllowance();
    const node = nodes.get(frame.reply_id);
    if (!node || !applyCompleted(node, frame, syncing)) return;
    node.stopping = false;
    const timing = timings.get(node.id);
    if (timing && timing.start && !timing.end) timing.end = performance.now();
    node.thinkingOpen = undefined;
    schedule(node.id);
  },
  "reply.failed"(frame) {
    refreshAllowance(); // stopped, cut off or failed: charged what it used
    const node = nodes.get(frame.reply_id);
    if (!node || !applyFailed(node, frame, syncing)) return;
    node.stopping = false; // stopped (or ended otherwise): a later run of it may be stopped
    schedule(node.id);
  },
  "conversation.updated"(frame) {
    if (!frame.title) return;
    page.title = frame.title;
    for (const heading of document.querySelectorAll("[data-conversation-title]")) {
      heading.textContent = frame.title;
    }
    const link = document.querySelector(`.conversation-list a[data-id="${page.conversation_id}"]`);
    if (link) {
      link.textContent = frame.title;
      link.closest("li").dataset.title = frame.title;
    }
    document.title = `${frame.title} — DeepSeek team chat`;
  },
  "conversation.settings"(frame) {
    // Saved in another tab (or this one, or by another worker): an open dialog shows them.
    applySettings(frame);
    settingsChangedElsewhere(frame);
  },
  "conversation.listed"(frame) {
    // One of this account's conversations, new or renamed elsewhere: the sidebar is app.js's.
    document.dispatchEvent(new CustomEvent("chat:conversation-listed", { detail: frame.conversation }));
  },
  "conversation.deleted"(frame) {
    // Some of this account's conversations deleted elsewhere (this one, maybe: showDeleted).
    document.dispatchEvent(new CustomEvent("chat:conversation-deleted", { detail: frame.ids }));
  },
  "shared.listed"(frame) {
    // A conversation another shares with this account, new to it or renamed: app.js lists it.
    document.dispatchEvent(new CustomEvent("chat:shared-listed", { detail: frame.conversation }));
  },
  "shared.unlisted"(frame) {
    // No longer shared with this account (this one, maybe: its socket is closed, 4403/4404).
    document.dispatchEvent(new CustomEvent("chat:shared-unlisted", { detail: frame.ids }));
  },
  "access.changed"() {
    // Who may see or post here changed and this tab still sees it: made a collaborator (it
    // may post now), or no longer one. The composer follows, as the server renders it now.
    fetchPageData().then(
      (data) => applyBlocked(data.blocked, data.may_post, data.blocked_until),
      () => {}, // offline: the next reconnect reads the page again (catchUp)
    );
  },
  "account.updated"() {
    // Suspended or unsuspended in the admin: the composer blocked or not, as the server would
    // render it now, and what is left (a suspended account is offered none).
    fetchPageData().then(
      (data) => applyBlocked(data.blocked, data.may_post, data.blocked_until),
      () => {}, // offline: the next reconnect reads the page again (catchUp)
    );
    refreshAllowance();
  },
  error(frame) {
    // A reply the server could not catch up for this page just now: asked for again shortly.
    if (syncAgainLater(frame, nodes, syncing, requestSync)) return;
    const message = frame.message || "Something went wrong.";
    if (frame.request_type === "reply.cancel") {
      // Refused (nothing left to stop, or no longer allowed): Stop may be pressed again.
      for (const node of nodes.values()) node.stopping = false;
    }
    if (frame.request_type === "reply.continue") {
      // A refused Continue may be asked again (the error names its reply, or all are freed).
      for (const node of nodes.values()) {
        if (node.continuing && (!frame.reply_id || frame.reply_id === node.id)) {
          node.continuing = false;
          schedule(node.id);
        }
      }
    }
    const entry = frame.client_id ? settle(frame.client_id) : null;
    if (entry) {
      // A refused tool result: its form (button disabled on submit) is drawn again, enabled.
      if (entry.frame.type === "tool.answer") schedule(entry.frame.reply_id);
      // A refused edit: its editor opens again with the edited text.
      const edited = entry.frame.type === "message.edit" ? nodes.get(entry.frame.message_id) : null;
      if (edited) {
        edited.editing = true;
        drafts.set(`edit-${edited.id}`, entry.frame.content);
        schedule(edited.id);
      }
      const text = entry.text;
      if (text !== null && !input.value) {
        input.value = text;
        saveDraft();
        autoGrow();
        updateEstimate();
      }
    }
    composerError.textContent = message;
    updateComposer();
  },
};

const onFrame = announcingReplies(
  nodes,
  resyncingQuietReplies(nodes, syncing, requestSync, (frame) => handlers[frame.type]?.(frame)),
);

function onStatus(status, detail) {
  statusBadge.textContent = detail || STATUS_TEXT[status] || status;
  statusBadge.dataset.status = status;
  if (socket.refusal && outbox.size) returnOutbox(socket.refusal);
  if (socket.refusalCode === 4404) showDeleted(); // deleted (a teammate's page learns it so)
  // A teammate's page, the conversation made private or taken from the team.
  else if (socket.refusalCode === 4403) showEnded("This conversation is no longer shared with you.");
}

/** The conversation was deleted (in another tab, by the admin). */
function showDeleted() {
  if (page.ended) return;
  showEnded("This conversation was deleted.");
  // Nor is it listed among the account's own any more: its socket's close (4404) may be all
  // this tab hears of the delete — the account's announcement travels apart and may come after
  // the close, or the tab was offline — and the account's socket opened now joins too late.
  document.dispatchEvent(new CustomEvent("chat:conversation-deleted", { detail: [page.conversation_id] }));
}

/** This page may no longer follow the conversation (deleted, or no longer shared with this
 * account): what it shows stays to be read, but nothing more can be sent or changed, a reply it
 * was following says it is not followed further (it may go on for those who still see it), and
 * a link leads back. The account's socket then keeps the sidebar current (this page's socket is
 * closed), and brings the page back if the conversation is listed again (a delete undone, shared
 * again). */
function showEnded(reason) {
  if (page.ended) return;
  page.ended = true;
  for (const node of nodes.values()) {
    if (!ACTIVE.has(node.status)) continue;
    node.status = "unfollowed";
    schedule(node.id);
  }
  applyBlocked(reason, false);
  // Settings, Share, Export and "Continue in my chats" act on a conversation this page sees.
  for (const tool of root.querySelectorAll(".conversation-tools > :not(#confidence-toggle)")) tool.hidden = true;
  document.getElementById("settings-dialog")?.close();
  root.querySelector(".conversation-head").after(
    el(
      "p",
      { class: "notice deleted-notice", role: "status" },
      `${reason} `,
      el("a", { href: "/", text: "Back to your conversations" }),
    ),
  );
  // Nor is it listed as shared with this account any more (its socket may have closed before
  // the frame saying so reached it).
  document.dispatchEvent(new CustomEvent("chat:shared-unlisted", { detail: [page.conversation_id] }));
  followAccount();
}

document.addEventListener("chat:conversation-deleted", (event) => {
  if (Array.isArray(event.detail) && event.detail.includes(page.conversation_id)) showDeleted();
});
for (const listed of ["chat:conversation-listed", "chat:shared-listed"]) {
  document.addEventListener(listed, (event) => {
    if (page.ended && event.detail?.id === page.conversation_id) location.reload();
  });
}

/** Refused for good (signed out, no longer shared, deleted): what was waiting to be sent never
 * will be; a message's text goes back to the composer, with the reason. */
function returnOutbox(reason) {
  const texts = [...outbox.values()].map((entry) => entry.text).filter(Boolean);
  outbox.clear();
  keepUnsent();
  if (texts.length) {
    input.value = [...texts, input.value].filter((text) => text.trim()).join("\n\n");
    saveDraft();
    autoGrow();
  }
  composerError.textContent = reason;
  structureDirty = true;
  schedule();
  updateComposer();
}

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new ReconnectingSocket(`${scheme}//${location.host}/ws/conversations/${page.conversation_id}/`, {
  onFrame,
  onOpen: () => {},
  onStatus,
});
// Exposed for debugging and the browser tests (e.g. to simulate a dropped connection).
window.chatSocket = socket;
socket.connect();

// --- page-level actions used by the keyboard shortcuts ----------------------------------------

document.addEventListener("chat:stop", stopReply);
document.addEventListener("chat:copy-last", () => {
  const last = [...activePath()].reverse().find((node) => node.role === "assistant");
  if (last) copyAndTell(last.content);
});

// "Continue in my chats" copies the branch on screen (the server's default is the newest).
for (const form of document.querySelectorAll("form[data-fork]")) {
  form.addEventListener("submit", () => {
    const leaf = lastOnPath();
    form.elements.message_id.value = leaf ? leaf.id : "";
  });
}

/** The settings as saved (by this tab, or announced from another): the page's copy, the model
 * named in the header and the composer, what the replies show of them, what may be sent. */
/** When the page last took the conversation's settings (performance.now()): settings read or
 * answered from before that may be older than them (a version is a digest: it has no order). */
let settingsTakenAt = -Infinity;

/** The settings as saved; `since`: when what says so was asked for (a save's answer: when it was
 * sent), to leave it if newer ones were taken meanwhile (a frame of a later save elsewhere). */
function applySettings(saved, since = performance.now()) {
  if (saved.settings_version === page.settings_version || since < settingsTakenAt) return;
  settingsTakenAt = performance.now();
  settings = {
    model: saved.model,
    modelDisplayName: saved.model_display_name,
    params: saved.params,
  };
  page.params = saved.params;
  page.model = saved.model;
  page.system_prompt = saved.system_prompt;
  page.settings_version = saved.settings_version;
  for (const node of document.querySelectorAll("[data-model-name]")) {
    node.textContent = saved.model_display_name;
  }
  if (!page.blocked) input.placeholder = `Message ${saved.model_display_name}`;
  updateEstimate();
  // Another model may be one this user may use ("pick another in Settings").
  fetchPageData().then(
    (data) => applyBlocked(data.blocked, data.may_post, data.blocked_until),
    () => {},
  );
}

const settingsChangedElsewhere = initSettings(page, applySettings);

// A first message typed on the "new chat" screen travels here through sessionStorage.
const pendingKey = `pending-message:${page.conversation_id}`;
const firstMessage = sessionStorage.getItem(pendingKey);
if (firstMessage) {
  sessionStorage.removeItem(pendingKey);
  input.value = firstMessage;
  sendMessage();
  saveDraft(); // refused (too long, say), it stays in the composer
} else {
  input.value = [...takeUnsent(), savedDraft()].filter((text) => text.trim()).join("\n\n");
  if (input.value) saveDraft();
}

autoGrow();
updateEstimate();
refreshAllowance();
schedule();
if (!page.blocked) input.focus();
