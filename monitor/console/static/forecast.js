// 预测: draw each shop's forecast with the ECharts shipped beside this file (static/vendor), from the figures
// the server embedded as JSON (#forecast-data): the range as a band (low, then high - low stacked on it),
// the point as a line, the target as a dashed line. The table under each chart holds the same numbers.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("forecast-data");
  if (!source || typeof echarts === "undefined") return;
  const doc = JSON.parse(source.textContent);
  const charts = [];
  doc.shops.forEach((shop, i) => {
    const el = document.getElementById("chart-forecast-" + i);
    if (!el) return;
    const values = [...shop.low, ...shop.high, shop.target].filter((v) => v !== null);
    const floor = Math.max(0, Math.floor(Math.min(...values) - 1));
    const band = shop.high.map((h, k) => (h === null || shop.low[k] === null ? null : +(h - shop.low[k]).toFixed(2)));
    const chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 24, top: 40, bottom: 28 },
      legend: { top: 0, data: [doc.labels.range, doc.labels.point, doc.labels.target] },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "—" : v + "%") },
      xAxis: { type: "category", boundaryGap: false, data: shop.days.map((d) => d.slice(5)) },
      yAxis: { type: "value", min: floor, max: 100, axisLabel: { formatter: (v) => v + "%" } },
      series: [
        { name: doc.labels.low, type: "line", data: shop.low, stack: "range", symbol: "none",
          lineStyle: { opacity: 0 }, areaStyle: { opacity: 0 }, tooltip: { show: false } },
        { name: doc.labels.range, type: "line", data: band, stack: "range", symbol: "none",
          lineStyle: { opacity: 0 }, areaStyle: { color: "#91caff", opacity: 0.6 }, itemStyle: { color: "#91caff" } },
        { name: doc.labels.point, type: "line", data: shop.point, symbolSize: 6, lineStyle: { width: 2, color: "#0969da" },
          itemStyle: { color: "#0969da" } },
        { name: doc.labels.target, type: "line", data: shop.days.map(() => shop.target), symbol: "none",
          lineStyle: { type: "dashed", color: "#cf222e", width: 2 }, itemStyle: { color: "#cf222e" } },
      ],
    });
    charts.push(chart);
  });
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
});
