// nnlab report.html, its shared part: draws the Explore section from the JSON in #nnlab-data as
// SVG. Here: the scales and ticks, the palette, the tooltip, the filter and the smoothing, and
// the chart of lines against the step (its legend, zoom, pan and log switches) that draws the
// curves; panels.js draws the layer statistics and the parallel coordinates with these,
// through window.nnlabReport. explore.script() inlines both into the one offline page.
// Curves and layer statistics: hover to read the nearest point's run, step and value (for a
// group of seeds: the median, its interquartile range and n); the legend hides a line (click)
// or shows only it (double-click, Alt-click); drag a box to zoom, Shift-drag to pan,
// double-click to reset; buttons switch each axis between linear and log. One smoothing
// slider (an exponential moving average, as TensorBoard's) and one filter (key=value terms)
// act on every chart. Every text from the data goes in through textContent, never as markup.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  // 10 qualitative colours (Tableau 10) × 4 dash patterns keep 40 lines apart; past that,
  // hues spaced by the golden angle with alternating lightness
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  var DASHES = ["", "7 3", "2 2.5", "10 3 2 3"];
  var source = document.getElementById("nnlab-data");  // report.html's; serve's page fetches
  var data = null;
  var tip = document.getElementById("tip");
  var views = [];  // everything drawn, redrawn when the filter or the smoothing changes
  var shared = { filter: { terms: [] }, smooth: 0 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(name, attrs, parent) {
    var node = document.createElement(name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, attrs) {
    var node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }
  function lineStyle(i) {
    if (i < COLORS.length * DASHES.length) {
      return { color: COLORS[i % COLORS.length], dash: DASHES[Math.floor(i / COLORS.length)] };
    }
    var hue = Math.round((i * 137.508) % 360);
    return { color: "hsl(" + hue + ",65%," + (i % 2 ? 32 : 52) + "%)", dash: DASHES[i % 4] };
  }

  // -- numbers ---------------------------------------------------------------------------
  function sig(v, p) { return Number(v.toPrecision(p)); }
  function fmt(v, percent) {  // a value read in a tooltip
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (percent) return (100 * v).toFixed(2) + "%";
    if (Math.abs(v) >= 1e4) return Math.round(v).toLocaleString("en-US");
    return String(sig(v, 4));
  }
  function short(v) {  // a tick: 10k, 1.5M, 2,500, 0.25, 0.001, 5e-4, 1e-5
    var a = Math.abs(v);
    if (v === 0) return "0";
    if (a >= 1e9) return sig(v / 1e9, 3) + "G";
    if (a >= 1e6) return sig(v / 1e6, 3) + "M";
    if (a >= 1e4) return sig(v / 1e3, 3) + "k";
    if (a >= 1000) return sig(v, 4).toLocaleString("en-US");
    if (a < 1e-3) {
      var e = Math.floor(Math.log10(a) + 1e-9), m = sig(v / Math.pow(10, e), 3);
      return m + "e" + e;
    }
    return String(sig(v, 6));
  }
  function tickText(v, percent) { return percent ? short(sig(100 * v, 6)) + "%" : short(v); }
  function niceTicks(lo, hi, n) {
    var raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    var step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p, out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Number(t.toPrecision(12)));
    }
    return out;
  }
  function logTicks(lo, hi) {
    var out = [], ones = [];
    for (var k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
      [1, 2, 5].forEach(function (m) {
        var v = Number((m * Math.pow(10, k)).toPrecision(12));
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) { out.push(v); if (m === 1) ones.push(v); }
      });
    }
    if (ones.length > 8) return ones.filter(function (v, i) { return i % 2 === 0; });
    if (out.length > 8 && ones.length >= 2) return ones;
    return out.length >= 3 ? out : niceTicks(lo, hi, 4).filter(function (v) { return v > 0; });
  }
  // A linear or log scale from [lo, hi] to pixels [a, b], its inverse and its ticks.
  function scale(lo, hi, a, b, log) {
    if (!(hi > lo)) {
      if (log) { hi = lo * 10; lo = lo / 10; } else { var d = Math.abs(lo) / 10 || 1; hi = lo + d; lo = lo - d; }
    }
    var t = log ? Math.log10 : function (v) { return v; };
    var l = t(lo), h = t(hi);
    var f = function (v) { return a + (t(v) - l) / (h - l) * (b - a); };
    f.invert = function (p) { var v = l + (p - a) / (b - a) * (h - l); return log ? Math.pow(10, v) : v; };
    f.ticks = function (n) { return log ? logTicks(lo, hi) : niceTicks(lo, hi, n); };
    f.domain = [lo, hi];
    return f;
  }
  // The y range of the drawn points, padded a little (on a log axis, by a factor).
  function padded(lo, hi, log) {
    if (!(hi > lo)) return [lo, hi];
    if (log) { var r = Math.pow(hi / lo, 0.04); return [lo / r, hi * r]; }
    var d = (hi - lo) * 0.04;
    return [lo - d, hi + d];
  }
  // TensorBoard's smoothing: an exponential moving average, debiased at the start.
  function ema(values, w) {
    if (!w) return values;
    var last = 0, k = 0;
    return values.map(function (v) {
      if (v === null) return null;
      k += 1;
      last = last * w + (1 - w) * v;
      return last / (1 - Math.pow(w, k));
    });
  }

  // -- tooltip ---------------------------------------------------------------------------
  function showTip(lines, event) {
    tip.textContent = "";
    lines.forEach(function (line, i) {
      var div = html("div", {}, tip);
      div.textContent = line;
      if (i === 0) div.className = "tip-head";
    });
    tip.hidden = false;
    tip.style.left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = event.clientY + 14 + "px";
  }
  function hideTip() { tip.hidden = true; }

  // -- the filter: "key=value" terms (also !=, <, <=, >, >=) joined by ";", or any text ----
  var KEYS = {};
  function noteKeys(keys) { for (var k in keys || {}) KEYS[k] = true; }
  function norm(v) { return String(v).replace(/[\s"']/g, "").toLowerCase(); }
  function resolveKey(k) {
    if (KEYS[k]) return k;
    var found = Object.keys(KEYS).filter(function (key) { return key.endsWith("." + k); });
    return found.length === 1 ? found[0] : null;
  }
  function parseFilter(input) {
    var terms = [], bad = [];
    input.split(/\s*;\s*|\s+and\s+/).forEach(function (raw) {
      raw = raw.trim();
      if (!raw) return;
      var m = /^([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|=|<|>)\s*(.*)$/.exec(raw);
      if (!m) { terms.push({ text: raw.toLowerCase() }); return; }
      var key = resolveKey(m[1]);
      if (key === null) { bad.push(m[1]); return; }
      terms.push({ key: key, op: m[2] === "==" ? "=" : m[2], value: m[3] });
    });
    return { terms: terms, bad: bad };
  }
  function holds(term, line) {
    var keys = line.keys || {};
    if (term.text !== undefined) {
      if (line.name.toLowerCase().indexOf(term.text) >= 0) return true;
      return Object.keys(keys).some(function (k) {
        return (k + "=" + norm(keys[k])).toLowerCase().indexOf(norm(term.text)) >= 0;
      });
    }
    if (!(term.key in keys) || keys[term.key] === null) return term.op === "!=";
    var v = keys[term.key], num = Number(term.value);
    if (Array.isArray(v)) {  // a group of jobs (its seeds): a term holds for one of them
      return v.some(function (one) {
        var single = {};
        single[term.key] = one;
        return holds(term, { name: line.name, keys: single });
      });
    }
    var same = norm(v) === norm(term.value) || (typeof v === "number" && term.value !== "" && v === num);
    if (term.op === "=") return same;
    if (term.op === "!=") return !same;
    if (typeof v !== "number" || isNaN(num)) return false;
    return term.op === "<" ? v < num : term.op === "<=" ? v <= num : term.op === ">" ? v > num : v >= num;
  }
  function passes(line) {
    return shared.filter.terms.every(function (term) { return holds(term, line); });
  }

  // -- a chart of lines against the step -------------------------------------------------
  // opts: title, note, xlabel, ylabel, percent, log (y at first), cls, index, lines() (each
  // line: name, x, y, lo/hi/n/n_range for a band, keys, style index)
  function Chart(host, opts) {
    var W = 760, H = 340, L = 70, R = 16, T = 30, B = 46;
    var self = { hidden: {}, xlog: false, ylog: !!opts.log, zoom: { x: null, y: null } };
    var box = html("figure", { "class": "chart" }, host);
    var bar = html("div", { "class": "toolbar" }, box);
    function button(label, cls, action) {
      var b = html("button", { type: "button", "class": cls }, bar);
      b.textContent = label;
      b.addEventListener("click", action);
      return b;
    }
    var ybtn = button("y: log", "ylog", function () { self.ylog = !self.ylog; self.zoom.y = null; render(); });
    var xbtn = button("x: log", "xlog", function () { self.xlog = !self.xlog; self.zoom.x = null; render(); });
    button("reset zoom", "reset", function () { self.zoom = { x: null, y: null }; render(); });
    if (opts.toolbar) opts.toolbar(bar);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H,
      "class": opts.cls, "data-chart": opts.index, role: "img" }, box);
    var clipId = "clip-" + opts.cls + "-" + opts.index;
    el("rect", { x: L, y: T, width: W - L - R, height: H - T - B }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    var content = el("g", {}, svg);
    var marker = el("circle", { r: 4, "class": "marker", visibility: "hidden" }, svg);
    var zoombox = el("rect", { "class": "zoombox", visibility: "hidden" }, svg);
    var legend = html("ul", { "class": "legend" }, box);
    var sx, sy, drawn = [], drag = null, items = {}, legendNames = null;

    function points(line) {  // [step, value, band's low edge, high edge, n, raw value]
      var y = ema(line.y, shared.smooth), lo = line.lo && ema(line.lo, shared.smooth),
        hi = line.hi && ema(line.hi, shared.smooth), pts = [];
      line.x.forEach(function (x, j) {
        if (y[j] === null || (self.xlog && x <= 0) || (self.ylog && y[j] <= 0)) return;
        var l = lo && lo[j] !== null ? lo[j] : y[j], h = hi && hi[j] !== null ? hi[j] : y[j];
        if (self.ylog && l <= 0) l = y[j];
        pts.push([x, y[j], l, h, line.n ? line.n[j] : 1, line.y[j]]);
      });
      return pts;
    }
    function render() {
      var lines = opts.lines();
      content.textContent = "";
      drawn = [];
      ybtn.textContent = self.ylog ? "y: log ✓" : "y: log";
      xbtn.textContent = self.xlog ? "x: log ✓" : "x: log";
      ybtn.setAttribute("aria-pressed", self.ylog);
      xbtn.setAttribute("aria-pressed", self.xlog);
      var shown = lines.filter(function (l) { return !self.hidden[l.name] && passes(l); });
      var xs = [], ys = [];
      var sets = shown.map(function (line) {
        var pts = points(line);
        pts.forEach(function (p) { xs.push(p[0]); ys.push(p[2], p[3]); });
        return pts;
      });
      text(content, L, 18, opts.title(), { "class": "title" });
      if (opts.note) text(content, W - R, 18, opts.note, { "text-anchor": "end", "class": "note" });
      text(content, (L + W - R) / 2, H - 6, opts.xlabel, { "text-anchor": "middle", "class": "xlabel" });
      text(content, 14, (T + H - B) / 2, opts.ylabel(), { "text-anchor": "middle", "class": "ylabel",
        transform: "rotate(-90 14 " + (T + H - B) / 2 + ")" });
      var xr = self.zoom.x || (xs.length ? [Math.min.apply(null, xs), Math.max.apply(null, xs)] : [self.xlog ? 1 : 0, 1]);
      var yr = self.zoom.y || (ys.length ? padded(Math.min.apply(null, ys), Math.max.apply(null, ys), self.ylog)
        : [self.ylog ? 0.1 : 0, 1]);
      sx = scale(xr[0], xr[1], L, W - R, self.xlog);
      sy = scale(yr[0], yr[1], H - B, T, self.ylog);
      svg.setAttribute("data-x-domain", sx.domain.join(" "));
      svg.setAttribute("data-y-domain", sy.domain.join(" "));
      svg.setAttribute("data-y-scale", self.ylog ? "log" : "linear");
      svg.setAttribute("data-x-scale", self.xlog ? "log" : "linear");
      var axes = el("g", { "class": "axes" }, content);
      sy.ticks(5).forEach(function (t) {
        el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), "class": "grid" }, axes);
        text(axes, L - 6, sy(t) + 4, tickText(t, opts.percent), { "text-anchor": "end", "class": "ytick" });
      });
      sx.ticks(6).forEach(function (t) {
        el("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, "class": "grid" }, axes);
        text(axes, sx(t), H - B + 16, tickText(t, false), { "text-anchor": "middle", "class": "xtick" });
      });
      el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, "class": "frame" }, axes);
      var plot = el("g", { "clip-path": "url(#" + clipId + ")" }, content);
      function path(pts, k) { return pts.map(function (p) { return sx(p[0]) + "," + sy(p[k]); }).join(" "); }
      shown.forEach(function (line, i) {
        var pts = sets[i], st = lineStyle(line.style);
        if (!pts.length) return;
        if (line.n) {
          var lower = pts.slice().reverse().map(function (p) { return sx(p[0]) + "," + sy(p[2]); });
          el("polygon", { points: path(pts, 3) + " " + lower.join(" "), fill: st.color, "class": "band" }, plot);
        }
        if (shared.smooth) el("polyline", { points: path(pts, 5), stroke: st.color, "class": "raw" }, plot);
        el("polyline", { points: path(pts, 1), stroke: st.color, "stroke-dasharray": st.dash,
          "class": "line", "data-name": line.name }, plot);
        drawn.push({ line: line, pts: pts, color: st.color });
      });
      if (!drawn.length) text(content, (L + W - R) / 2, (T + H - B) / 2, "no line to draw (hidden or filtered out)",
        { "text-anchor": "middle", "class": "note" });
      var names = lines.map(function (l) { return l.name; }).join("\n");
      if (names !== legendNames) buildLegend(lines);
      legendNames = names;
      lines.forEach(function (line) {
        var item = items[line.name];
        item.classList.toggle("off", !!self.hidden[line.name]);
        item.classList.toggle("filtered", !passes(line));
      });
    }
    // The legend is built once per set of lines (the layer statistics' selects change it),
    // so that a double-click's two clicks land on one entry: the second isolates.
    function buildLegend(lines) {
      legend.textContent = "";
      items = {};
      lines.forEach(function (line) {
        var st = lineStyle(line.style), item = html("li", { "data-name": line.name }, legend);
        items[line.name] = item;
        var sw = el("svg", { width: 28, height: 8, "class": "swatch" }, item);
        el("line", { x1: 0, x2: 28, y1: 4, y2: 4, stroke: st.color, "stroke-width": 2.5,
          "stroke-dasharray": st.dash }, sw);
        item.appendChild(document.createTextNode(line.name + (line.n_range ? " (" + nText(line) + ")" : "")));
        item.title = "click: hide or show; double-click or Alt-click: show only this one";
        item.addEventListener("click", function (event) {
          var now = opts.lines();
          if (event.altKey || event.detail >= 2) isolate(line.name, now);
          else self.hidden[line.name] = !self.hidden[line.name];
          render();
        });
      });
    }
    function isolate(name, lines) {
      var alone = lines.every(function (l) { return l.name === name || self.hidden[l.name]; });
      lines.forEach(function (l) { self.hidden[l.name] = alone ? false : l.name !== name; });
    }
    function nText(line) {
      var r = line.n_range;
      return "n=" + (r[0] === r[1] ? r[0] : r[0] + "–" + r[1]);
    }
    function local(event) {
      var b = svg.getBoundingClientRect();
      return [(event.clientX - b.left) * W / b.width, (event.clientY - b.top) * H / b.height];
    }
    function clampX(v) { return Math.max(L, Math.min(W - R, v)); }
    function clampY(v) { return Math.max(T, Math.min(H - B, v)); }
    svg.addEventListener("mousedown", function (event) {
      var p = local(event);
      if (event.button !== 0 || p[0] < L || p[0] > W - R || p[1] < T || p[1] > H - B) return;
      event.preventDefault();
      drag = { pan: event.shiftKey, start: p, x: sx.domain.slice(), y: sy.domain.slice(), sx: sx, sy: sy };
      hideTip();
      marker.setAttribute("visibility", "hidden");
    });
    window.addEventListener("mousemove", function (event) {
      if (!drag) return;
      var p = local(event);
      if (drag.pan) {  // the point under the pointer stays under it
        var move = function (f, a, b, log, dom) {
          var u = f.invert(a), v = f.invert(b);
          return log ? [dom[0] * u / v, dom[1] * u / v] : [dom[0] + u - v, dom[1] + u - v];
        };
        self.zoom.x = move(drag.sx, drag.start[0], p[0], self.xlog, drag.x);
        self.zoom.y = move(drag.sy, drag.start[1], p[1], self.ylog, drag.y);
        render();
        return;
      }
      var x0 = Math.min(drag.start[0], clampX(p[0])), y0 = Math.min(drag.start[1], clampY(p[1]));
      zoombox.setAttribute("x", x0);
      zoombox.setAttribute("y", y0);
      zoombox.setAttribute("width", Math.abs(clampX(p[0]) - drag.start[0]));
      zoombox.setAttribute("height", Math.abs(clampY(p[1]) - drag.start[1]));
      zoombox.setAttribute("visibility", "visible");
    });
    window.addEventListener("mouseup", function (event) {
      if (!drag) return;
      var d = drag, p = local(event);
      drag = null;
      zoombox.setAttribute("visibility", "hidden");
      if (d.pan) return;
      var x = [d.start[0], clampX(p[0])].sort(function (a, b) { return a - b; });
      var y = [d.start[1], clampY(p[1])].sort(function (a, b) { return a - b; });
      // a wide, flat box zooms the steps only; a tall, narrow one the values only
      if (x[1] - x[0] > 4) self.zoom.x = [d.sx.invert(x[0]), d.sx.invert(x[1])];
      if (y[1] - y[0] > 4) self.zoom.y = [d.sy.invert(y[1]), d.sy.invert(y[0])];
      if (x[1] - x[0] > 4 || y[1] - y[0] > 4) render();
    });
    svg.addEventListener("dblclick", function () { self.zoom = { x: null, y: null }; render(); });
    svg.addEventListener("mousemove", function (event) {
      if (drag) return;
      var m = local(event), best = null;
      drawn.forEach(function (d) {
        d.pts.forEach(function (p) {
          var dist = Math.hypot(sx(p[0]) - m[0], sy(p[1]) - m[1]);
          if (!best || dist < best.dist) best = { dist: dist, d: d, p: p };
        });
      });
      if (!best || best.dist > 40) { marker.setAttribute("visibility", "hidden"); hideTip(); return; }
      marker.setAttribute("cx", sx(best.p[0]));
      marker.setAttribute("cy", sy(best.p[1]));
      marker.setAttribute("fill", best.d.color);
      marker.setAttribute("visibility", "visible");
      var line = best.d.line, pc = opts.percent;
      var value = fmt(best.p[1], pc) + (shared.smooth ? " (smoothed; raw " + fmt(best.p[5], pc) + ")" : "");
      if (line.n) value += " (median; IQR " + fmt(best.p[2], pc) + "–" + fmt(best.p[3], pc) + "; n=" + best.p[4] + ")";
      showTip([line.name, opts.xlabel + " " + fmt(best.p[0]) + ": " + value], event);
    });
    svg.addEventListener("mouseleave", function () { marker.setAttribute("visibility", "hidden"); hideTip(); });
    self.render = render;
    views.push(self);
    render();
    return self;
  }

  // A family's chart (loss, accuracy); a sweep's has a select of the metrics every job logged
  function curves(spec, index) {
    var choices = [{ title: spec.title, lines: spec.lines }].concat(spec.others || []), chosen = 0;
    choices.forEach(function (c) {
      c.lines.forEach(function (line, i) { line.style = i; noteKeys(line.keys); });
    });
    var chart = Chart(document.getElementById("charts"), {
      title: function () { return choices[chosen].title; }, note: spec.note, xlabel: spec.xlabel || "step",
      ylabel: function () { return choices[chosen].title; }, percent: spec.percent, log: spec.log,
      cls: "curves", index: index, lines: function () { return choices[chosen].lines; },
      toolbar: choices.length < 2 ? null : function (bar) {
        var s = html("select", { "class": "metric", "aria-label": "metric" }, bar);
        choices.forEach(function (c, i) { html("option", { value: i }, s).textContent = c.title; });
        s.addEventListener("change", function () { chosen = Number(s.value); chart.render(); });
      }
    });
  }

  // -- the controls: the filter and the smoothing, for every chart -----------------------
  function controls() {
    var host = document.getElementById("controls");
    if (!host) return;
    var lab = html("label", {}, host);
    lab.appendChild(document.createTextNode("Filter runs "));
    var input = html("input", { type: "search", id: "filter", list: "filter-keys", size: 34,
      placeholder: Object.keys(data.keys || {}).length ? Object.keys(data.keys)[0] + "=…" : "text of a run's name",
      "aria-label": "filter runs: key=value, ...; joined by ';'" }, lab);
    var list = html("datalist", { id: "filter-keys" }, host);
    Object.keys(data.keys || {}).forEach(function (k) {
      data.keys[k].forEach(function (v) { html("option", { value: k + "=" + v }, list); });
    });
    var note = html("span", { "class": "filter-note", role: "status" }, host);
    var sl = html("label", {}, host);
    sl.appendChild(document.createTextNode("Smoothing "));
    var slider = html("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: 0 }, sl);
    var out = html("output", { "for": "smoothing" }, sl);
    out.textContent = "0";
    function redraw() { views.forEach(function (v) { v.render(); }); }
    input.addEventListener("input", function () {
      shared.filter = parseFilter(input.value);
      input.classList.toggle("bad", shared.filter.bad.length > 0);
      note.textContent = shared.filter.bad.length ? "no key " + shared.filter.bad.join(", ") + " (keys: " +
        Object.keys(KEYS).join(", ") + ")" : "";
      redraw();
    });
    slider.addEventListener("input", function () {
      shared.smooth = Number(slider.value);
      out.textContent = slider.value;
      redraw();
    });
  }


  // panels.js registers the other panels here; they are drawn once the page is parsed (the
  // whole inline script has run by then, whatever order its parts come in)
  var panels = {};
  // draw(data): the Explore section from its data, afresh (report.html: once; nnlab serve's
  // page: for each folder chosen, and again, keeping the filter and smoothing (keep), when a
  // live folder's charts change shape)
  function draw(given, keep) {
    N.data = data = given;
    views.length = 0;
    KEYS = {};
    ["charts", "stats", "parallel"].concat(keep ? [] : ["controls"]).forEach(function (id) {
      var host = document.getElementById(id);
      if (host) host.textContent = "";
    });
    if (!keep) { shared.filter = { terms: [] }; shared.smooth = 0; controls(); }
    data.charts.forEach(curves);
    if (data.stats) panels.stats(data.stats);
    if (data.parallel) panels.parallel(data.parallel);
  }
  var N = window.nnlabReport = {
    el: el, html: html, text: text, fmt: fmt, tickText: tickText, scale: scale,
    showTip: showTip, hideTip: hideTip, noteKeys: noteKeys, passes: passes, Chart: Chart,
    views: views, panels: panels, draw: draw, data: null
  };
  function drawPage() { draw(JSON.parse(source.textContent)); }
  if (!source) return;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawPage);
  else window.setTimeout(drawPage, 0);
})();
