// How a reply's frames change what a page holds of it (README "Websocket protocol"): the one set
// of rules for the conversation page and a share link's page. Each function changes `node` and
// says whether it did; the page then redraws it (and does anything else of its own).
//
// What a screen reader hears of a reply is said here too (replyAnnouncement): once when it
// starts and once when it ends, never each delta.
//
// `syncing`: reply id → true while a reply.snapshot is awaited (deltas and ends wait for it).
// `requestSync(replyId, afterSeq)`: asks for one (a gap in the sequence, a stale snapshot).

import { markdownText } from "./markdown.js";
import { announce } from "./util.js";

/** The statuses of a reply still being written. */
export const ACTIVE = new Set(["pending", "streaming"]);

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
  const cut = node.finish_reason === "length" ? " (cut off at the token limit)" : "";
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

export function applyStarted(node, frame, syncing) {
  node.status = "streaming";
  if (!syncing.get(node.id)) node.seq = frame.seq;
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
  if (frame.code) node.error_code = frame.code;
  if (frame.message) node.error_message = frame.message;
  return true;
}

export function applyCompleted(node, frame, syncing) {
  if (syncing.get(node.id)) return false; // the snapshot will carry the end state
  node.status = frame.status || "complete";
  node.finish_reason = frame.finish_reason || "";
  node.usage = frame.usage || null;
  node.seq = Math.max(node.seq || 0, frame.seq || 0);
  return true;
}

export function applyFailed(node, frame, syncing) {
  if (syncing.get(node.id)) return false;
  node.status = frame.status;
  node.error_code = frame.code || "";
  node.error_message = frame.message || "";
  if (frame.seq) node.seq = Math.max(node.seq || 0, frame.seq);
  return true;
}
