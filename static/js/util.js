// Small helpers shared by the page modules.

const WIDE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;
const LONG_RUN = 24;

/** Hundredths of a token per ASCII character (as quota._ascii_weight): digits 60, letters and
 * whitespace 30, anything else 40. */
function asciiWeight(code) {
  if (code >= 0x30 && code <= 0x39) return 60;
  if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return 30;
  if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) return 30;
  return 40;
}

/** The tokens DeepSeek would count in `text`, estimated from above: the very number
 * quota.estimate_tokens gives (see its weights), computed in integers. */
export function estimateTokens(text) {
  if (!text) return 0;
  let hundredths = 0;
  let run = 0; // ASCII characters since the last ASCII whitespace (others do not end a run)
  let runWeight = 0;
  const endRun = () => {
    if (run >= LONG_RUN) hundredths += 75 * run - runWeight;
    run = 0;
    runWeight = 0;
  };
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code < 0x80) {
      const weight = asciiWeight(code);
      hundredths += weight;
      if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) endRun();
      else {
        run += 1;
        runWeight += weight;
      }
    } else if (code < 0x800) hundredths += 60;
    else if (code < 0x10000) hundredths += WIDE.test(ch) ? 60 : 85;
    else hundredths += 160;
  }
  endRun();
  return Math.max(1, Math.floor((hundredths + 50) / 100));
}

// Touch screens' keyboards have no Shift+Enter: there Enter adds a line and the Send button sends.
const TOUCH_SCREEN = window.matchMedia("(hover: none) and (pointer: coarse)");

/** Whether Enter sends (not on a touch screen). */
export function enterSends() {
  return !TOUCH_SCREEN.matches;
}

/** Whether this keydown in a message box sends it (Enter; Shift+Enter adds a line). */
export function sendsMessage(event) {
  return event.key === "Enter" && !event.shiftKey && !event.isComposing && enterSends();
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

const SIGNED_OUT = "You are signed out — sign in again to continue.";

/** POST JSON; resolves to {ok, status, data}. Never throws on HTTP errors. */
export async function postJSON(url, body) {
  try {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body ?? {}),
    });
    if (response.redirected) {
      // Signed out (here or in another tab): login_required answered with the sign-in page,
      // and nothing was done.
      return { ok: false, status: 401, data: { error: { message: SIGNED_OUT } } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  } catch {
    return { ok: false, status: 0, data: { error: { message: "The server cannot be reached." } } };
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Make `wanted` the children of `parent`, moving only what is out of place (re-attaching every
 * article of a long conversation costs the browser seconds of style and layout). */
export function placeChildren(parent, wanted) {
  let current = parent.firstElementChild;
  for (const child of wanted) {
    if (child === current) current = current.nextElementSibling;
    else parent.insertBefore(child, current);
  }
  while (current) {
    const next = current.nextElementSibling;
    current.remove();
    current = next;
  }
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API refused (insecure context, no permission): fall back to a selection copy.
    const area = el("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** Tell a screen reader `text` (the page's polite live region, #announcer in base.html): each
 * announcement replaces the last, and the same words twice are said twice. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  region.replaceChildren(el("p", { text }));
}

/** A short-lived status message; `action` = {label, run, shortcut?} adds a button (e.g. Undo;
 * `shortcut`: the keys that press it, as a hint beside it, e.g. "Ctrl+Z"). It waits while the
 * pointer is on it or the focus in it, and gives the reader a moment more when they leave: a
 * keyboard user on their way to its button does not see it vanish on arrival. */
export function toast(message, { action = null, timeout = 5000, onExpire = null } = {}) {
  let region = document.getElementById("toasts");
  if (!region) {
    region = el("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const item = el("div", { class: "toast" }, el("span", { text: message }));
  let done = false;
  const finish = (expired) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    item.remove();
    if (expired && onExpire) onExpire();
  };
  if (action) {
    const button = el("button", {
      type: "button",
      class: "toast-action",
      text: action.label,
      onclick: () => {
        finish(false);
        action.run();
      },
    });
    item.append(button);
    if (action.shortcut) {
      button.setAttribute("aria-keyshortcuts", action.shortcut.replace("Ctrl", "Control"));
      item.append(el("kbd", { class: "toast-shortcut", text: action.shortcut }));
    }
  }
  let remaining = timeout;
  let started = 0;
  let timer = null;
  const run = () => {
    started = performance.now();
    timer = setTimeout(() => finish(true), remaining);
  };
  const hold = () => {
    if (timer === null) return;
    clearTimeout(timer);
    timer = null;
    remaining -= performance.now() - started;
  };
  const release = (leaving) => {
    if (done || timer !== null || item.matches(":hover") || item.contains(leaving)) return;
    remaining = Math.max(remaining, 2000);
    run();
  };
  item.addEventListener("pointerenter", hold);
  item.addEventListener("focusin", hold);
  item.addEventListener("pointerleave", () => release(document.activeElement));
  item.addEventListener("focusout", (event) => release(event.relatedTarget));
  region.append(item);
  run();
  return item;
}

export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

// When each read of the page again began (account.js's readPage, conversation.js's
// fetchPageData), kept with the Document read, for app.js: what the read lists is what the server
// rendered, possibly before changes announced to the page while the read was on its way, which
// app.js applies again once it has taken the read's lists.
const readStarts = new WeakMap();

/** `doc`, noted as asked for at `time` (performance.now()). */
export function markRead(doc, time) {
  readStarts.set(doc, time);
  return doc;
}

/** When `doc` was asked for (performance.now()); undefined for a Document not marked so. */
export function readStartedAt(doc) {
  return readStarts.get(doc);
}
