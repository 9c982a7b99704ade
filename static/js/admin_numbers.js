// The admin's forms are `novalidate` (Django's), so a number field holding what the browser
// cannot read as a number ("2e" half typed, "1e400") was posted as "", as if cleared: a
// policy's limit so typed was saved blank, which is unlimited, and a price was refused as
// "This field is required." beside the text the admin had typed. Such a form is not sent: each
// such field says it holds no number, and the first takes the focus.
(function () {
  var MESSAGE = "Not a number: correct it, or clear the field.";
  var MARK = "data-unread-number";

  function clear(form) {
    form.querySelectorAll("[" + MARK + "]").forEach(function (element) {
      if (element instanceof HTMLUListElement) {
        element.remove();
        return;
      }
      element.removeAttribute(MARK);
      element.removeAttribute("aria-invalid");
      var describedBy = (element.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (id) { return id && id !== element.id + "_unread"; })
        .join(" ");
      if (describedBy) element.setAttribute("aria-describedby", describedBy);
      else element.removeAttribute("aria-describedby");
    });
  }

  function say(field) {
    var list = document.createElement("ul");
    list.className = "errorlist";
    list.id = field.id + "_unread";
    list.setAttribute(MARK, "");
    var item = document.createElement("li");
    item.textContent = MESSAGE;
    list.appendChild(item);
    // Where Django puts a field's own errors: above the box holding its label and input.
    var box = field.closest(".flex-container") || field;
    box.parentNode.insertBefore(list, box);
    field.setAttribute(MARK, "");
    field.setAttribute("aria-invalid", "true");
    var describedBy = field.getAttribute("aria-describedby");
    field.setAttribute("aria-describedby", (describedBy ? describedBy + " " : "") + list.id);
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      clear(form);
      var unread = Array.prototype.filter.call(
        form.querySelectorAll("input[type=number]"),
        function (field) { return field.validity.badInput; }
      );
      if (!unread.length) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      unread.forEach(say);
      unread[0].focus();
    },
    true
  );
})();
