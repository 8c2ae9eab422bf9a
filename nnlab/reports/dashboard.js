// nnlab serve's page: the runs folder's listing and, for the run or sweep chosen, the Explore
// section of report.html drawn by the same script (report.js and panels.js, through
// window.nnlabReport) from the same data, fetched from the server's JSON endpoints instead of
// embedded. Both are fetched again every few seconds with the version last seen; the server
// answers "unchanged" until a file they are drawn from changed, so an idle page costs little.
// A live folder's new rows go into the drawn charts in place (each chart keeps its zoom,
// hidden lines and log switches); when the charts change shape (a metric or a panel appears)
// they are drawn afresh, keeping the filter and the smoothing. Every text from the server
// goes in through textContent, never as markup.
(function (N) {
  "use strict";
  if (!N) return;
  var POLL = Number(document.body.getAttribute("data-poll")) || 2000;
  var SHOWN = 500;  // rows of the listing drawn at once; the find box searches them all
  var html = N.html;
  var runs = { version: null, list: [] }, chosen = { folder: null, version: null, kind: null };
  var live = window.nnlabLive = { runsPolls: 0, folderPolls: 0, redraws: 0, refreshes: 0 };

  function get(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    });
  }
  function status(text) { document.getElementById("status").textContent = text; }

  // -- the listing --------------------------------------------------------------------------
  function drawList() {
    var body = document.querySelector("#runs tbody"), find = document.getElementById("find");
    var words = find.value.trim().toLowerCase(), count = 0;
    body.textContent = "";
    runs.list.forEach(function (run) {
      var hay = (run.name + " " + run.folder + " " + run.kind + " " + run.status).toLowerCase();
      if (words && hay.indexOf(words) < 0) return;
      count += 1;
      if (count > SHOWN) return;
      var tr = html("tr", { "data-folder": run.folder, tabindex: 0 }, body);
      if (run.folder === chosen.folder) tr.className = "chosen";
      [run.started, run.name, run.kind, run.status, run.time === null || run.time === undefined
        ? "" : Number(run.time).toFixed(1) + "s", run.results].forEach(function (v, i) {
        var td = html("td", i === 3 ? { "class": "st " + String(v).split(" ")[0] } : {}, tr);
        td.textContent = v;
      });
      tr.addEventListener("click", function () { location.hash = encodeURIComponent(run.folder); });
    });
    document.getElementById("count").textContent = runs.list.length + " runs and sweeps" +
      (count > SHOWN ? "; " + count + " match, the first " + SHOWN + " shown (find narrows)" : "");
    var notes = document.getElementById("list-notes");
    notes.textContent = (runs.notes || []).join("\n");
  }
  function pollRuns() {
    live.runsPolls += 1;
    return get("/api/runs" + (runs.version ? "?since=" + runs.version : "")).then(function (r) {
      if (r.unchanged) return;
      runs = { version: r.version, list: r.runs, notes: r.notes };
      drawList();
      document.body.setAttribute("data-runs-version", r.version);
    });
  }

  // -- the folder chosen ----------------------------------------------------------------------
  function shape(d) {
    return JSON.stringify({
      charts: d.charts.map(function (c) {
        return [c.title, c.note || "", (c.others || []).map(function (o) { return o.title; })];
      }),
      stats: d.stats ? [d.stats.layers, d.stats.quantities] : null,
      parallel: d.parallel
    });
  }
  function replace(array, fresh) { array.splice.apply(array, [0, array.length].concat(fresh)); }
  // new rows into the drawn charts: their lines replaced in place, each chart redrawn
  function refresh(next) {
    var now = N.data;
    if (!now || shape(now) !== shape(next)) { N.draw(next, !!now); live.redraws += 1; return; }
    now.charts.forEach(function (chart, i) {
      var fresh = [next.charts[i]].concat(next.charts[i].others || []);
      [chart].concat(chart.others || []).forEach(function (choice, k) {
        fresh[k].lines.forEach(function (line, j) { line.style = j; N.noteKeys(line.keys); });
        replace(choice.lines, fresh[k].lines);
      });
    });
    if (now.stats) {
      next.stats.jobs.forEach(function (job) { N.noteKeys(job.keys); });
      replace(now.stats.jobs, next.stats.jobs);
      replace(now.stats.series, next.stats.series);
    }
    now.keys = next.keys;
    N.views.forEach(function (v) { v.render(); });
    live.refreshes += 1;
  }
  function drawJobs(jobs) {
    var host = document.getElementById("jobs");
    host.textContent = "";
    if (!jobs) return;
    html("h3", {}, host).textContent = "Jobs (" + Object.keys(jobs.counts).map(function (s) {
      return jobs.counts[s] + " " + s;
    }).join(", ") + ")";
    var table = html("table", {}, host), tr = html("tr", {}, html("thead", {}, table));
    jobs.header.forEach(function (h) { html("th", {}, tr).textContent = h; });
    var body = html("tbody", {}, table);
    jobs.rows.forEach(function (row) {
      var r = html("tr", { "data-job": row[0] }, body);
      row.forEach(function (v) { html("td", {}, r).textContent = v; });
    });
  }
  function drawFolder(view, fresh) {
    document.getElementById("title").textContent = (view.kind === "sweep" ? "Sweep " : "Run ") +
      view.name + " — " + view.status;
    document.getElementById("notes").textContent = (view.data.notes || []).join("\n");
    drawJobs(view.jobs);
    if (fresh) { N.draw(view.data); live.redraws += 1; } else refresh(view.data);
    document.body.setAttribute("data-folder-version", view.version);
  }
  function pollFolder() {
    var folder = chosen.folder;
    if (!folder) return Promise.resolve();
    live.folderPolls += 1;
    var since = chosen.version ? "&since=" + chosen.version : "";
    return get("/api/folder?path=" + encodeURIComponent(folder) + since).then(function (view) {
      if (folder !== chosen.folder || view.unchanged) return;
      var fresh = chosen.version === null;
      chosen.version = view.version;
      drawFolder(view, fresh);
    });
  }
  function choose() {
    var folder = decodeURIComponent(location.hash.slice(1)) || null;
    chosen = { folder: folder, version: null };
    document.getElementById("explore").hidden = !folder;
    Array.prototype.forEach.call(document.querySelectorAll("#runs tbody tr"), function (tr) {
      tr.classList.toggle("chosen", tr.getAttribute("data-folder") === folder);
    });
    pollFolder().catch(function (e) { status(String(e.message || e)); });
  }

  // every POLL ms, one request after the other: the listing, then the folder chosen
  function loop() {
    pollRuns().then(pollFolder).then(function () { status(""); }, function (e) {
      status("cannot reach nnlab serve (" + (e.message || e) + "); trying again");
    }).then(function () { window.setTimeout(loop, POLL); });
  }
  document.getElementById("find").addEventListener("input", drawList);
  window.addEventListener("hashchange", choose);
  pollRuns().then(function () { choose(); window.setTimeout(loop, POLL); }, function (e) {
    status(String(e.message || e));
    window.setTimeout(loop, POLL);
  });
})(window.nnlabReport);
