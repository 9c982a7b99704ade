// The conversation settings panel: model, system prompt and parameters, validated by the server.
import { postJSON } from "./util.js";

const NUMBER_FIELDS = ["temperature", "top_p", "frequency_penalty", "presence_penalty"];
const INTEGER_FIELDS = ["max_tokens", "top_logprobs"];
// Server-side parameter names → the form field that shows the error.
const ERROR_FIELD = { response_format: "json_mode", params: "__all__" };
const TOOL_CHOICE_MODES = ["auto", "none", "required"];

// tool_choice as the form shows it: a mode, or the name of the function it forces.
function toolChoiceText(choice) {
  if (!choice) return "";
  return typeof choice === "string" ? choice : choice.function?.name || "";
}

function toolChoiceValue(text) {
  if (TOOL_CHOICE_MODES.includes(text)) return text;
  return { type: "function", function: { name: text } };
}

// Said when the settings changed since the dialog was filled (another tab, another worker).
const CHANGED_ELSEWHERE =
  "These settings were changed in another tab or by another worker — they are shown as they are now; make your change again.";

/** The Settings dialog; `onSaved(settings, sent)` takes the settings as saved (the page's
 * copy), as the server had them when it answered a save sent at `sent` (performance.now()).
 * Returns `changedElsewhere(settings)`, for settings saved elsewhere (`conversation.settings`),
 * once the page's copy holds them. */
export function initSettings(page, onSaved) {
  const dialog = document.getElementById("settings-dialog");
  const openButton = document.getElementById("settings-open");
  if (!dialog || !openButton) return () => {};
  const form = dialog.querySelector("form");
  const field = (name) => form.elements.namedItem(name);
  // What the dialog was filled from: a save replaces these, and is refused by the server if
  // they changed meanwhile (the page's copy may follow a change while the dialog is open).
  let basedOn = { params: {}, settings_version: "" };
  let saving = false;

  function fill() {
    basedOn = { params: page.params || {}, settings_version: page.settings_version };
    const params = basedOn.params;
    field("model").value = page.model;
    field("system_prompt").value = page.system_prompt || "";
    for (const name of [...NUMBER_FIELDS, ...INTEGER_FIELDS]) {
      field(name).value = params[name] ?? "";
    }
    field("json_mode").checked = params.response_format?.type === "json_object";
    field("logprobs").checked = Boolean(params.logprobs);
    field("tools").value = params.tools ? JSON.stringify(params.tools, null, 2) : "";
    field("tool_choice").value = toolChoiceText(params.tool_choice);
    const stop = params.stop == null ? [] : [].concat(params.stop);
    field("stop").value = stop.join("\n");
    clearErrors();
    updateCapabilities();
  }

  function updateCapabilities() {
    const model = page.models.find((m) => m.name === field("model").value);
    if (!model) return;
    // The model's limit, or the user's own cap if lower (a higher value is refused on save).
    const cap = page.max_tokens_cap;
    const upTo = Number.isInteger(cap) ? Math.min(cap, model.max_output_tokens) : model.max_output_tokens;
    const byDefault = Math.min(model.default_max_tokens, upTo);
    field("max_tokens").placeholder = `default ${byDefault}, up to ${upTo}`;
    field("max_tokens").max = String(upTo);
    setHint("logprobs", model.supports_logprobs ? "" : `${model.display_name} does not return logprobs.`);
    setHint("json_mode", model.supports_json ? "" : `${model.display_name} has no JSON mode.`);
    setHint("tools", model.supports_tools ? "" : `${model.display_name} does not support tools.`);
  }

  function setHint(name, text) {
    const hint = form.querySelector(`[data-hint-for="${name}"]`);
    if (hint) hint.textContent = text;
  }

  function clearErrors() {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(param, message) {
    const name = ERROR_FIELD[param] || param;
    let target = form.querySelector(`.field-error[data-error-for="${name}"]`);
    if (!target) target = form.querySelector('.field-error[data-error-for="__all__"]');
    target.textContent = message;
    const control = field(name);
    if (control && control.setAttribute) {
      control.setAttribute("aria-invalid", "true");
      control.focus();
    }
  }

  function collect() {
    const params = { ...basedOn.params };
    for (const name of [...NUMBER_FIELDS, ...INTEGER_FIELDS]) {
      // A number the browser cannot read ("1e", "1e400") reads as "", the same as a field left
      // blank: saved so, it would unset what was stored without a word.
      if (field(name).validity.badInput) return { error: [name, `${name} must be a number.`] };
    }
    for (const name of NUMBER_FIELDS) {
      const raw = field(name).value.trim();
      if (raw === "") delete params[name];
      else params[name] = Number(raw);
    }
    for (const name of INTEGER_FIELDS) {
      const raw = field(name).value.trim();
      if (raw === "") delete params[name];
      else params[name] = Number(raw);
    }
    if (field("json_mode").checked) params.response_format = { type: "json_object" };
    else delete params.response_format;
    if (field("logprobs").checked) params.logprobs = true;
    else delete params.logprobs;
    const choice = field("tool_choice").value.trim();
    if (choice === "") delete params.tool_choice;
    else params.tool_choice = toolChoiceValue(choice);
    const stop = field("stop").value.split("\n").filter((line) => line !== "");
    if (stop.length === 0) delete params.stop;
    else params.stop = stop;
    const toolsText = field("tools").value.trim();
    if (toolsText === "") {
      delete params.tools;
    } else {
      try {
        params.tools = JSON.parse(toolsText);
      } catch (error) {
        return { error: ["tools", `Not valid JSON: ${error.message}`] };
      }
    }
    for (const [name, value] of Object.entries(params)) {
      if (typeof value === "number" && Number.isNaN(value)) return { error: [name, `${name} must be a number.`] };
    }
    return {
      body: {
        based_on: basedOn.settings_version,
        model: field("model").value,
        system_prompt: field("system_prompt").value,
        params,
      },
    };
  }

  openButton.addEventListener("click", () => {
    fill();
    dialog.showModal();
  });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  field("model").addEventListener("change", updateCapabilities);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const collected = collect();
    if (collected.error) {
      showError(...collected.error);
      return;
    }
    const saveButton = form.querySelector("button[type=submit]");
    saveButton.disabled = true;
    saving = true;
    const sent = performance.now(); // settings heard after this are newer than the answer's
    const result = await postJSON(`/c/${page.conversation_id}/settings/`, collected.body);
    saving = false;
    saveButton.disabled = false;
    if (result.ok) {
      onSaved(result.data, sent);
      dialog.close();
      return;
    }
    const current = result.status === 409 ? result.data?.error?.settings : null;
    if (current) {
      // Changed since the dialog was filled: nothing was saved; shown as it is now.
      onSaved(current, sent);
      fill();
      showError("__all__", result.data.error.message);
      return;
    }
    const errors = result.data?.errors || { __all__: result.data?.error?.message || "Could not save." };
    for (const [param, message] of Object.entries(errors)) showError(param, message);
  });

  return function changedElsewhere(settings) {
    // The tab's own save may be announced before its answer comes: that answer says.
    if (!dialog.open || saving || settings.settings_version === basedOn.settings_version) return;
    fill();
    showError("__all__", CHANGED_ELSEWHERE);
  };
}
