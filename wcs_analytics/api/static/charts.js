/* Small SVG time-series charts: stacked bars, lines and alert markers. No dependencies.
 * WcsCharts.render(element, spec) draws into element and keeps spec for hover tooltips.
 * spec = {times: [ms...], stepMs, series: [{label, color, kind: 'bar'|'line'|'info', values, fmt?}],
 *         format: value -> text, yMax?, integer?: whole-number ticks, markers: [{t, end?, label}]}
 */
"use strict";
const WcsCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const M = { l: 46, r: 10, t: 8, b: 22 };

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  /* Top of the y axis: 4 ticks of a round step (whole numbers for counts). */
  function niceMax(v, integer) {
    if (!(v > 0)) return integer ? 4 : 1;
    const raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      const step = m * p;
      if (integer && (step < 1 || step % 1)) continue;
      if (step >= raw) return step * 4;
    }
    return 40 * p;
  }

  const pad = (n) => String(n).padStart(2, "0");
  function timeLabel(ms, spanMs) {
    const d = new Date(ms);
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return spanMs > 86400000 ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hm}` : hm;
  }

  function yMaxOf(spec) {
    let max = 0;
    spec.times.forEach((_, i) => {
      let stack = 0;
      for (const s of spec.series) {
        const v = s.values[i];
        if (v == null || s.kind === "info") continue;
        if (s.kind === "bar") stack += v; else max = Math.max(max, v);
      }
      max = Math.max(max, stack);
    });
    return spec.yMax || niceMax(max, spec.integer);
  }

  function linePath(values, x, y) {
    let d = "", open = false;
    values.forEach((v, i) => {
      if (v == null) { open = false; return; }
      d += `${open ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    return d;
  }

  function render(host, spec) {
    host.innerHTML = "";
    host._spec = spec;
    const W = Math.max(host.clientWidth, 200), H = Math.max(host.clientHeight, 120);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img" }, host);
    const n = spec.times.length, pw = W - M.l - M.r, ph = H - M.t - M.b;
    const slot = pw / Math.max(n, 1);
    const x = (i) => M.l + slot * (i + 0.5);
    const top = yMaxOf(spec);
    const y = (v) => M.t + ph - (Math.min(v, top) / top) * ph;
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4, yy = y(v);
      el("line", { x1: M.l, x2: W - M.r, y1: yy, y2: yy, class: "grid-line" }, svg);
      el("text", { x: M.l - 6, y: yy + 3, "text-anchor": "end", class: "axis" }, svg).textContent = spec.format(v);
    }
    const span = n ? spec.times[n - 1] - spec.times[0] : 0;
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 70))));
    for (let i = 0; i < n; i += every) {
      el("text", { x: x(i), y: H - 6, "text-anchor": "middle", class: "axis" }, svg).textContent = timeLabel(spec.times[i], span);
    }
    let drawn = 0;
    const bw = Math.max(1, slot * 0.78);
    const base = new Array(n).fill(0);
    for (const s of spec.series.filter((s) => s.kind === "bar")) {
      s.values.forEach((v, i) => {
        if (!(v > 0)) return;
        const y0 = y(base[i]), y1 = y(base[i] + v);
        base[i] += v;
        el("rect", { x: x(i) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1), fill: s.color, class: "bar" }, svg);
        drawn++;
      });
    }
    for (const s of spec.series.filter((s) => s.kind === "line")) {
      const d = linePath(s.values, x, y);
      if (!d) continue;
      el("path", { d, stroke: s.color, class: "line" }, svg);
      s.values.forEach((v, i) => {  // isolated points would be invisible as a path
        const lone = v != null && s.values[i - 1] == null && s.values[i + 1] == null;
        if (lone) el("circle", { cx: x(i), cy: y(v), r: 2.5, fill: s.color, class: "dot" }, svg);
      });
      drawn++;
    }
    drawMarkers(svg, spec, (t) => M.l + ((t - spec.times[0]) / spec.stepMs) * slot, M.t, ph);
    if (!drawn) {
      el("text", { x: M.l + pw / 2, y: M.t + ph / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "No data in this range";
    }
    host.dataset.drawn = String(drawn);
    host.dataset.total = String(spec.series.reduce((a, s) => a + s.values.reduce((b, v) => b + (v || 0), 0), 0));
    hover(host, svg, spec, x, slot, M.t, ph);
  }

  function drawMarkers(svg, spec, xt, y0, ph) {
    const n = spec.times.length;
    if (!n) return;
    const lo = spec.times[0], hi = spec.times[n - 1] + spec.stepMs;
    for (const m of spec.markers || []) {
      if (m.t < lo || m.t >= hi) continue;
      const x0 = xt(m.t);
      if (m.end != null) {
        const x1 = xt(Math.min(m.end, hi));
        el("rect", { x: x0, y: y0, width: Math.max(1, x1 - x0), height: ph, class: "marker-span" }, svg);
      }
      el("line", { x1: x0, x2: x0, y1: y0, y2: y0 + ph, class: "marker" }, svg);
      el("text", { x: x0 + 3, y: y0 + 10, class: "marker-label" }, svg).textContent = m.label;
    }
  }

  function hover(host, svg, spec, x, slot, y0, ph) {
    const tip = document.getElementById("tip");
    const cross = el("line", { y1: y0, y2: y0 + ph, class: "cross", visibility: "hidden" }, svg);
    svg.addEventListener("mousemove", (ev) => {
      const box = svg.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
      const i = Math.floor((px - M.l) / slot);
      if (i < 0 || i >= spec.times.length) { tip.hidden = true; return; }
      cross.setAttribute("x1", x(i)); cross.setAttribute("x2", x(i)); cross.setAttribute("visibility", "visible");
      const rows = spec.series.map((s) => `<div><i style="background:${s.color}"></i>${s.label}<span>${s.values[i] == null ? "–" : (s.fmt || spec.format)(s.values[i])}</span></div>`);
      tip.innerHTML = `<b>${new Date(spec.times[i]).toISOString().slice(0, 16).replace("T", " ")} UTC</b>${rows.join("")}`;
      tip.hidden = false;
      tip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8)}px`;
      tip.style.top = `${ev.clientY + 14}px`;
    });
    svg.addEventListener("mouseleave", () => { tip.hidden = true; cross.setAttribute("visibility", "hidden"); });
  }

  function legend(host, series) {
    host.innerHTML = series.map((s) => `<span><i style="background:${s.color}"></i>${s.label}</span>`).join("");
  }

  return { render, legend, niceMax };
})();
