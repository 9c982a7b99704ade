// The account's socket (ws/account/, README "The account's socket"), for a page open on no
// conversation: the welcome page, or a conversation page whose conversation was deleted. Such a
// page has no conversation socket, so without this one its list of conversations stayed as it
// was loaded while the account's other tabs made, renamed and deleted conversations.
//
// It hands on what it hears as the conversation page's socket does (app.js keeps the sidebar,
// the team page and search current): chat:conversation-listed, chat:conversation-deleted, and
// of the conversations others share with the account chat:shared-listed, chat:shared-unlisted;
// of the account itself, suspended or unsuspended in the admin, chat:account-updated.
// After a reconnect, announcements may have been missed meanwhile: the lists are read again
// (chat:sidebar-read). Refused for good (its session signs the account in no more: signed out
// here or elsewhere, a new password set elsewhere, the account deactivated), the page says so at
// once, as the conversation page does, rather than look signed in until something is clicked.
import { ReconnectingSocket } from "./socket.js";
import { markRead } from "./util.js";

let socket = null;

/** Open the account's socket, once per page; later calls return the same one. */
export function followAccount() {
  if (socket) return socket;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let readies = 0;
  socket = new ReconnectingSocket(`${scheme}//${location.host}/ws/account/`, {
    onFrame(frame) {
      if (frame.type === "conversation.listed") {
        document.dispatchEvent(new CustomEvent("chat:conversation-listed", { detail: frame.conversation }));
      } else if (frame.type === "conversation.deleted") {
        document.dispatchEvent(new CustomEvent("chat:conversation-deleted", { detail: frame.ids }));
      } else if (frame.type === "shared.listed") {
        document.dispatchEvent(new CustomEvent("chat:shared-listed", { detail: frame.conversation }));
      } else if (frame.type === "shared.unlisted") {
        document.dispatchEvent(new CustomEvent("chat:shared-unlisted", { detail: frame.ids }));
      } else if (frame.type === "account.updated") {
        document.dispatchEvent(new CustomEvent("chat:account-updated", { detail: frame }));
      }
    },
    onOpen() {
      readies += 1;
      if (readies > 1) readPageAgain();
    },
    onStatus: sayRefused, // short of a refusal the page says nothing: its lists only go stale
  });
  // Exposed for debugging and the browser tests (e.g. to simulate a dropped connection).
  window.accountSocket = socket;
  socket.connect();
  return socket;
}

/** The socket's refusal (socket.js's words for its close code: "Signed out — sign in again to
 * continue.") in the top bar's badge, where the conversation page shows it; hidden until then. */
function sayRefused() {
  const badge = document.getElementById("connection-status");
  if (!socket.refusal || !badge) return;
  badge.textContent = socket.refusal;
  badge.dataset.status = "offline";
  badge.hidden = false;
}

let reading = null;
let readAgain = false; // asked while the page was being read: read it once more after

/** The page as the server renders it now, handed on as chat:sidebar-read (app.js takes its
 * lists, and on the welcome page its notice and "Start chat"): this page itself for a page of
 * lists (the team page, search: data-lists), else the welcome page, with this page's search
 * and page. Asked while a read is under way, it reads once more after it: what changed
 * meanwhile may not be in what that read finds. */
export function readPageAgain() {
  if (reading) {
    readAgain = true;
    return;
  }
  reading = readPage().finally(() => {
    reading = null;
    if (readAgain) {
      readAgain = false;
      readPageAgain();
    }
  });
}

async function readPage() {
  let html;
  const source = document.querySelector("[data-lists]") ? location.pathname : "/";
  const started = performance.now(); // what is announced from now on, the read may predate
  try {
    const response = await fetch(`${source}${location.search}`, { credentials: "same-origin" });
    if (!response.ok) return;
    html = await response.text();
  } catch {
    return; // offline again: the next reconnect tries again
  }
  const read = markRead(new DOMParser().parseFromString(html, "text/html"), started);
  document.dispatchEvent(new CustomEvent("chat:sidebar-read", { detail: read }));
}
