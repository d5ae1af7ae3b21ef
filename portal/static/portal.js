// Kefu portal: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // A password shown once: one tap selects it for copying.
  var pw = document.getElementById("export-password");
  if (pw) {
    pw.addEventListener("click", function () {
      var range = document.createRange();
      range.selectNodeContents(pw);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    });
  }
  // Ask before the irreversible step.
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.textContent + "?")) { event.preventDefault(); }
    });
  });
})();
