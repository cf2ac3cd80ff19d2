// A confirmation before an irreversible action, on every admin and workflow page.
//
// A form whose submit button, or the form itself, or an element inside it with the class
// "confirm-spec" carries data-confirm="what will happen" is sent only after the person
// accepts that text in the page's <dialog id="confirm-dialog"> (templates/admin/base_site.html).
// data-confirm-label names the accept button. With data-confirm-switch="<checkbox id>",
// data-confirm-on or data-confirm-off is the text, as the checkbox is ticked or not.
// Cancelling (the button, Escape) sends nothing. Without the dialog element the browser's
// own confirm() asks.
(function () {
  "use strict";

  function specOf(form, submitter) {
    if (submitter && submitter.dataset && submitter.dataset.confirm !== undefined) {
      return submitter.dataset;
    }
    if (form.dataset.confirm !== undefined || form.dataset.confirmSwitch) {
      return form.dataset;
    }
    var inner = form.querySelector(".confirm-spec");
    return inner ? inner.dataset : null;
  }

  function messageOf(form, spec) {
    if (spec.confirmSwitch) {
      var box = document.getElementById(spec.confirmSwitch);
      return box && box.checked ? spec.confirmOn : spec.confirmOff;
    }
    return spec.confirm;
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || form.method === "dialog") {
        return;
      }
      if (form.dataset.confirmed === "yes") {
        return; // accepted: this is the submission the dialog let through
      }
      var submitter = event.submitter || null;
      var spec = specOf(form, submitter);
      var message = spec && messageOf(form, spec);
      if (!message) {
        return;
      }
      event.preventDefault();
      var dialog = document.getElementById("confirm-dialog");
      if (!dialog || typeof dialog.showModal !== "function") {
        if (window.confirm(message)) {
          form.dataset.confirmed = "yes";
          form.requestSubmit(submitter);
        }
        return;
      }
      document.getElementById("confirm-dialog-message").textContent = message;
      document.getElementById("confirm-dialog-accept").textContent = spec.confirmLabel || "Confirm";
      dialog.returnValue = "";
      dialog.addEventListener(
        "close",
        function () {
          if (dialog.returnValue !== "confirm") {
            return;
          }
          form.dataset.confirmed = "yes";
          if (submitter) {
            form.requestSubmit(submitter);
          } else {
            form.requestSubmit();
          }
        },
        { once: true }
      );
      dialog.showModal();
    },
    true
  );
})();
