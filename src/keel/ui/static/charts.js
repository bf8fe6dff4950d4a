// Metric charts of the run and compare pages: each <figure class="metric-chart"> names a metric key and the runs
// to draw (data-series: [{run, label}]); the points come from /ui/data/metrics, already downsampled by the server.
"use strict";

(function () {
  const figures = document.querySelectorAll("figure.metric-chart");
  if (!figures.length || typeof uPlot === "undefined") return;
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  async function series(run, key, points) {
    const query = new URLSearchParams({run: run, key: key, points: String(points)});
    const answer = await fetch("/ui/data/metrics?" + query.toString(), {credentials: "same-origin"});
    if (!answer.ok) return null;  // a run without this key: no line
    return answer.json();
  }

  async function draw(figure) {
    const key = figure.dataset.key;
    const runs = JSON.parse(figure.dataset.series);
    const area = figure.querySelector(".chart-area");
    const note = figure.querySelector(".chart-note");
    const width = area.clientWidth || 520;
    const loaded = await Promise.all(runs.map((r) => series(r.run, key, Math.max(2 * width, 200))));
    const shown = [];
    const tables = [];
    let notes = [];
    loaded.forEach((data, i) => {
      if (!data || !data.steps.length) return;
      shown.push(runs[i]);
      tables.push([data.steps, data.values]);
      if (data.downsampled) notes.push(`${runs[i].label}: ${data.steps.length.toLocaleString()} of ${data.count.toLocaleString()} points (min and max per pixel)`);
      if (data.nonfinite) notes.push(`${runs[i].label}: ${data.nonfinite.toLocaleString()} NaN or infinite values not drawn`);
    });
    if (!tables.length) { note.textContent = "no values"; return; }
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables, tables.map(() => [1]));  // 1: a NaN (null) stays a gap, alignment holes are spanned
    const opts = {
      width: width, height: area.clientHeight || 240,
      scales: {x: {time: false}},
      axes: [{label: "step"}, {}],
      series: [{label: "step"}].concat(shown.map((r, i) => ({label: r.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false}))),
      legend: {show: true},
    };
    area.textContent = "";
    new uPlot(opts, data, area);
    note.textContent = notes.join(" · ");  // text, never markup: run names are the user's
    figure.dataset.drawn = "true";
  }

  figures.forEach((figure) => { draw(figure).catch((e) => { figure.querySelector(".chart-note").textContent = "chart failed: " + e; }); });
})();
