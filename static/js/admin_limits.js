// A user's own limits on their admin page: each is a choice ("Inherit from the policy",
// "Limit to", "Unlimited") and a number that counts only with "Limit to". Typing a number
// chooses "Limit to"; choosing anything else clears the number. Without this script the
// server refuses the mismatch on its field instead. Delegated: the admin adds the Limits
// form on "Add another" after the page loaded.
(function () {
  function choiceOf(number) {
    return number.form && number.form.elements.namedItem(number.name + "_choice");
  }

  document.addEventListener("input", function (event) {
    var number = event.target;
    if (!(number instanceof HTMLInputElement) || number.type !== "number") return;
    var choice = choiceOf(number);
    if (choice instanceof HTMLSelectElement && number.value !== "") choice.value = "number";
  });

  document.addEventListener("change", function (event) {
    var choice = event.target;
    if (!(choice instanceof HTMLSelectElement) || !choice.name.endsWith("_choice")) return;
    var number = choice.form && choice.form.elements.namedItem(choice.name.slice(0, -7));
    if (!(number instanceof HTMLInputElement)) return;
    if (choice.value === "number") number.focus();
    else number.value = "";
  });

  // Django's inline script numbers the ids, names and labels of the form it adds, not what
  // its fields' aria-describedby name: the help under each field (what inheriting gives)
  // stayed out of reach of a screen reader, named "id_limits-__prefix__-…".
  document.addEventListener("formset:added", function (event) {
    var row = event.target;
    var blank = event.detail && event.detail.formsetName + "-__prefix__";
    if (!(row instanceof Element) || !blank || !row.id) return;
    row.querySelectorAll("[aria-describedby]").forEach(function (field) {
      field.setAttribute("aria-describedby", field.getAttribute("aria-describedby").split(blank).join(row.id));
    });
  });
})();
