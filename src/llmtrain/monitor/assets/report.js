// llmtrain report: draws every chart of the embedded data as SVG, with no external code.
// Hover: values of every visible series at the nearest x. Drag: zoom x. Double-click: reset.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const state = { axis: "step", smooth: 0, hiddenRuns: new Set() };
  const AXIS_LABEL = { step: "step", tokens: "tokens", elapsed_sec: "wall time (s)" };
  const charts = [];
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

  function el(tag, attrs, parent, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v.toPrecision(4)).toString();
  }
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12 * Math.abs(hi); t += step) out.push(t);
    return out;
  }
  function decades(ly0, ly1) {
    const lo = Math.ceil(ly0), hi = Math.floor(ly1), stride = Math.max(1, Math.ceil((hi - lo + 1) / 6));
    const out = [];
    for (let e = lo; e <= hi; e += stride) out.push(Math.pow(10, e));
    return out;
  }
  function ema(ys, alpha) {
    if (!alpha) return ys;
    let m = null, k = 0;
    return ys.map(y => {
      if (y === null) return null;
      k += 1; m = m === null ? y : alpha * m + (1 - alpha) * y;
      return m / 1; // debiasing is unnecessary: the first value seeds the average
    });
  }

  // one drawn line: run r, source (train/eval), metric key
  function seriesOf(spec) {
    const out = [];
    DATA.runs.forEach((run, ri) => {
      for (const src of ["train", "eval"]) {
        const cols = run.series[src];
        for (const key of spec.keys) {
          if (!cols[key] || !cols[key].some(v => v !== null)) continue;
          const multi = DATA.runs.length > 1, many = spec.keys.length > 1;
          const label = (multi ? run.name + " " : "") + (many || !multi ? key : "");
          const ki = spec.keys.indexOf(key);
          // one run: a colour per metric; several runs: a colour per run, dashes per metric
          const color = multi ? run.color : PALETTE[ki % PALETTE.length];
          out.push({ ri, src, key, label: label.trim(), color, dash: src === "eval" || (multi && ki > 0), hidden: false });
        }
      }
    });
    return out;
  }

  function points(s) {
    const cols = DATA.runs[s.ri].series[s.src];
    const xs = cols[state.axis] || cols.step, ys = s.src === "eval" ? cols[s.key] : ema(cols[s.key], state.smooth);
    const pts = [];
    for (let i = 0; i < ys.length; i++) if (ys[i] !== null && xs[i] !== null && xs[i] !== undefined) pts.push([xs[i], ys[i]]);
    return pts;
  }

  function makeChart(spec, parent) {
    const box = el("div", { class: "chart", id: spec.id }, parent);
    const h = el("h3", {}, box, spec.title);
    const logLabel = el("label", {}, h);
    const logBox = el("input", { type: "checkbox" }, logLabel);
    logBox.checked = !!spec.log;
    logLabel.appendChild(document.createTextNode(" log y"));
    const svg = el("svg:svg", { viewBox: "0 0 560 260", preserveAspectRatio: "none", "data-title": spec.title }, box);
    const legend = el("div", { class: "legend" }, box);
    const tip = el("div", { class: "tip" }, box);
    const chart = { spec, svg, tip, logBox, series: seriesOf(spec), zoom: null };
    chart.series.forEach(s => {
      const item = el("span", {}, legend);
      el("span", { class: "swatch", style: `background:${s.color};opacity:${s.dash ? 0.6 : 1}` }, item);
      item.appendChild(document.createTextNode(s.label + (s.src === "eval" && !s.key.startsWith("val_") ? " (eval)" : "")));
      item.onclick = () => { s.hidden = !s.hidden; item.classList.toggle("off", s.hidden); draw(chart); };
    });
    logBox.onchange = () => draw(chart);
    attachInteraction(chart);
    charts.push(chart);
    return chart;
  }

  const M = { l: 58, r: 12, t: 8, b: 30 }, W = 560, H = 260;

  function draw(chart) {
    const { svg } = chart;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const log = chart.logBox.checked;
    const visible = chart.series.filter(s => !s.hidden && !state.hiddenRuns.has(s.ri));
    const data = visible.map(s => ({ s, pts: points(s).filter(p => !log || p[1] > 0) }));
    let xs = data.flatMap(d => d.pts.map(p => p[0]));
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (chart.zoom) [x0, x1] = chart.zoom;
    const inView = data.flatMap(d => d.pts.filter(p => p[0] >= x0 && p[0] <= x1).map(p => p[1]));
    let y0 = Math.min(...inView), y1 = Math.max(...inView);
    if (!isFinite(x0) || !isFinite(y0)) { el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg, "no data"); svg.dataset.points = 0; return; }
    if (x1 === x0) { x1 = x0 + 1; }
    const ty = log ? v => Math.log10(v) : v => v;
    let ly0 = ty(y0), ly1 = ty(y1);
    if (ly1 === ly0) { ly0 -= 0.5; ly1 += 0.5; }
    const pad = 0.04 * (ly1 - ly0); ly0 -= pad; ly1 += pad;
    const sx = v => M.l + (v - x0) / (x1 - x0) * (W - M.l - M.r);
    const sy = v => H - M.b - (ty(v) - ly0) / (ly1 - ly0) * (H - M.t - M.b);
    chart.scale = { sx, x0, x1, data };
    const grid = el("svg:g", { class: "grid" }, svg), axis = el("svg:g", { class: "axis" }, svg);
    for (const t of niceTicks(x0, x1, 6)) {
      el("svg:line", { x1: sx(t), x2: sx(t), y1: M.t, y2: H - M.b }, grid);
      el("svg:text", { x: sx(t), y: H - M.b + 14, "text-anchor": "middle" }, axis, fmt(t));
    }
    const yt = !log ? niceTicks(ly0, ly1, 5)
      : ly1 - ly0 < 1.5 ? niceTicks(Math.pow(10, ly0), Math.pow(10, ly1), 5).filter(t => t > 0)
      : decades(ly0, ly1);
    for (const t of yt) {
      el("svg:line", { x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t) }, grid);
      el("svg:text", { x: M.l - 4, y: sy(t) + 4, "text-anchor": "end" }, axis, fmt(t));
    }
    el("svg:text", { x: (W + M.l) / 2, y: H - 3, "text-anchor": "middle" }, axis, AXIS_LABEL[state.axis]);
    el("svg:rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "none", stroke: "#ccc" }, svg);
    if (state.axis === "step" && chart.spec.keys.includes("loss")) drawCheckpoints(chart, svg, sx, x0, x1);
    const clip = "clip-" + chart.spec.id;
    const cp = el("svg:clipPath", { id: clip }, svg);
    el("svg:rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }, cp);
    let total = 0;
    for (const { s, pts } of data) {
      const d = pts.map((p, i) => (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join("");
      el("svg:path", { class: "series", d, fill: "none", stroke: s.color, "stroke-width": 1.6, "stroke-dasharray": s.dash ? "5,3" : "", "clip-path": `url(#${clip})`, "data-points": pts.length, "data-label": s.label }, svg);
      if (s.src === "eval" && pts.length < 200) for (const p of pts) el("svg:circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color, "clip-path": `url(#${clip})` }, svg);
      total += pts.length;
    }
    chart.cursor = el("svg:line", { y1: M.t, y2: H - M.b, stroke: "#888", "stroke-dasharray": "2,2", visibility: "hidden" }, svg);
    chart.band = el("svg:rect", { y: M.t, height: H - M.t - M.b, fill: "rgba(31,119,180,0.15)", visibility: "hidden" }, svg);
    svg.dataset.points = total;
  }

  function drawCheckpoints(chart, svg, sx, x0, x1) {
    DATA.runs.forEach((run, ri) => {
      if (state.hiddenRuns.has(ri)) return;
      for (const c of run.checkpoints) if (c.step >= x0 && c.step <= x1) {
        const ln = el("svg:line", { x1: sx(c.step), x2: sx(c.step), y1: M.t, y2: M.t + 8, stroke: run.color, "stroke-width": 2 }, svg);
        el("svg:title", {}, ln, `checkpoint step ${c.step} (${run.name})`);
      }
    });
  }

  function svgX(chart, evt) {
    const r = chart.svg.getBoundingClientRect();
    return (evt.clientX - r.left) / r.width * W;
  }
  function attachInteraction(chart) {
    let dragFrom = null;
    chart.svg.addEventListener("mousemove", evt => {
      if (!chart.scale) return;
      const px = svgX(chart, evt), { sx, x0, x1, data } = chart.scale;
      const xv = x0 + (px - M.l) / (W - M.l - M.r) * (x1 - x0);
      if (dragFrom !== null) {
        chart.band.setAttribute("x", Math.min(dragFrom, px)); chart.band.setAttribute("width", Math.abs(px - dragFrom));
        chart.band.setAttribute("visibility", "visible");
      }
      const rows = [];
      let snapX = null;
      for (const { s, pts } of data) {
        if (!pts.length) continue;
        let best = pts[0];
        for (const p of pts) if (Math.abs(p[0] - xv) < Math.abs(best[0] - xv)) best = p;
        if (snapX === null) snapX = best[0];
        rows.push(`<span class="swatch" style="background:${s.color}"></span>${s.label}: <b>${fmt(best[1])}</b> @ ${fmt(best[0])}`);
      }
      if (snapX === null) return;
      chart.cursor.setAttribute("x1", sx(snapX)); chart.cursor.setAttribute("x2", sx(snapX));
      chart.cursor.setAttribute("visibility", "visible");
      chart.tip.innerHTML = `${AXIS_LABEL[state.axis]} ≈ ${fmt(xv)}<br>` + rows.join("<br>");
      chart.tip.style.display = "block";
      chart.tip.style.left = Math.min(evt.offsetX + 14, chart.svg.clientWidth - 160) + "px";
      chart.tip.style.top = (evt.offsetY + 30) + "px";
    });
    chart.svg.addEventListener("mouseleave", () => { chart.tip.style.display = "none"; if (chart.cursor) chart.cursor.setAttribute("visibility", "hidden"); });
    chart.svg.addEventListener("mousedown", evt => { dragFrom = svgX(chart, evt); });
    window.addEventListener("mouseup", evt => {
      if (dragFrom === null) return;
      const to = svgX(chart, evt), from = dragFrom; dragFrom = null;
      chart.band.setAttribute("visibility", "hidden");
      if (Math.abs(to - from) < 5 || !chart.scale) return;
      const { x0, x1 } = chart.scale, inv = p => x0 + (p - M.l) / (W - M.l - M.r) * (x1 - x0);
      chart.zoom = [inv(Math.min(from, to)), inv(Math.max(from, to))];
      draw(chart);
    });
    chart.svg.addEventListener("dblclick", () => { chart.zoom = null; draw(chart); });
  }

  function controls() {
    const c = document.getElementById("controls");
    const axisLabel = el("label", {}, c, "x axis ");
    const sel = el("select", { id: "axis" }, axisLabel);
    for (const a of DATA.axes) el("option", { value: a }, sel, AXIS_LABEL[a]);
    sel.onchange = () => { state.axis = sel.value; charts.forEach(ch => { ch.zoom = null; draw(ch); }); };
    const smLabel = el("label", {}, c, "smoothing ");
    const sm = el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, id: "smoothing" }, smLabel);
    const smVal = el("span", {}, smLabel, " 0");
    sm.oninput = () => { state.smooth = Number(sm.value); smVal.textContent = " " + sm.value; charts.forEach(draw); };
    DATA.runs.forEach((run, ri) => {
      const l = el("label", {}, c);
      const box = el("input", { type: "checkbox" }, l); box.checked = true;
      el("span", { class: "swatch", style: `background:${run.color}` }, l);
      l.appendChild(document.createTextNode(run.name));
      box.onchange = () => { box.checked ? state.hiddenRuns.delete(ri) : state.hiddenRuns.add(ri); charts.forEach(draw); };
    });
    el("span", { style: "color:#777" }, c, "drag on a plot to zoom, double-click to reset · generated " + DATA.generated);
  }

  function summary() {
    const sec = document.getElementById("summary");
    el("h2", {}, sec, "Runs");
    const t = el("table", { class: "summary" }, sec), hr = el("tr", {}, t);
    const cols = [["run", null], ["step", "step"], ["tokens", "tokens"], ["wall time (s)", "elapsed_sec"], ["last train loss", "last_loss"], ["best val loss", "best_val_loss"], ["at step", "best_val_step"], ["val bpb", "last_val_bpb"], ["tokens/s (median)", "median_tokens_per_sec"], ["checkpoints", "checkpoints"]];
    for (const [h] of cols) el("th", {}, hr, h);
    for (const run of DATA.runs) {
      const tr = el("tr", {}, t), s = run.summary;
      const first = el("td", {}, tr);
      el("span", { class: "swatch", style: `background:${run.color}` }, first);
      first.appendChild(document.createTextNode(run.name));
      for (const [, k] of cols.slice(1)) el("td", {}, tr, k === "step" && s.max_steps ? `${s.step} / ${s.max_steps}` : fmt(s[k]));
    }
  }

  function diagnosis() {
    const sec = document.getElementById("diagnosis");
    el("h2", {}, sec, "Diagnosis");
    for (const run of DATA.runs) {
      if (DATA.runs.length > 1) el("h3", {}, sec, run.name);
      if (!run.findings.length) el("p", { class: "ok" }, sec, "No problems found by the rules.");
      for (const f of run.findings) {
        const d = el("div", { class: "finding " + f.severity, "data-rule": f.rule }, sec);
        el("span", { class: "sev" }, d, f.severity);
        el("b", {}, d, f.title);
        el("div", {}, d, "Evidence: " + f.evidence);
        el("div", { class: "fix" }, d, "Suggestion: " + f.suggestion);
      }
    }
  }

  // a fine-tuned classifier: the confusion matrix (rows true, columns predicted; cells shaded
  // by their share of the true class) and precision / recall / F1 per class, per split
  function classifier() {
    const runs = DATA.runs.filter(r => r.classifier);
    if (!runs.length) return;
    const sec = document.getElementById("classifier");
    el("h2", {}, sec, "Classifier");
    let cells = 0;
    for (const run of runs) {
      const names = run.classifier.labels;
      for (const [split, m] of Object.entries(run.classifier.splits)) {
        const head = [`${DATA.runs.length > 1 ? run.name + " " : ""}${split}`,
          `accuracy ${fmt(m.accuracy)}`, `macro-F1 ${fmt(m.macro_f1)}`];
        if (m.roc_auc !== undefined) head.push(`ROC-AUC ${fmt(m.roc_auc)}`);
        el("h3", {}, sec, head.join(", "));
        const wrap = el("div", { class: "classifier" }, sec);
        const t = el("table", { class: "confusion", "data-split": split }, wrap);
        const hr = el("tr", {}, t);
        el("th", {}, hr, "true \\ predicted");
        names.forEach(n => el("th", {}, hr, n));
        (m.confusion || []).forEach((row, i) => {
          const tr = el("tr", {}, t), total = row.reduce((a, b) => a + b, 0) || 1;
          el("th", {}, tr, names[i] !== undefined ? names[i] : String(i));
          row.forEach((v, j) => {
            const share = v / total;
            el("td", { style: `background: rgba(31,119,180,${(0.85 * share).toFixed(3)});` +
              (share > 0.5 ? " color: #fff;" : ""), title: `${(100 * share).toFixed(1)} % of true ${names[i]}`,
              class: i === j ? "diag" : "" }, tr, String(v));
            cells += 1;
          });
        });
        const pc = el("table", { class: "per-class" }, wrap);
        const ph = el("tr", {}, pc);
        for (const h of ["class", "precision", "recall", "F1", "support"]) el("th", {}, ph, h);
        for (const [name, c] of Object.entries(m.per_class || {})) {
          const tr = el("tr", {}, pc);
          el("td", {}, tr, name);
          for (const k of ["precision", "recall", "f1", "support"]) el("td", {}, tr, fmt(c[k]));
        }
      }
    }
    sec.dataset.cells = String(cells);
  }

  function details() {
    const sec = document.getElementById("details");
    el("h2", {}, sec, "Configuration, data and checkpoints");
    for (const run of DATA.runs) {
      for (const [title, obj] of [["config.json", run.config], ["data manifest", run.manifest], ["checkpoints", run.checkpoints], ["events", run.events]]) {
        if (!obj || (Array.isArray(obj) && !obj.length)) continue;
        const d = el("details", {}, sec);
        el("summary", {}, d, `${run.name}: ${title}`);
        el("pre", {}, d, JSON.stringify(obj, null, 2));
      }
    }
  }

  controls(); summary(); diagnosis(); classifier();
  const parent = document.getElementById("charts");
  for (const spec of DATA.charts) draw(makeChart(spec, parent));
  details();
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.rendered = "1";
})();
