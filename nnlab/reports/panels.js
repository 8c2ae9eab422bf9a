// nnlab report.html, its panels beyond the curves: the layer statistics (a layer, a quantity
// and a statistic picked; a line per job, drawn by report.js's chart) and the parallel
// coordinates (an axis per varied key and the metric; hover a line to read its job). They
// use report.js's shared parts (window.nnlabReport) and register themselves there; report.js
// draws them. Every text from the data goes in through textContent, never as markup.
(function (N) {
  "use strict";
  if (!N) return;  // report.js not loaded
  var el = N.el, html = N.html, text = N.text, fmt = N.fmt, tickText = N.tickText;
  var scale = N.scale, showTip = N.showTip, hideTip = N.hideTip, noteKeys = N.noteKeys;
  var passes = N.passes, Chart = N.Chart, views = N.views;
  // viridis, dark to yellow: the parallel view's colours, the better end yellow as in the PNG
  var VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
    "#addc30", "#fde725"];
  function viridis(t) {
    var f = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1), i = Math.min(7, Math.floor(f));
    var a = VIRIDIS[i], b = VIRIDIS[i + 1], w = f - i, out = "#";
    for (var c = 1; c < 7; c += 2) {
      var v = Math.round(parseInt(a.substr(c, 2), 16) * (1 - w) + parseInt(b.substr(c, 2), 16) * w);
      out += (v < 16 ? "0" : "") + v.toString(16);
    }
    return out;
  }

  // -- the layer statistics: pick a layer, a quantity and a statistic; a line per job -----
  function layerStats(spec) {
    var host = document.getElementById("stats");
    html("h3", {}, host).textContent = "Layer statistics";
    var bar = html("div", { "class": "stats-controls" }, host);
    var several = spec.jobs.length > 1, ALL = "(all layers)";
    spec.jobs.forEach(function (job) { noteKeys(job.keys); });
    function select(label, cls, options, chosen) {
      var lab = html("label", {}, bar);
      lab.appendChild(document.createTextNode(label + " "));
      var s = html("select", { "class": cls }, lab);
      options.forEach(function (o) { var opt = html("option", { value: o }, s); opt.textContent = o.replace("_", " "); });
      s.value = chosen;
      s.addEventListener("change", function () { chart.render(); });
      return s;
    }
    var layer = select("layer", "stat-layer", [ALL].concat(spec.layers),
      several ? (spec.layers.indexOf("fc1") >= 0 ? "fc1" : spec.layers[0]) : ALL);
    var quantity = select("quantity", "stat-quantity", spec.quantities,
      spec.quantities.indexOf("weights") >= 0 ? "weights" : spec.quantities[0]);
    var statistic = select("statistic", "stat-statistic", spec.statistics, "std");
    function lines() {
      var out = [];
      spec.series.forEach(function (s) {
        if (s.quantity !== quantity.value || (layer.value !== ALL && s.layer !== layer.value)) return;
        var job = spec.jobs[s.job], each = layer.value === ALL;
        var name = several ? job.name + (each ? " · " + s.layer : "") : s.layer;
        out.push({ name: name, x: s.x, y: s[statistic.value], keys: job.keys,
          style: each ? out.length : s.job });
      });
      return out;
    }
    var chart = Chart(host, {
      title: function () {
        return "Layer statistics: " + (layer.value === ALL ? "every layer" : layer.value) + ", " +
          quantity.value.replace("_", " ") + ", " + statistic.value;
      },
      xlabel: "step", ylabel: function () {
        return (layer.value === ALL ? "" : layer.value + " ") + quantity.value.replace("_", " ") + " " + statistic.value;
      },
      percent: false, log: false, cls: "stats", index: 0, lines: lines
    });
  }

  // -- parallel coordinates --------------------------------------------------------------
  function parallel(spec) {
    var W = 760, H = 392, L = 70, R = 80, T = 96, B = 44;
    var box = html("figure", {}, document.getElementById("parallel"));
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H,
      "class": "parallel", role: "img" }, box);
    var n = spec.axes.length, metricName = spec.axes[n - 1].key, high = spec.better === "high";
    spec.lines.forEach(function (line) { noteKeys(line.keys); });
    text(svg, 8, 18, "Parallel coordinates: each job's varied keys and " + metricName, { "class": "title" });
    // colour by rank, as the PNG: 0 the worst job, 1 the best (ties share their mean rank),
    // so that one outlier does not squeeze every other line into one colour
    var sorted = spec.lines.map(function (l) { return l.values[n - 1]; })
      .sort(function (a, b) { return a - b; });
    var goodness = function (v) {
      var t = sorted.length > 1
        ? (sorted.indexOf(v) + sorted.lastIndexOf(v)) / 2 / (sorted.length - 1) : 1;
      return high ? t : 1 - t;
    };
    var atRank = function (t) {  // the metric's value at a rank (0 worst, 1 best)
      var f = (high ? t : 1 - t) * (sorted.length - 1), i = Math.floor(f), j = Math.ceil(f);
      return sorted[i] + (sorted[j] - sorted[i]) * (f - i);
    };
    // the colour bar: worst (dark) to best (yellow), labelled with the values at its ranks
    var grad = el("linearGradient", { id: "pc-colours" }, el("defs", {}, svg));
    VIRIDIS.forEach(function (c, i) { el("stop", { offset: i / (VIRIDIS.length - 1), "stop-color": c }, grad); });
    var pc = spec.axes[n - 1].percent;
    text(svg, 8, 38, "colour: rank by " + metricName + ", " + (high ? "highest" : "lowest") + " (best) yellow", { "class": "colour-note" });
    el("rect", { x: W - 244, y: 29, width: 150, height: 11, fill: "url(#pc-colours)" }, svg);
    [0, 0.5, 1].forEach(function (t) {
      text(svg, W - 244 + 150 * t, 52, fmt(atRank(t), pc), { "text-anchor": "middle", "class": "colour-tick" });
    });
    var gap = (W - L - R) / Math.max(1, n - 1), UNSET = H - B + 22;
    var scales = spec.axes.map(function (axis, i) {
      var x = L + i * gap;
      var values = spec.lines.map(function (l) { return l.values[i]; });
      var g = el("g", { "class": "axis" }, svg);
      el("line", { x1: x, x2: x, y1: T, y2: H - B }, g);
      text(g, x, T - 22, axis.key, { "text-anchor": "middle", "class": "axis-name" });
      if (axis.kind !== "category" && axis.log) {  // as the PNG's labels say it
        text(g, x, T - 9, "(log)", { "text-anchor": "middle", "class": "axis-scale note" });
      }
      if (axis.unset) text(g, x + 6, UNSET + 4, "(unset)", { "class": "note" });
      var f;
      if (axis.kind === "category") {
        var step = axis.values.length > 1 ? (H - B - T) / (axis.values.length - 1) : 0;
        axis.values.forEach(function (v, k) {
          text(g, x + 6, (axis.values.length > 1 ? H - B - k * step : (T + H - B) / 2) + 4, v);
        });
        f = function (v) {
          var k = axis.values.indexOf(v);
          return axis.values.length > 1 ? H - B - k * step : (T + H - B) / 2;
        };
      } else {
        var nums = values.filter(function (v) { return typeof v === "number"; });
        f = scale(Math.min.apply(null, nums), Math.max.apply(null, nums), H - B, T, axis.log);
        f.ticks(4).forEach(function (t) { text(g, x + 6, f(t) + 4, tickText(t, axis.percent), { "class": "ptick" }); });
        g.setAttribute("data-scale", axis.log ? "log" : "linear");
      }
      return function (v) { return v === null ? UNSET : f(v); };
    });
    var lines = el("g", { "class": "jobs" }, svg);
    var order = spec.lines.slice().sort(function (a, b) { return goodness(a.values[n - 1]) - goodness(b.values[n - 1]); });
    var polys = order.map(function (line, k) {
      var pts = line.values.map(function (v, i) { return (L + i * gap) + "," + scales[i](v); });
      var rank = goodness(line.values[n - 1]);
      var poly = el("polyline", { points: pts.join(" "), stroke: viridis(rank), "data-rank": rank.toFixed(4),
        "class": "job" + (k === order.length - 1 ? " best" : ""), "data-name": line.name }, lines);
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
      return { poly: poly, line: line };
    });
    views.push({ render: function () {
      polys.forEach(function (p) { p.poly.style.display = passes(p.line) ? "" : "none"; });
    } });
  }

  N.panels.stats = layerStats;
  N.panels.parallel = parallel;
})(window.nnlabReport);
