// Model output → safe DOM. Everything the model wrote is untrusted:
//  - raw HTML in the markdown is shown as text, never parsed as markup;
//  - the whole accumulated text is re-rendered and sanitized with DOMPurify on every render;
//  - images become links (nothing remote is fetched), links open in a new tab without referrer;
//  - math is rendered by KaTeX into placeholder nodes AFTER sanitizing (KaTeX sets styles through
//    the CSSOM, which the page's CSP allows, and its `trust` option stays off).
import { Marked, Tokenizer } from "../vendor/marked-18.2.1/marked.esm.js";
import DOMPurify from "../vendor/dompurify-3.4.18/purify.es.mjs";
import hljs from "../vendor/highlightjs-11.12.0/highlight.min.js";
import katex from "../vendor/katex-0.19.1/katex.mjs";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

// A display formula on lines of its own: "$$" at the start of a line, up to the first "$$"
// after it, which must end a line. (A formula holds no "$$"; a pattern that looked past the
// first for one ending a line read to the end of the text at every "$$".)
const MATH_BLOCK = /^\$\$((?:[^$]|\$(?!\$))+?)\$\$[ \t]*(?:\n+|$)/;
const MATH_BLOCK_AT = new RegExp(MATH_BLOCK.source.slice(1), "y");
const BLANK_LINE = /\n[ \t]*\n/;

// Where in its paragraph ``src`` gives way to a formula: the index of the first line that
// starts one before the paragraph ends (a blank line), or -1. Each call reads no further than
// that line, or than the blank line: the parser asks at every line it stops at, and reading
// to the end of the text each time (or cutting the paragraph at every "$$", as before) made
// drawing a reply made of "$$" take minutes, its tab frozen, and every reader's with it.
function formulaCut(src) {
  for (let from = 0; ; ) {
    const index = src.indexOf("\n$$", from);
    const stop = index < 0 ? src.length : index + 1;
    if (BLANK_LINE.test(src.slice(Math.max(0, from - 1), stop))) return -1;
    if (index < 0) return -1;
    MATH_BLOCK_AT.lastIndex = index + 1;
    if (MATH_BLOCK_AT.test(src)) return index + 1;
    from = index + 1;
  }
}

const mathBlock = {
  name: "mathBlock",
  level: "block",
  start(src) {
    const index = formulaCut(src);
    return index < 0 ? undefined : index;
  },
  tokenizer(src) {
    const match = MATH_BLOCK.exec(src);
    if (match) return { type: "mathBlock", raw: match[0], text: match[1].trim() };
    return undefined;
  },
  renderer(token) {
    return `<div class="math math-display" data-tex="${escapeHtml(token.text)}">${escapeHtml(
      `$$${token.text}$$`,
    )}</div>\n`;
  },
};

const mathInline = {
  name: "mathInline",
  level: "inline",
  start(src) {
    const index = src.indexOf("$");
    return index < 0 ? undefined : index;
  },
  tokenizer(src) {
    let match = /^\$\$((?:\\.|[^\\$])+?)\$\$/.exec(src);
    if (match) return { type: "mathInline", raw: match[0], text: match[1].trim(), display: true };
    // $…$ with no space inside the delimiters and no digit after ("costs $5 and $6" is money).
    match = /^\$(?!\s)((?:\\.|[^\\$\n])+?)(?<!\s)\$(?!\d)/.exec(src);
    if (match) return { type: "mathInline", raw: match[0], text: match[1], display: false };
    return undefined;
  },
  renderer(token) {
    const cls = token.display ? "math math-display" : "math";
    return `<span class="${cls}" data-tex="${escapeHtml(token.text)}">${escapeHtml(
      token.raw,
    )}</span>`;
  },
};

const renderer = {
  html(token) {
    const text = escapeHtml(token.text);
    return token.block ? `<p>${text}</p>\n` : text;
  },
  image(token) {
    const label = token.text ? `Image: ${token.text}` : "Image";
    return `<a class="image-link" href="${escapeHtml(token.href)}">${escapeHtml(label)}</a>`;
  },
  code(token) {
    const language = ((token.lang || "").match(/^[\w+#.-]*/) || [""])[0].toLowerCase();
    let body;
    if (language && hljs.getLanguage(language)) {
      body = hljs.highlight(token.text, { language, ignoreIllegals: true }).value;
    } else {
      body = escapeHtml(token.text);
    }
    return `<pre class="code-block" data-lang="${escapeHtml(language)}"><code class="hljs">${body}</code></pre>\n`;
  },
};

// A setext heading ("Title" over "===") ends where its paragraph does: a formula's line ends
// it too. marked's own pattern looked for the underline up to the next blank line, and a
// reply of text lines and formulas without blank lines read to its end at every formula.
const tokenizer = {
  lheading(src) {
    const cut = formulaCut(src.slice(1));
    return cut < 0 ? false : Tokenizer.prototype.lheading.call(this, src.slice(0, cut + 1));
  },
};

const marked = new Marked({ gfm: true, breaks: false });
marked.use({ extensions: [mathBlock, mathInline], renderer, tokenizer });

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: [
    "style", "img", "svg", "math", "form", "input", "button", "textarea", "select", "option",
    "iframe", "frame", "frameset", "object", "embed", "video", "audio", "source", "track",
    "picture", "link", "meta", "base", "template", "dialog", "noscript", "canvas", "map", "area",
  ],
  FORBID_ATTR: ["style", "id", "name", "srcset", "formaction", "action", "background", "ping"],
  ALLOW_DATA_ATTR: false,
  ADD_ATTR: ["data-tex", "data-lang", "target"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  for (const attr of Array.from(node.attributes || [])) {
    // Belt and braces: DOMPurify drops handlers already.
    if (attr.name.toLowerCase().startsWith("on")) node.removeAttribute(attr.name);
  }
  if (node.tagName === "A") {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    } else {
      node.removeAttribute("target");
    }
  }
});

function renderMath(root) {
  for (const node of root.querySelectorAll(".math[data-tex]")) {
    const tex = node.getAttribute("data-tex");
    const source = node.textContent; // the formula as written, delimiters included
    try {
      katex.render(tex, node, {
        displayMode: node.classList.contains("math-display"),
        throwOnError: true,
        trust: false,
        maxSize: 50,
        maxExpand: 500,
        output: "htmlAndMathml",
      });
    } catch (error) {
      // The source stays as written, marked, with KaTeX's reason. (KaTeX's own error span is
      // coloured through a style attribute, which the CSP refuses.)
      node.textContent = source;
      node.classList.add("math-error");
      node.title = error instanceof katex.ParseError ? error.message : "This formula cannot be shown.";
    }
  }
}

function decorateCode(root) {
  for (const pre of root.querySelectorAll("pre.code-block")) {
    const code = pre.querySelector("code");
    const language = pre.getAttribute("data-lang") || "text";
    const head = document.createElement("div");
    head.className = "code-head";
    const label = document.createElement("span");
    label.className = "code-lang";
    label.textContent = language;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "code-copy";
    button.textContent = "Copy code";
    button.dataset.copyCode = "";
    head.append(label, button);
    pre.prepend(head);
    if (code) code.setAttribute("tabindex", "0");
  }
}

/** Sanitized DOM for `text` (the whole accumulated markdown). */
export function renderMarkdown(text) {
  let html;
  try {
    html = marked.parse(text || "", { async: false });
  } catch {
    html = `<p>${escapeHtml(text || "")}</p>`;
  }
  const fragment = DOMPurify.sanitize(html, PURIFY_CONFIG);
  renderMath(fragment);
  decorateCode(fragment);
  return fragment;
}

const BLOCKS = "p, li, h1, h2, h3, h4, h5, h6, pre, blockquote, tr, th, td, div, hr, br";

/** `text` as words to be read out (a screen reader's announcement): the markdown's marks gone,
 * a formula as written, blocks apart. */
export function markdownText(text) {
  let html;
  try {
    html = marked.parse(text || "", { async: false });
  } catch {
    return String(text || "");
  }
  const fragment = DOMPurify.sanitize(html, PURIFY_CONFIG);
  for (const block of fragment.querySelectorAll(BLOCKS)) block.after(" ");
  return fragment.textContent.replace(/\s+/g, " ").trim();
}

/** A highlighted, sanitized <pre> for JSON text (JSON mode). */
export function renderCode(text, language) {
  // A fence longer than any run of backticks inside the text, so the text cannot close it.
  const longest = Math.max(0, ...(String(text).match(/`+/g) || []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return renderMarkdown(`${fence}${language}\n${text}\n${fence}`);
}
