// nnlab report.html: draws the Explore section from the JSON in #nnlab-data as SVG.
// Curves: hover to read the nearest point's run, step and value (for a group of seeds: the
// median, its interquartile range and n, the runs with a value at that step).
// Parallel coordinates: an axis per varied key and the metric; hover a line to read its job.
// Every text from the data goes in through textContent, never as markup.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  var source = document.getElementById("nnlab-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var tip = document.getElementById("tip");

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, attrs) {
    var node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }
  function fmt(v, percent) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (percent) return (100 * v).toFixed(2) + "%";
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3)
      : String(Number(v.toPrecision(4)));
  }
  function tickText(v, percent) {
    if (percent) return String(Number((100 * v).toPrecision(4))) + "%";
    return fmt(v, false);
  }
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
    if (out.length > 8 && ones.length >= 2) return ones;
    return out.length >= 2 ? out : [lo, hi];
  }
  // A linear or log scale from [lo, hi] to pixels [a, b], with its ticks.
  function scale(lo, hi, a, b, log) {
    if (hi === lo) { hi = log ? lo * 10 : lo + 1; lo = log ? lo / 10 : lo - 1; }
    var l = log ? Math.log10(lo) : lo, h = log ? Math.log10(hi) : hi;
    var f = function (v) { return a + ((log ? Math.log10(v) : v) - l) / (h - l) * (b - a); };
    f.ticks = function (n) { return log ? logTicks(lo, hi) : niceTicks(lo, hi, n); };
    return f;
  }
  function showTip(lines, event) {
    tip.textContent = "";
    lines.forEach(function (line, i) {
      var div = document.createElement("div");
      div.textContent = line;
      if (i === 0) div.className = "tip-head";
      tip.appendChild(div);
    });
    tip.hidden = false;
    tip.style.left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = event.clientY + 14 + "px";
  }
  function hideTip() { tip.hidden = true; }

  function chart(spec, index) {
    var W = 760, H = 330, L = 64, R = 16, T = 28, B = 40;
    var box = document.createElement("figure");
    box.className = "chart";
    document.getElementById("charts").appendChild(box);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H,
      "class": "curves", "data-chart": index, role: "img" }, box);
    text(svg, L, 18, spec.title, { "class": "title" });
    if (spec.note) text(svg, W - R, 18, spec.note, { "text-anchor": "end", "class": "note" });
    // a point: [step, median (or value), band's low edge, high edge, n]; a plain line's band
    // is the value itself (the data clips an accuracy's band to [0, 1], a loss's above 0)
    function points(line) {
      var pts = [];
      line.x.forEach(function (x, j) {
        var y = line.y[j];
        if (y === null) return;
        var lo = line.lo && line.lo[j] !== null ? line.lo[j] : y;
        var hi = line.hi && line.hi[j] !== null ? line.hi[j] : y;
        pts.push([x, y, lo, hi, line.n ? line.n[j] : 1]);
      });
      return pts;
    }
    function nText(line) {
      var r = line.n_range;
      return "n=" + (r[0] === r[1] ? r[0] : r[0] + "–" + r[1]);
    }
    var xs = [], ys = [];
    spec.lines.forEach(function (line) {
      points(line).forEach(function (p) { xs.push(p[0]); ys.push(p[2], p[3]); });
    });
    if (!xs.length) return;
    var log = spec.log && ys.every(function (v) { return v > 0; });
    var sx = scale(Math.min.apply(null, xs), Math.max.apply(null, xs), L, W - R, false);
    var sy = scale(Math.min.apply(null, ys), Math.max.apply(null, ys), H - B, T, log);
    var axes = el("g", { "class": "axes" }, svg);
    sy.ticks(4).forEach(function (t) {
      el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), "class": "grid" }, axes);
      text(axes, L - 6, sy(t) + 4, tickText(t, spec.percent), { "text-anchor": "end" });
    });
    sx.ticks(5).forEach(function (t) {
      text(axes, sx(t), H - B + 16, tickText(t, false), { "text-anchor": "middle" });
    });
    text(axes, (L + W - R) / 2, H - 6, "step", { "text-anchor": "middle" });
    var drawn = [];
    spec.lines.forEach(function (line, i) {
      var color = COLORS[i % COLORS.length];
      var pts = points(line);
      if (!pts.length) return;
      if (line.n) {
        var upper = pts.map(function (p) { return sx(p[0]) + "," + sy(p[3]); });
        var lower = pts.slice().reverse().map(function (p) {
          return sx(p[0]) + "," + sy(log && p[2] <= 0 ? p[1] : p[2]);
        });
        el("polygon", { points: upper.concat(lower).join(" "), fill: color, "class": "band" }, svg);
      }
      el("polyline", { points: pts.map(function (p) { return sx(p[0]) + "," + sy(p[1]); }).join(" "),
        stroke: color, "class": "line", "data-name": line.name }, svg);
      drawn.push({ line: line, pts: pts, color: color });
    });
    var marker = el("circle", { r: 4, "class": "marker", visibility: "hidden" }, svg);
    svg.addEventListener("mousemove", function (event) {
      var box = svg.getBoundingClientRect();
      var mx = (event.clientX - box.left) * W / box.width;
      var my = (event.clientY - box.top) * H / box.height;
      var best = null;
      drawn.forEach(function (d) {
        d.pts.forEach(function (p) {
          var dist = Math.hypot(sx(p[0]) - mx, sy(p[1]) - my);
          if (!best || dist < best.dist) best = { dist: dist, d: d, p: p };
        });
      });
      if (!best || best.dist > 40) { marker.setAttribute("visibility", "hidden"); hideTip(); return; }
      marker.setAttribute("cx", sx(best.p[0]));
      marker.setAttribute("cy", sy(best.p[1]));
      marker.setAttribute("fill", best.d.color);
      marker.setAttribute("visibility", "visible");
      var line = best.d.line;
      var value = fmt(best.p[1], spec.percent);
      if (line.n) {
        value += " (median; IQR " + fmt(best.p[2], spec.percent) + "–" + fmt(best.p[3], spec.percent) +
          "; n=" + best.p[4] + ")";
      }
      showTip([line.name, "step " + best.p[0] + ": " + value], event);
    });
    svg.addEventListener("mouseleave", function () { marker.setAttribute("visibility", "hidden"); hideTip(); });
    var legend = document.createElement("ul");
    legend.className = "legend";
    drawn.forEach(function (d) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = d.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(d.line.name + (d.line.n ? " (" + nText(d.line) + ")" : "")));
      legend.appendChild(item);
    });
    box.appendChild(legend);
  }

  function parallel(spec) {
    var W = 760, H = 360, L = 70, R = 70, T = 56, B = 30;
    var box = document.createElement("figure");
    document.getElementById("parallel").appendChild(box);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H,
      "class": "parallel", role: "img" }, box);
    var metricName = spec.axes[spec.axes.length - 1].key;
    text(svg, 8, 18, "Parallel coordinates: each job's varied keys and " + metricName,
      { "class": "title" });
    text(svg, 8, 33, "colour: " + metricName + ", blue (lowest) to orange (highest)");
    var n = spec.axes.length;
    var gap = (W - L - R) / Math.max(1, n - 1);
    var scales = spec.axes.map(function (axis, i) {
      var x = L + i * gap;
      var values = spec.lines.map(function (l) { return l.values[i]; });
      var g = el("g", { "class": "axis" }, svg);
      el("line", { x1: x, x2: x, y1: T, y2: H - B }, g);
      text(g, x, T - 10, axis.key, { "text-anchor": "middle", "class": "axis-name" });
      if (axis.kind === "category") {
        var step = axis.values.length > 1 ? (H - B - T) / (axis.values.length - 1) : 0;
        axis.values.forEach(function (v, k) {
          text(g, x + 6, (axis.values.length > 1 ? H - B - k * step : (T + H - B) / 2) + 4, v);
        });
        return function (v) {
          var k = axis.values.indexOf(v);
          return axis.values.length > 1 ? H - B - k * step : (T + H - B) / 2;
        };
      }
      var nums = values.filter(function (v) { return typeof v === "number"; });
      var s = scale(Math.min.apply(null, nums), Math.max.apply(null, nums), H - B, T, axis.log);
      s.ticks(4).forEach(function (t) { text(g, x + 6, s(t) + 4, tickText(t, axis.percent)); });
      return s;
    });
    var metric = spec.lines.map(function (l) { return l.values[n - 1]; });
    var lo = Math.min.apply(null, metric), hi = Math.max.apply(null, metric);
    var lines = el("g", { "class": "jobs" }, svg);
    spec.lines.forEach(function (line) {
      var t = hi > lo ? (line.values[n - 1] - lo) / (hi - lo) : 1;
      var color = "hsl(" + Math.round(230 - 200 * t) + ",70%,45%)";
      var pts = line.values.map(function (v, i) { return (L + i * gap) + "," + scales[i](v); });
      var poly = el("polyline", { points: pts.join(" "), stroke: color, "class": "job",
        "data-name": line.name }, lines);
      poly.addEventListener("mousemove", function (event) {
        lines.classList.add("focus");
        poly.classList.add("on");
        showTip([line.name].concat(spec.axes.map(function (axis, i) {
          return axis.key + ": " + fmt(line.values[i], axis.percent);
        })), event);
      });
      poly.addEventListener("mouseleave", function () {
        lines.classList.remove("focus");
        poly.classList.remove("on");
        hideTip();
      });
    });
  }

  data.charts.forEach(chart);
  if (data.parallel) parallel(data.parallel);
})();
