/* immunoplan front-end helpers (no inline scripts: CSP script-src 'self').
   - charts: <canvas data-chart="ID"> + <script type="application/json" id="ID"> (Chart.js config data)
   - observation timer: <div data-timer-start="ISO" data-timer-minutes="30"> counts down to the end. */
(function () {
  function initCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.ready) return;
      var src = document.getElementById(canvas.dataset.chart);
      if (!src) return;
      var spec = JSON.parse(src.textContent);
      canvas.dataset.ready = "1";
      new Chart(canvas, {
        type: "line",
        data: { labels: spec.labels, datasets: spec.datasets.map(function (d, i) {
          var colors = ["#0b5394", "#a40000", "#14632b", "#6b4a00"];
          return { label: d.label, data: d.data, borderColor: colors[i % 4], backgroundColor: colors[i % 4],
                   spanGaps: true, tension: 0 };
        }) },
        options: { animation: false, maintainAspectRatio: false, responsive: true,
                   plugins: { legend: { display: true } },
                   scales: { y: { title: { display: !!spec.y_label, text: spec.y_label || "" } } } }
      });
    });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tickTimers() {
    document.querySelectorAll("[data-timer-start]").forEach(function (el) {
      var start = Date.parse(el.dataset.timerStart);
      var minutes = parseFloat(el.dataset.timerMinutes || "30");
      var left = Math.round((start + minutes * 60000 - Date.now()) / 1000);
      var out = el.querySelector(".timer");
      if (!out) return;
      if (left <= 0) {
        out.textContent = "00:00";
        out.classList.add("done");
        var msg = el.querySelector(".timer-status");
        if (msg) msg.textContent = "Observation period complete: reassess before the patient leaves.";
      } else {
        out.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
    tickTimers();
    setInterval(tickTimers, 1000);
  });
  document.addEventListener("htmx:afterSettle", function (e) { initCharts(e.target); tickTimers(); });
})();
document.addEventListener("click", function (e) {
  var t = e.target.closest && e.target.closest("[data-print]");
  if (t) { e.preventDefault(); window.print(); }
});
