// Every signed-in page: theme toggle, the account's pages (a menu in a narrow window), sidebar
// (search, rename, delete with undo, phone drawer, kept current with the account's other tabs),
// new chat from the welcome screen, import, copy buttons for a field's value (a new API key), and
// the keyboard shortcuts.
import { followAccount, readPageAgain } from "./account.js";
import { describeSending, readAllowance } from "./estimate.js";
import { copyText, el, enterSends, postJSON, readStartedAt, sendsMessage, toast } from "./util.js";

// --- theme ---------------------------------------------------------------------------------------

const themeButton = document.getElementById("theme-toggle");
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

function effectiveTheme() {
  return document.documentElement.dataset.theme || (darkQuery.matches ? "dark" : "light");
}

function labelThemeButton() {
  if (!themeButton) return;
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  themeButton.setAttribute("aria-label", `Switch to ${next} theme`);
  themeButton.textContent = next === "dark" ? "☾" : "☀";
  themeButton.title = `Switch to ${next} theme`;
}

themeButton?.addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem("theme", next);
  } catch {
    /* not persisted; still applied */
  }
  labelThemeButton();
});
darkQuery.addEventListener("change", labelThemeButton);
labelThemeButton();

// --- account pages (a menu in a narrow window) ---------------------------------------------------

const accountMenu = document.querySelector(".usermenu");
const accountButton = document.getElementById("account-toggle");
const accountPages = document.getElementById("account-pages");
const inAccountMenu = (node) => accountButton?.contains(node) || accountPages?.contains(node);

function setAccountMenu(open, { focusButton = false } = {}) {
  accountMenu?.classList.toggle("is-open", open);
  accountButton?.setAttribute("aria-expanded", String(open));
  if (focusButton) accountButton?.focus();
}

accountButton?.addEventListener("click", () => {
  const open = !accountMenu.classList.contains("is-open");
  setAccountMenu(open);
  if (open) accountPages.querySelector("a")?.focus();
});
document.addEventListener("click", (event) => {
  if (accountMenu?.classList.contains("is-open") && !inAccountMenu(event.target)) setAccountMenu(false);
});
accountMenu?.addEventListener("focusout", (event) => {
  // Tabbing out of the menu closes it.
  if (event.relatedTarget && !inAccountMenu(event.relatedTarget)) setAccountMenu(false);
});

// --- what the page's socket announced, for the page read again -----------------------------------
// The lists (the sidebar's, the team page's rows, search's hits) follow the announcements the
// page's socket hears, and become a read of the page (chat:sidebar-read) when some may have been
// missed (a reconnect, account.updated, the tab shown again). Such a read lists what the server
// rendered when it answered: an announcement heard while it was on its way may be of a change
// made after that, and taking the read's lists undid the change here for good (nothing tells the
// tab again) — a conversation deleted elsewhere listed again, a rename lost. So each announcement
// applied is kept a minute, with when it was heard; once a read's lists are taken, those heard
// since the read began are applied again, in order (applying one twice changes nothing).

const HEARD_FOR_MS = 60_000;
const heard = []; // {at: performance.now(), apply, detail}, oldest first

/** Apply the announcements `type` (a chat:… event) with `apply(detail)`, keeping each a while. */
function onAnnouncement(type, apply) {
  document.addEventListener(type, (event) => {
    const at = performance.now();
    while (heard.length && heard[0].at < at - HEARD_FOR_MS) heard.shift();
    heard.push({ at, apply, detail: event.detail });
    apply(event.detail);
  });
}

/** Whether a read begun at `started` (performance.now()) may be brought up to date: begun within
 * the time announcements are kept. (A read takes far less; one that did not is left.) */
function mendable(started) {
  return started >= performance.now() - HEARD_FOR_MS;
}

/** Apply again, in order, the announcements heard since `started` that `applies` handle. */
function applyHeardSince(started, ...applies) {
  for (const { at, apply, detail } of heard) if (at >= started && applies.includes(apply)) apply(detail);
}

// --- sidebar ----------------------------------------------------------------------------------------

const sidebar = document.getElementById("sidebar");
const drawerButton = document.getElementById("sidebar-toggle");

function drawerIsOpen() {
  return document.body.classList.contains("drawer-open");
}

/** Open or close the sidebar as a drawer (a narrow window). Opened, it takes the focus (on the
 * conversation shown, else its first control); closed with the focus in it, the focus goes back
 * to its button. (Closed, it is hidden: its controls are out of the Tab order.) */
function setDrawer(open) {
  document.body.classList.toggle("drawer-open", open);
  drawerButton?.setAttribute("aria-expanded", String(open));
  if (open) {
    const first = sidebar.querySelector("a[aria-current=page]") || sidebar.querySelector("select, button, input, a");
    first?.focus();
  } else if (sidebar.contains(document.activeElement)) {
    drawerButton?.focus();
  }
}

drawerButton?.addEventListener("click", () => setDrawer(!drawerIsOpen()));
document.getElementById("drawer-scrim")?.addEventListener("click", () => setDrawer(false));

const search = document.getElementById("conversation-search");
const noMatch = document.getElementById("search-no-match");
search?.addEventListener("input", () => {
  const needle = search.value.trim().toLowerCase();
  let shown = 0;
  for (const item of document.querySelectorAll(".conversation-list li[data-title]")) {
    item.hidden = Boolean(needle) && !item.dataset.title.toLowerCase().includes(needle);
    if (!item.hidden) shown += 1;
  }
  // The list holds one page of titles: none of them matching says nothing of the others.
  if (noMatch) {
    noMatch.hidden = !needle || shown > 0;
    // Enter filters the titles of all of them (the server's list); the words said in them are
    // the search page's to find.
    noMatch.replaceChildren(
      ...(noMatch.hidden
        ? []
        : [
            "No title listed here matches. Press Enter to search the titles of all your conversations, or ",
            el("a", { href: `/search/?q=${encodeURIComponent(search.value.trim())}`, text: "search their messages" }),
            ".",
          ]),
    );
  }
});

const currentId = document.querySelector(".conversation")?.dataset.conversationId;

function startRename(item) {
  const link = item.querySelector("a.conversation-link");
  const id = item.dataset.id;
  const field = el("input", { type: "text", class: "rename-input", "aria-label": "New title", maxlength: "200" });
  field.value = link.textContent.trim();
  link.hidden = true;
  item.querySelector(".item-actions").hidden = true;
  link.after(field);
  field.focus();
  field.select();
  let finished = false;
  const finish = async (save) => {
    if (finished) return;
    finished = true;
    const title = field.value.trim();
    // Ended from the field (Enter, Escape), the focus goes back to the conversation's link
    // rather than falling to the page with the field; left by a click or Tab, it is where that
    // took it.
    const hadFocus = document.activeElement === field;
    link.hidden = false;
    item.querySelector(".item-actions").hidden = false;
    if (hadFocus) link.focus();
    field.remove();
    if (!save || !title || title === link.textContent.trim()) return;
    const result = await postJSON(`/c/${id}/rename/`, { title });
    if (!result.ok) {
      toast(result.data?.error?.message || "Could not rename.");
      return;
    }
    retitle(item, result.data.title);
    if (id === currentId) {
      for (const heading of document.querySelectorAll("[data-conversation-title]")) {
        heading.textContent = result.data.title;
      }
      document.title = `${result.data.title} — DeepSeek team chat`;
    }
  };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      finish(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish(false);
    }
  });
  field.addEventListener("blur", () => finish(true));
}

/** The notice of the last delete, while it shows: Ctrl+Z (⌘Z) outside a text field presses its
 * Undo, so the keyboard need not travel to the end of the page to reach it in time. */
let undoToast = null;

/** Conversations this tab deleted whose Undo may still bring them back: id → {item, placeholder}
 * (the entry, kept, and where it stood). Listed again (undone here, or restored elsewhere), the
 * entry goes back to its place, whichever of the undo's answer and the announcement comes first. */
const undoable = new Map();

function putBack(id) {
  const held = undoable.get(id);
  if (!held) return null;
  undoable.delete(id);
  if (held.placeholder.isConnected) held.placeholder.replaceWith(held.item);
  return held.item.isConnected ? held.item : null;
}

async function deleteConversation(item) {
  const id = item.dataset.id;
  // Its own announcement (conversation.deleted) may come before the answer: this entry is left
  // to this function.
  item.dataset.deleting = "true";
  const result = await postJSON(`/c/${id}/delete/`, {});
  delete item.dataset.deleting;
  if (!result.ok) {
    toast(result.data?.error?.message || "Could not delete.");
    return;
  }
  // The focus was on its Delete button: it goes to the conversation listed next (or before, or
  // the search box), not to the page, so the keyboard goes on from where it was.
  const hadFocus = item.contains(document.activeElement);
  const neighbour = [item.nextElementSibling, item.previousElementSibling].find((li) => li?.matches("li[data-id]"));
  const placeholder = document.createComment("deleted");
  item.replaceWith(placeholder);
  undoable.set(id, { item, placeholder });
  if (hadFocus) (neighbour?.querySelector("a") || search)?.focus();
  undoToast = toast(`Deleted “${item.dataset.title}”.`, {
    timeout: 6000,
    action: {
      label: "Undo",
      shortcut: "Ctrl+Z",
      run: async () => {
        const restored = await postJSON(`/c/${id}/restore/`, {});
        if (!restored.ok) toast("Could not undo.");
        // The open conversation's socket was closed for good by the delete: open it anew.
        else if (id === currentId) location.reload();
        else {
          // The Undo button that had the focus is gone.
          (putBack(id) || listedItem(id))?.querySelector("a")?.focus();
        }
      },
    },
    onExpire: () => {
      undoable.delete(id);
      if (id === currentId) location.assign("/");
    },
  });
}

/** The sidebar's entry of the account's conversation `id` (as templates/chat_layout.html writes
 * it: marked as the page's when it is the conversation shown, as a chat just started is). */
function sidebarItem(id, title) {
  const item = el(
    "li",
    { "data-id": id },
    el("a", {
      class: "conversation-link",
      "data-id": id,
      href: `/c/${encodeURIComponent(id)}/`,
      "aria-current": id === currentId ? "page" : null,
    }),
    el(
      "span",
      { class: "item-actions" },
      el("button", { type: "button", class: "icon small", "data-action": "rename", title: "Rename", text: "✎" }),
      el("button", { type: "button", class: "icon small", "data-action": "delete", title: "Delete", text: "✕" }),
    ),
  );
  retitle(item, title);
  return item;
}

function retitle(item, title) {
  item.dataset.title = title;
  item.querySelector("a.conversation-link").textContent = title;
  item.querySelector("[data-action=rename]")?.setAttribute("aria-label", `Rename ${title}`);
  item.querySelector("[data-action=delete]")?.setAttribute("aria-label", `Delete ${title}`);
}

/** The sidebar's list of the account's own conversations (not those shared with it). */
function ownList() {
  return sidebar?.querySelector(".conversation-list:not(.shared-list)") || null;
}

function listedItem(id) {
  return [...(ownList()?.querySelectorAll("li[data-id]") || [])].find((item) => item.dataset.id === id) || null;
}

// A conversation of this account made, renamed or restored elsewhere (another tab, a script
// through the API with "save to history", a fork, an import, an undone delete, the admin), as the
// page's socket hears it (conversation.listed): listed here without a reload. A new one goes
// first, on the list's first page unfiltered (elsewhere the list holds other conversations than
// the newest); one this tab deleted goes back to its place.
function listConversation(conversation) {
  const { id, title } = conversation || {};
  const list = ownList();
  if (!list || typeof id !== "string" || typeof title !== "string") return;
  const listed = putBack(id) || listedItem(id);
  if (listed) {
    retitle(listed, title);
    return;
  }
  const query = new URLSearchParams(location.search);
  if (query.get("q") || (query.get("page") || "1") !== "1") return;
  list.querySelector("li.empty")?.remove();
  list.prepend(sidebarItem(id, title));
  if (search?.value) search.dispatchEvent(new Event("input")); // the title filter typed applies
}
onAnnouncement("chat:conversation-listed", listConversation);

// Conversations of this account deleted elsewhere (another tab, the admin): unlisted here, the
// keyboard's place kept as after a delete made here. (The conversation page, if it shows one of
// them, says so itself: conversation.js.)
function unlistConversations(deleted) {
  const ids = new Set(Array.isArray(deleted) ? deleted : []);
  const list = ownList();
  if (!list) return;
  for (const item of list.querySelectorAll("li[data-id]")) {
    if (!ids.has(item.dataset.id) || item.dataset.deleting) continue;
    if (item.contains(document.activeElement)) {
      const neighbour = [item.nextElementSibling, item.previousElementSibling].find((li) => li?.matches("li[data-id]"));
      (neighbour?.querySelector("a") || search)?.focus();
    }
    item.remove();
  }
  if (!list.querySelector("li[data-id], li.empty") && !undoable.size) {
    list.append(el("li", { class: "empty", text: new URLSearchParams(location.search).get("q") ? "No matches." : "No conversations yet." }));
  }
  if (search?.value) search.dispatchEvent(new Event("input")); // "no title here matches", maybe
}
onAnnouncement("chat:conversation-deleted", unlistConversations);

// The list as the server renders it now (`detail`: a page read again after a reconnect, when
// announcements may have been missed): it replaces this one, unless a rename or a delete is
// under way in it (their own frames and answers carry on), then what was announced since the
// read began is applied again (the read may predate it). A delete's Undo pending leaves the list
// alone: its entry, kept aside, goes back to its place if undone.
document.addEventListener("chat:sidebar-read", (event) => {
  const list = ownList();
  const read = event.detail?.querySelector?.(".sidebar .conversation-list:not(.shared-list)");
  const started = readStartedAt(event.detail);
  if (!list || !read || !mendable(started) || list.querySelector(".rename-input, li[data-deleting]") || undoable.size) {
    return;
  }
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("li[data-id]")?.dataset.id : null;
  list.replaceChildren(...[...read.children].map((item) => document.importNode(item, true)));
  if (focused) listedItem(focused)?.querySelector("a")?.focus();
  // After the focus is back: a delete applied again moves it on as a delete heard does.
  applyHeardSince(started, listConversation, unlistConversations);
  if (search?.value) search.dispatchEvent(new Event("input"));
});

// "New chat" as the server renders it now (disabled, saying why, while the account is
// suspended or has no model; enabled again once it may start a conversation): from the page
// read again after account.updated or a reconnect.
function takeNewChat(event) {
  const form = document.getElementById("new-chat-form");
  const read = event.detail?.querySelector?.("#new-chat-form");
  const readReason = event.detail?.querySelector?.("#new-chat-blocked");
  const reason = document.getElementById("new-chat-blocked");
  if (!form || !read || !readReason || !reason) return;
  for (const selector of ["select", "button"]) {
    const mine = form.querySelector(selector);
    const theirs = read.querySelector(selector);
    mine.disabled = theirs.disabled;
    if (theirs.title) mine.title = theirs.title;
    else mine.removeAttribute("title");
  }
  reason.textContent = readReason.textContent;
  reason.hidden = readReason.hidden;
}
document.addEventListener("chat:sidebar-read", takeNewChat);
document.addEventListener("chat:new-chat-read", takeNewChat);

// --- what others share with this account ---------------------------------------------------------
// Every list of it on the page follows it (the sidebar's "Shared with you", the team page,
// search's hits: entries marked data-shared-id), as the page's socket hears it: shared.listed
// (shared with this account, or renamed) and shared.unlisted (made private, given to another
// team, deleted). The server tells only accounts the conversation is shared with.

const sharedHeading = sidebar?.querySelector(".shared-heading");
const sharedList = sidebar?.querySelector(".shared-list");
const teamTable = document.querySelector("table.team-list tbody");

function sharedEntries(id) {
  return [...document.querySelectorAll("[data-shared-id]")].filter((entry) => entry.dataset.sharedId === id);
}

/** The team page as the server renders it now (its filter and page): its rows replace these,
 * then what was announced since the read began is applied again (the read may predate it, as a
 * page read again may: see onAnnouncement). Asked while a read is under way (a conversation new
 * to the page shared meanwhile, which that read may not list), it reads once more after it. */
let teamReading = null;
let teamReadAgain = false;
async function readTeamPage() {
  if (teamReading) {
    teamReadAgain = true;
    return;
  }
  const started = performance.now();
  teamReading = fetch(location.pathname + location.search, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : null))
    .then((html) => {
      const read = html && new DOMParser().parseFromString(html, "text/html").querySelector("table.team-list tbody");
      if (!read || !mendable(started)) return;
      teamTable.replaceChildren(...[...read.children].map((row) => document.importNode(row, true)));
      applyHeardSince(started, listShared, unlistShared);
    })
    .catch(() => {}) // offline: the next reconnect reads it again
    .finally(() => {
      teamReading = null;
      if (teamReadAgain) {
        teamReadAgain = false;
        readTeamPage();
      }
    });
}

function listShared(conversation) {
  const { id, title } = conversation || {};
  if (typeof id !== "string" || typeof title !== "string") return;
  const entries = sharedEntries(id);
  for (const entry of entries) {
    if (entry.dataset.title !== undefined) entry.dataset.title = title;
    const link = entry.querySelector("a");
    if (link) link.textContent = title;
  }
  if (teamTable && !entries.length) readTeamPage(); // placed by the server's order and filter
  if (sharedList && !entries.length && !new URLSearchParams(location.search).get("q")) {
    const item = el(
      "li",
      { "data-title": title, "data-shared-id": id },
      el("a", { class: "conversation-link", "data-id": id, href: `/c/${encodeURIComponent(id)}/`, text: title }),
    );
    sharedList.prepend(item);
    sharedList.hidden = sharedHeading.hidden = false;
    if (search?.value) search.dispatchEvent(new Event("input"));
  }
}
onAnnouncement("chat:shared-listed", listShared);

function unlistShared(unlisted) {
  const ids = new Set(Array.isArray(unlisted) ? unlisted : []);
  for (const entry of document.querySelectorAll("[data-shared-id]")) {
    if (!ids.has(entry.dataset.sharedId)) continue;
    if (entry.contains(document.activeElement)) search?.focus();
    entry.remove();
  }
  if (sharedList && !sharedList.querySelector("li")) sharedList.hidden = sharedHeading.hidden = true;
  if (teamTable && !teamTable.querySelector("tr")) readTeamPage(); // "Nothing shared", or the next page's
}
onAnnouncement("chat:shared-unlisted", unlistShared);

// The lists as the server renders them now (after a reconnect, when announcements may have been
// missed): those of what is shared too — the sidebar's, the team page's rows, search's hits;
// then what was announced since the read began, applied again (the read may predate it).
document.addEventListener("chat:sidebar-read", (event) => {
  const started = readStartedAt(event.detail);
  if (!mendable(started)) return;
  const take = (mine, selector) => {
    const read = event.detail?.querySelector?.(selector);
    if (mine && read) mine.replaceChildren(...[...read.children].map((item) => document.importNode(item, true)));
  };
  take(teamTable, "table.team-list tbody");
  take(document.querySelector(".search-hits"), ".search-hits");
  if (sharedList) {
    take(sharedList, ".sidebar .shared-list");
    sharedList.hidden = sharedHeading.hidden = !sharedList.querySelector("li");
  }
  applyHeardSince(started, listShared, unlistShared);
  if (search?.value) search.dispatchEvent(new Event("input"));
});

// A page of lists on no conversation (the welcome page, the team page, search) has no
// conversation socket to hear what changes them: it has the account's.
if (!currentId && (sidebar || document.querySelector("[data-lists]"))) followAccount();

sidebar?.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest("li[data-id]");
  if (button.dataset.action === "rename") startRename(item);
  if (button.dataset.action === "delete") deleteConversation(item);
});

// --- new chat from the welcome screen; import ------------------------------------------------------

const starter = document.getElementById("starter");
const starterInput = starter?.querySelector("textarea");
// The welcome page's notice and "Start chat" become what the server renders now (a suspended
// account is told so and offered no "Start chat"; one whose tokens are spent is told so; the
// draft typed stays) whenever what the account may spend may have changed: its limits changed
// in the admin (chat:account-updated, from the account's socket), the spent period reset (at
// the time the notice names: data-until), or the tab shown again (a reply in another tab spent
// tokens meanwhile); and after a reconnect. The page is read by account.js (readPageAgain), as
// the lists are, and handed on as chat:sidebar-read.
function readWelcomeAgain() {
  if (starter) readPageAgain();
}
document.addEventListener("chat:sidebar-read", (event) => {
  const read = event.detail?.querySelector?.(".welcome");
  const readStarter = read?.querySelector("#starter");
  if (!starter || !readStarter) return;
  const notice = read.querySelector(":scope > .notice");
  const mine = starter.parentElement.querySelector(":scope > .notice");
  if (notice) (mine || starter).before(document.importNode(notice, true));
  mine?.remove();
  starter.hidden = readStarter.hidden;
  readWelcomeWhenSpentResets();
});
document.addEventListener("chat:account-updated", readWelcomeAgain);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") readWelcomeAgain();
});

let spentResetTimer = null;
function readWelcomeWhenSpentResets() {
  clearTimeout(spentResetTimer);
  const until = Date.parse(starter?.parentElement.querySelector(":scope > .notice")?.dataset.until);
  // A second past it, so that the server's clock is past it too (read again no sooner than
  // 10 s later if it was not); at most a day at a time (setTimeout's delay is 32 bits).
  const delay = Math.min(Math.max(until - Date.now() + 1000, 10_000), 86_400_000);
  if (until) spentResetTimer = setTimeout(readWelcomeAgain, delay);
}
readWelcomeWhenSpentResets();

// What is typed here is kept for this tab as the conversation page's composer keeps its draft
// (conversation.js): a reload or a visit elsewhere finds it again; per account, so whoever
// signs in next in this tab does not; gone once sent.
const starterDraftKey = `draft:${document.querySelector(".layout")?.dataset.accountId}:new`;

function saveStarterDraft() {
  try {
    if (starterInput.value.trim()) sessionStorage.setItem(starterDraftKey, starterInput.value);
    else sessionStorage.removeItem(starterDraftKey);
  } catch {
    /* storage full or refused: the draft is only on the page */
  }
}

if (starterInput) {
  try {
    starterInput.value = sessionStorage.getItem(starterDraftKey) || starterInput.value;
  } catch {
    /* storage refused: nothing kept */
  }
  starterInput.addEventListener("input", saveStarterDraft);
}

// What sending costs and what is left, said as the conversation page's composer says it
// (estimate.js), as the message is typed and the model changed: a message that cannot fit is
// said before it is sent. The allowance is read again with the page (chat:sidebar-read).
const starterData = JSON.parse(document.getElementById("starter-data")?.textContent || "null");
let starterAllowance = null;

function updateStarterEstimate() {
  const model = starterData.models.find((m) => m.name === starter.querySelector("select").value);
  const said = describeSending({
    text: starterInput.value,
    model,
    displayName: model?.display_name || "",
    allowance: starterAllowance,
    padding: starterData.prompt_padding,
  });
  document.getElementById("starter-estimate").textContent = said.line;
  const warning = document.getElementById("starter-warning");
  warning.textContent = said.warning;
  warning.hidden = !said.warning;
}

async function readStarterAllowance() {
  starterAllowance = await readAllowance(starterData.usage_url);
  updateStarterEstimate();
}

if (starter && starterData) {
  starterInput.addEventListener("input", updateStarterEstimate);
  starter.querySelector("select").addEventListener("change", updateStarterEstimate);
  document.addEventListener("chat:sidebar-read", readStarterAllowance);
  readStarterAllowance();
}

starter?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = starterInput.value;
  const model = starter.querySelector("select").value;
  const result = await postJSON("/c/new/", { model });
  if (!result.ok) {
    document.getElementById("starter-error").textContent =
      result.data?.error?.message || "Could not start a conversation.";
    return;
  }
  // The message goes on to the new conversation's page, which sends it (and keeps it as that
  // conversation's draft if it is refused): the draft here is done.
  if (text.trim()) sessionStorage.setItem(`pending-message:${result.data.id}`, text);
  starterInput.value = "";
  saveStarterDraft();
  location.assign(result.data.url);
});
// The hint names the keys of a keyboard; a touch screen's Enter adds a line.
if (starterInput && !enterSends()) starterInput.placeholder = "Ask anything";
starterInput?.addEventListener("keydown", (event) => {
  if (sendsMessage(event)) {
    event.preventDefault();
    starter.requestSubmit();
  }
});

const importInput = document.getElementById("import-file");
importInput?.addEventListener("change", async () => {
  const file = importInput.files[0];
  if (!file) return;
  // Emptied at once: the same file, picked again once fixed, is a change (else nothing happens).
  importInput.value = "";
  // The server's limit (and the proxy's, which answers its own HTML page): said before sending
  // rather than as a bare failure after it. What is sent is the file compacted (an export is
  // indented), so that is what is measured; a file far past the limit is not even read.
  const maxBytes = Number(importInput.dataset.maxBytes);
  const tooLarge = `The file is too large to import (at most ${maxBytes / 1_000_000} MB).`;
  if (maxBytes && file.size > 4 * maxBytes) {
    toast(tooLarge);
    return;
  }
  let data;
  try {
    data = JSON.parse(await file.text());
  } catch {
    toast("That file is not JSON.");
    return;
  }
  if (maxBytes && new Blob([JSON.stringify(data)]).size > maxBytes) {
    toast(tooLarge);
    return;
  }
  const result = await postJSON("/c/import/", data);
  if (result.status === 413) {
    toast(tooLarge);
    return;
  }
  if (!result.ok) {
    toast(result.data?.error?.message || "Could not import.");
    return;
  }
  location.assign(result.data.url);
});

// --- copying a field's value ---------------------------------------------------------------------

// <button data-copy-from="field-id">: a value to copy whole (a new API key, shown only once).
for (const button of document.querySelectorAll("button[data-copy-from]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copyFrom);
    const ok = await copyText(field ? field.value : "");
    toast(ok ? "Copied." : "Could not copy: select the text and copy it.", { timeout: 3000 });
  });
}

// --- keyboard shortcuts ----------------------------------------------------------------------------

const shortcuts = document.getElementById("shortcuts-dialog");
document.getElementById("shortcuts-open")?.addEventListener("click", () => shortcuts?.showModal());
shortcuts?.querySelector("[data-close]")?.addEventListener("click", () => shortcuts.close());

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable=true]");
}

function focusComposer() {
  const field = document.getElementById("composer-input") || document.querySelector("#starter textarea");
  field?.focus();
}

document.addEventListener("keydown", (event) => {
  const mod = event.ctrlKey || event.metaKey;
  if (mod && event.shiftKey && event.key.toLowerCase() === "o") {
    event.preventDefault();
    // Not while "New chat" is disabled (it says why beside it).
    const newChat = document.getElementById("new-chat-form");
    if (newChat && !newChat.querySelector("button[type=submit]").disabled) newChat.requestSubmit();
  } else if (mod && !event.shiftKey && event.key.toLowerCase() === "z" && !typing(event.target) && undoToast?.isConnected) {
    event.preventDefault();
    undoToast.querySelector("button.toast-action")?.click();
  } else if (mod && event.shiftKey && (event.key === ";" || event.code === "Semicolon")) {
    event.preventDefault();
    document.dispatchEvent(new CustomEvent("chat:copy-last"));
  } else if (event.shiftKey && event.key === "Escape") {
    event.preventDefault();
    focusComposer();
  } else if (event.key === "Escape" && drawerIsOpen()) {
    setDrawer(false); // not the reply's Stop
    drawerButton?.focus();
  } else if (event.key === "Escape" && accountMenu?.classList.contains("is-open")) {
    setAccountMenu(false, { focusButton: true }); // not the reply's Stop
  } else if (event.key === "Escape" && document.querySelector("details.menu[open]")) {
    // An open menu closes first (the focus back on its button); the reply is not stopped.
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      menu.open = false;
      menu.querySelector("summary")?.focus();
    }
  } else if (event.key === "Escape" && event.target.matches?.("input[type=search]") && event.target.value) {
    // A search box's Escape clears what was typed in it, here rather than left to the browser
    // (not every one does it), and its list shows everything again; the reply goes on.
    event.preventDefault();
    event.target.value = "";
    event.target.dispatchEvent(new Event("input", { bubbles: true }));
  } else if (event.key === "Escape" && !document.querySelector("dialog[open]")) {
    document.dispatchEvent(new CustomEvent("chat:stop"));
  } else if (!typing(event.target) && !mod && !event.altKey) {
    if (event.key === "?") {
      event.preventDefault();
      shortcuts?.showModal();
    } else if (event.key === "/") {
      event.preventDefault();
      focusComposer();
    }
  }
});

// Menus (<details class="menu">) close after a choice and on a click elsewhere.
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target) || event.target.closest(".menu-items a")) menu.open = false;
  }
});
