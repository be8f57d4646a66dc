// 指标: draw each chart of the page with the ECharts shipped beside this file (static/vendor), from the
// figures the server embedded as JSON (#kpi-data). The tables under the charts hold the same numbers,
// so the page still says everything without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("kpi-data");
  if (!source || typeof echarts === "undefined") return;
  const doc = JSON.parse(source.textContent);
  const days = doc.days.map((d) => d.slice(5)); // MM-DD: the year is in the page's title
  const suffix = { percent: "%", count: "", seconds: "s", hours: "h", yuan: "" };
  const charts = [];
  for (const spec of doc.charts) {
    const el = document.getElementById("chart-" + spec.name);
    if (!el) continue;
    const chart = echarts.init(el, null, { renderer: "canvas" });
    const yAxis = spec.axes.map((unit, i) => ({
      type: "value",
      name: doc.units[unit],
      position: i === 0 ? "left" : "right",
      min: 0,
      max: unit === "percent" ? 100 : null,
      splitLine: { show: i === 0 },
      axisLabel: { formatter: (v) => (unit === "yuan" ? "¥" : "") + v + suffix[unit] },
    }));
    const series = spec.series.map((s) => ({
      name: s.name,
      type: s.kind,
      data: s.data,
      yAxisIndex: s.axis,
      stack: s.stack || undefined,
      connectNulls: false,
      showSymbol: !s.dashed,
      symbolSize: 5,
      lineStyle: s.dashed ? { type: "dashed", width: 2 } : undefined,
      barMaxWidth: 18,
    }));
    chart.setOption({
      animation: false,
      grid: { left: 56, right: spec.axes.length > 1 ? 56 : 24, top: 48, bottom: 28 },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: days },
      yAxis: yAxis,
      series: series,
    });
    charts.push(chart);
  }
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
});
