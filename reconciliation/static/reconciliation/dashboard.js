"use strict";
// The reconciliation dashboard's charts, from the figures the page embeds as JSON
// (#recon-charts). A static file, not an inline script: the Content-Security-Policy
// allows scripts from this site only.
(function () {
  // Money arrives as strings with two decimals; Number() is only for drawing.
  const charts = JSON.parse(document.getElementById("recon-charts").textContent);
  if (typeof Chart === "undefined") { return; }
  const colours = {CASH: "#2e7d32", UPI: "#1565c0", CHEQUE: "#ef6c00", NEFT: "#6a1b9a", NACH: "#00838f"};
  const num = (values) => values.map(Number);
  const money = {ticks: {callback: (v) => "₹" + Number(v).toLocaleString("en-IN")}};
  const stacked = (data) => ({
    type: "bar",
    data: {labels: data.labels, datasets: data.datasets.map((d) => ({label: d.label, data: num(d.data), backgroundColor: colours[d.label]}))},
    options: {maintainAspectRatio: false, scales: {x: {stacked: true}, y: Object.assign({stacked: true}, money)}},
  });
  new Chart(document.getElementById("chart-per-day"), stacked(charts.per_day));
  new Chart(document.getElementById("chart-today"), stacked(charts.today));
  new Chart(document.getElementById("chart-cash"), {
    type: "bar",
    data: {labels: charts.cash.labels, datasets: [
      {label: "Closing cash in hand", data: num(charts.cash.closing), backgroundColor: charts.cash.labels.map((b) => charts.cash.over.includes(b) ? "#c62828" : "#2e7d32")},
      {label: "Limit", data: num(charts.cash.limit), type: "line", borderColor: "#455a64", pointStyle: "line"},
    ]},
    options: {maintainAspectRatio: false, scales: {y: money}},
  });
  new Chart(document.getElementById("chart-pending"), {
    type: "bar",
    data: {labels: ["DCR", "DBS"], datasets: [
      {label: "Waiting (your branches)", data: [charts.pending.dcr, charts.pending.dbs], backgroundColor: "#90a4ae"},
      {label: "Waiting for you", data: [charts.pending.dcr_mine, charts.pending.dbs_mine], backgroundColor: "#1565c0"},
    ]},
    options: {maintainAspectRatio: false, scales: {y: {ticks: {precision: 0}}}},
  });
  new Chart(document.getElementById("chart-not-submitted"), {
    type: "bar",
    data: {labels: charts.not_submitted.labels, datasets: [{label: "DCRs not submitted", data: charts.not_submitted.data, backgroundColor: "#ef6c00"}]},
    options: {maintainAspectRatio: false, scales: {y: {ticks: {precision: 0}}}},
  });
})();
