"use strict";
// The bulk upload's progress bar: polls the upload's progress (JSON) until the import is
// done. A static file, not an inline script: the Content-Security-Policy allows scripts
// from this site only.
(function () {
  const panel = document.getElementById("bulk-progress");
  if (!panel || panel.dataset.done) { return; }
  const bar = document.getElementById("bulk-bar");
  const number = (value) => Number(value).toLocaleString("en-IN");
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  function tick() {
    fetch(panel.dataset.progressUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((progress) => {
        bar.max = progress.to_import || 1;
        bar.value = progress.processed;
        show("bulk-percent", progress.percent + "%");
        show("count-processed", number(progress.processed));
        show("count-recorded", number(progress.recorded));
        show("count-already", number(progress.already_recorded));
        show("count-refused", number(progress.refused));
        show("bulk-status", progress.status_label);
        if (progress.done) {
          panel.dataset.done = "1";
          document.getElementById("bulk-done").hidden = false;
          const resume = document.getElementById("resume");
          if (resume) { resume.hidden = true; }
          return;
        }
        window.setTimeout(tick, 1000);
      })
      .catch(() => window.setTimeout(tick, 3000));
  }
  tick();
})();
