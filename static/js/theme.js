// Classic (non-module) script loaded in <head> so the saved theme applies before first paint.
(function () {
  try {
    var saved = localStorage.getItem("theme");
    if (saved === "dark" || saved === "light") {
      document.documentElement.dataset.theme = saved;
    }
  } catch (e) {
    /* storage may be unavailable (private mode); the system theme applies */
  }
})();
