// Time-series charts of the deployment and monitor pages: each <div class="ts" data-src="/ui/data/..."> is filled with
// the charts its JSON answer lists: {charts: [{title, x: [unix seconds], series: [{label, values}]}]}.
// Titles and labels come from stores: they are set as text, never as markup.
"use strict";

(function () {
  const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#57606a"];

  function draw(box, chart) {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = chart.title;
    figure.appendChild(caption);
    box.appendChild(figure);
    const series = [{}].concat(chart.series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
    })));
    const data = [chart.x].concat(chart.series.map((s) => s.values));
    // eslint-disable-next-line no-undef
    new uPlot({width: 560, height: 220, series: series, scales: {x: {time: true}}}, data, figure);
  }

  document.querySelectorAll("div.ts[data-src]").forEach(async (box) => {
    const note = box.querySelector(".loading");
    try {
      const answer = await fetch(box.dataset.src, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const body = await answer.json();
      if (note) note.remove();
      if (!body.charts.length) {
        const empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = box.dataset.empty || "Nothing to draw yet.";
        box.appendChild(empty);
        return;
      }
      body.charts.forEach((chart) => draw(box, chart));
    } catch (error) {
      if (note) note.textContent = "could not load the chart data: " + error.message;
    }
  });
})();
