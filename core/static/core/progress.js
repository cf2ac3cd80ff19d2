"use strict";
// A background job's progress bar in a page (the bulk repayment upload, the imports): polls
// the panel's data-progress-url (JSON) until "done". In the page, an element with
// data-progress="key" shows the JSON's key (numbers in Indian grouping, then its
// data-suffix), <progress data-progress-bar> shows "processed" of "max", and when done
// [data-progress-done] is shown and [data-progress-running] hidden. A static file, not an
// inline script: the Content-Security-Policy allows scripts from this site only.
(function () {
  const panel = document.querySelector("[data-progress-url]");
  if (!panel || panel.dataset.done) { return; }
  const format = (value) => (typeof value === "number" ? value.toLocaleString("en-IN") : String(value));
  function show(progress) {
    document.querySelectorAll("[data-progress]").forEach((element) => {
      const value = progress[element.dataset.progress];
      if (value !== undefined) { element.textContent = format(value) + (element.dataset.suffix || ""); }
    });
    document.querySelectorAll("progress[data-progress-bar]").forEach((bar) => {
      bar.max = progress.max || 1;
      bar.value = progress.processed;
    });
  }
  function tick() {
    fetch(panel.dataset.progressUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((progress) => {
        show(progress);
        if (progress.done) {
          panel.dataset.done = "1";
          document.querySelectorAll("[data-progress-done]").forEach((element) => { element.hidden = false; });
          document.querySelectorAll("[data-progress-running]").forEach((element) => { element.hidden = true; });
          return;
        }
        window.setTimeout(tick, 1000);
      })
      .catch(() => window.setTimeout(tick, 3000));
  }
  tick();
})();
