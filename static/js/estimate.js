// What sending a message costs, said before it is sent: the conversation page's composer and
// the welcome page's starter share it. The line reads "DeepSeek Chat · ~12 tokens (< $0.0001);
// 3,450 left today"; the warning says when what admission reserves cannot fit in what is left.

import { estimateTokens } from "./util.js";

/** What the user has left (day and month), from /usage/summary.json; null if it cannot be read. */
export async function readAllowance(url) {
  if (!url) return null;
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** What sending ``text`` reserves at admission, estimated as the server does it
 * (quota.estimate_prompt_tokens, padded by ``padding``; quota.max_tokens_for): the texts
 * before it (``history()``: the system prompt, the branch the message goes under), the
 * message and the tools offered, 4 tokens of overhead a message, and the reply's output
 * budget (max_tokens, or the model's default within the user's cap). */
function reservationEstimate({ text, history, params, model, allowance, padding }) {
  let tokens = 0;
  for (const part of [...history(), text]) tokens += 4 + estimateTokens(part);
  if (params.tools) tokens += estimateTokens(JSON.stringify(params.tools));
  const { factor, slack } = padding || { factor: 1, slack: 0 };
  tokens = Math.ceil(tokens * factor) + slack;
  const cap = allowance?.max_output_tokens;
  const output = Number.isInteger(params.max_tokens)
    ? params.max_tokens
    : Number.isInteger(cap) ? Math.min(model.default_max_tokens, cap) : model.default_max_tokens;
  return { tokens: tokens + output, output };
}

/**
 * The estimate line and the warning ("" if none) for ``text`` about to be sent with ``model``
 * (an entry of the page's models; ``displayName`` names it even when it is not one).
 * ``history``: a function giving the texts the message goes after (called only when needed);
 * ``reserved``: what the reservation holds besides the reply, as the warning names it.
 */
export function describeSending({
  text,
  model,
  displayName,
  allowance,
  params = {},
  padding,
  history = () => [],
  reserved = "your message",
}) {
  // An empty message has nothing to estimate: the model and the allowance only.
  const tokens = text.trim() ? estimateTokens(text) : 0;
  // Said before sending: a message whose reservation cannot fit in what is left is refused.
  let tooMuch = "";
  let line = displayName;
  // Grouped as the allowance beside it is ("~60,000 tokens; 1,000 left today").
  if (tokens > 0) line += ` · ~${tokens.toLocaleString()} token${tokens === 1 ? "" : "s"}`;
  if (model && tokens > 0) {
    const cost = (tokens * model.price_input_per_million) / 1e6;
    line += cost < 0.0001 ? " (< $0.0001)" : ` (≈ $${cost.toFixed(4)})`;
  }
  // Suspended, nothing may be spent, whatever the limits leave: the blocked note says why.
  if (typeof allowance?.remaining === "number" && !allowance.suspended) {
    // The tighter of day and month; a tie reads as today's (it resets first).
    const day = allowance.today?.left ?? null;
    const month = allowance.month?.left ?? null;
    const period = month !== null && (day === null || month < day) ? "this month" : "today";
    line += `; ${allowance.remaining.toLocaleString()} left ${period}`;
    const needed =
      model && tokens > 0 ? reservationEstimate({ text, history, params, model, allowance, padding }) : null;
    if (needed && allowance.remaining > 0 && needed.tokens > allowance.remaining) {
      tooMuch =
        `Sending this needs up to ~${needed.tokens.toLocaleString()} tokens (${reserved} ` +
        `and up to ${needed.output.toLocaleString()} for the reply), ` +
        `more than the ${allowance.remaining.toLocaleString()} left ${period}.`;
    }
  }
  return { line, warning: tooMuch || allowance?.warning || "" };
}
