// The branch desk: show the details of the chosen payment mode; print a receipt on A5 or
// an 80 mm roll. The pages work without it (all detail fields shown, the browser's print).
(function () {
  "use strict";
  function showModeDetails() {
    var chosen = document.querySelector("#collect-form input[name=mode]:checked");
    document.querySelectorAll("#collect-form .mode-details").forEach(function (block) {
      block.hidden = !chosen || block.dataset.mode !== chosen.value;
    });
  }
  function printOn(paper) {
    var style = document.getElementById("desk-page-size");
    if (!style) {
      style = document.createElement("style");
      style.id = "desk-page-size";
      document.head.appendChild(style);
    }
    var thermal = paper === "80mm";
    style.textContent = thermal ? "@page { size: 80mm 250mm; margin: 3mm; }" : "@page { size: A5; margin: 8mm; }";
    document.documentElement.classList.toggle("paper-80mm", thermal);
    window.print();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#collect-form input[name=mode]").forEach(function (radio) {
      radio.addEventListener("change", showModeDetails);
    });
    if (document.querySelector("#collect-form .mode-details")) showModeDetails();
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { printOn(button.dataset.print); });
    });
  });
})();
