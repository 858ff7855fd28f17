// SPDX-License-Identifier: GPL-2.0-or-later
// A domain's charts (Chart.js from Debian's libjs-chart.js, served under /chartjs/): the points
// tetherd keeps from the monitor (GET /api/domains/NAME/history), read again every 10 s.
"use strict";

const CHARTS = [
  {id: "chart-cpu", title: "CPU (%)", series: [["cpu", "CPU"]], fmt: (v) => v.toFixed(1) + " %"},
  {id: "chart-memory", title: "Guest memory used", series: [["memory", "used"]],
   fmt: (v) => tether.bytes(v)},
  {id: "chart-disk", title: "Disk (per second)",
   series: [["disk_read", "read"], ["disk_write", "write"]], fmt: (v) => tether.bytes(v) + "/s"},
  {id: "chart-net", title: "Network (per second)",
   series: [["net_rx", "received"], ["net_tx", "sent"]], fmt: (v) => tether.bytes(v) + "/s"},
  {id: "chart-rootfs", title: "Root filesystem used (%)", series: [["rootfs", "used"]],
   fmt: (v) => v.toFixed(1) + " %"},
];
const COLORS = ["#1f77b4", "#d62728"];

const charts = {};   // id -> Chart
window.tetherCharts = charts;

function makeChart(c) {
  const canvas = document.getElementById(c.id);
  return new Chart(canvas, {
    type: "line",
    data: {labels: [], datasets: c.series.map(([, label], i) => ({
      label, data: [], borderColor: COLORS[i], backgroundColor: COLORS[i],
      pointRadius: 0, borderWidth: 1.5, spanGaps: false}))},
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {title: {display: true, text: c.title}, legend: {display: c.series.length > 1},
                tooltip: {callbacks: {
                  label: (ctx) => `${ctx.dataset.label}: ${c.fmt(ctx.parsed.y)}`}}},
      scales: {y: {beginAtZero: true, ticks: {callback: (v) => c.fmt(Number(v))}},
               x: {ticks: {maxTicksLimit: 8}}},
    },
  });
}

function showHistory(h) {
  const labels = h.t.map((t) => new Date(t * 1000).toLocaleTimeString());
  for (const c of CHARTS) {
    const chart = charts[c.id] || (charts[c.id] = makeChart(c));
    chart.data.labels = labels;
    c.series.forEach(([key], i) => { chart.data.datasets[i].data = h[key]; });
    chart.update("none");
  }
  document.getElementById("charts-note").textContent = h.points ?
    `${h.points} points, one per monitor round.` :
    "No points yet: they come from the monitor while the domain runs.";
}

// Read again once per monitor round (the last two points' distance), 2 to 10 s.
async function refreshHistory() {
  let period = 10;
  try {
    const h = await tether.get(`/api/domains/${encodeURIComponent(name)}/history`);
    showHistory(h);
    if (h.t.length >= 2)
      period = Math.min(10, Math.max(2, h.t[h.t.length - 1] - h.t[h.t.length - 2]));
  } catch (e) {
    document.getElementById("charts-note").textContent = "Charts: " + e.message;
  }
  setTimeout(refreshHistory, period * 1000);
}

if (typeof Chart === "undefined") {
  document.getElementById("charts-note").textContent =
    "Chart.js is not installed on the host (Debian's libjs-chart.js).";
} else {
  refreshHistory();
}
