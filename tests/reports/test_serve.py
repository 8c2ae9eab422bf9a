"""`nnlab serve`: the live dashboard's JSON endpoints, its one-line errors, Ctrl-C, and the page
in Chromium against a sweep that is still running."""

import json
import os
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

import nnlab
from tests.conftest import CONFIGS, nnlab_process
from tests.conftest import nnlab as run_nnlab
from tests.reports.browser import launch, needs_chromium

QUICK = {"train.iterations": 300, "train.log_every": 100}
LONG = ["-s", "train.iterations=100000000", "-s", "train.log_every=500"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with a finished run and a finished two-job sweep."""
    root = tmp_path_factory.mktemp("serve")
    runs = root / "runs"
    run = nnlab.train(CONFIGS / "moons_tanh.yaml", QUICK, runs_dir=runs)
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: pair\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
        "  table: {rows: model.layers, cols: model.activation, value: train_acc}\n"
    )
    sweep = nnlab.sweep(sweep_file, overrides=QUICK, runs_dir=runs, jobs=1)
    return {"runs": runs, "run": run.path, "sweep": sweep.path}


def _url(proc, timeout: float = 60) -> str:
    """The URL `nnlab serve` prints once it listens."""
    deadline = time.time() + timeout
    line = proc.stdout.readline()
    while "http://" not in line and time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nnlab serve ended: {proc.stderr.read()}")
        line = proc.stdout.readline()
    return line.split(" at ")[1].split()[0]


def _get(url: str) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body, status, kind = r.read().decode(), r.status, r.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        body, status, kind = exc.read().decode(), exc.code, exc.headers.get_content_type()
    return status, json.loads(body) if kind == "application/json" else body


@pytest.mark.slow
def test_the_json_endpoints_list_from_the_index_and_answer_unchanged(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs["runs"], root)
    # a run whose metrics.csv cannot be read: the listing never reads it, so it is listed
    # as it is, completed with its results (from summary.json)
    blocked = root / runs["run"].name / "metrics.csv"
    blocked.unlink()
    blocked.mkdir()
    with nnlab_process("serve", root, "--port", "0") as proc:
        url = _url(proc)
        assert url.startswith("http://127.0.0.1:")
        status, listing = _get(url + "api/runs")
        assert status == 200
        names = [(r["name"], r["kind"], r["status"]) for r in listing["runs"]]
        assert names == [("pair", "sweep", "completed"), ("moons_tanh", "mlp", "completed")]
        assert listing["runs"][1]["results"].startswith("train_acc ")
        assert _get(url + "api/runs?since=" + listing["version"])[1] == {
            "version": listing["version"], "unchanged": True}  # fmt: skip

        sweep = listing["runs"][0]["folder"]
        status, view = _get(url + "api/folder?path=" + sweep)
        assert status == 200 and view["kind"] == "sweep" and view["name"] == "pair"
        loss = view["data"]["charts"][0]
        assert [line["name"] for line in loss["lines"]] == ["activation=tanh", "activation=relu"]
        assert loss["lines"][0]["x"][-1] == 299  # the whole curve
        assert [row[:2] for row in view["jobs"]["rows"]] == [
            ["activation=tanh", "completed"], ["activation=relu", "completed"]]  # fmt: skip
        again = _get(url + f"api/folder?path={sweep}&since={view['version']}")[1]
        assert again == {"version": view["version"], "unchanged": True}
        # a job's curve grows (a row appended): the sweep's version changes, its data with it
        job_csv = next((root / sweep / "jobs").glob("*tanh*/attempt-1/metrics.csv"))
        last = job_csv.read_text().splitlines()[-1].split(",")
        job_csv.open("a").write(",".join(["300", *last[1:]]) + "\n")
        grown = _get(url + f"api/folder?path={sweep}&since={view['version']}")[1]
        assert grown["version"] != view["version"]
        assert grown["data"]["charts"][0]["lines"][0]["x"][-1] == 300

        status, error = _get(url + "api/folder?path=../..")
        assert status == 404 and "no run or sweep folder" in error["error"]
        status, page = _get(url)
        assert status == 200 and "script-src 'self'" in page
        assert "https://" not in page and "//cdn" not in page  # nothing from elsewhere
        status, script = _get(url + "static/report.js")
        shipped = resources.files("nnlab.reports").joinpath("report.js").read_text()
        assert status == 200 and script == shipped  # the report's own renderer
        assert _get(url + "static/../serve.py")[0] == 404
        assert proc.poll() is None
    assert blocked.is_dir()


def test_a_missing_runs_dir_is_one_line(tmp_path):
    result = run_nnlab("serve", tmp_path / "nowhere", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"nnlab: error: {tmp_path / 'nowhere'}: no such runs folder (RUNS_DIR names a folder "
        "of runs)"
    ]


def test_a_port_in_use_is_one_line(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        result = run_nnlab("serve", tmp_path, "--port", port)
    finally:
        taken.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnlab: error: --port {port}: ")
    assert "in use" in lines[0] and "--port 0" in lines[0]


@pytest.mark.slow
def test_ctrl_c_stops_the_server_cleanly(tmp_path):
    with nnlab_process("serve", tmp_path, "--port", "0") as proc:
        url = _url(proc)
        assert _get(url + "api/runs")[0] == 200
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        err = proc.stderr.read()
    assert code == 130, err
    assert err.strip().splitlines() == ["nnlab: interrupted"]  # no traceback
    with pytest.raises(OSError):  # the port is closed
        urllib.request.urlopen(url + "api/runs", timeout=5)


def _points(page) -> dict[str, int]:
    """The number of points of each drawn line of the first chart, by its name."""
    return page.eval_on_selector_all(
        "svg.curves[data-chart='0'] polyline.line",
        "a => Object.fromEntries(a.map(n => [n.dataset.name, n.points.numberOfItems]))",
    )


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_dashboard_draws_a_running_sweeps_curves_growing(runs, tmp_path):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "runs"
    shutil.copytree(runs["runs"], root)
    sweep_file = tmp_path / "live.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: live\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
    )
    requests, errors = [], []
    with (
        nnlab_process("sweep", sweep_file, "-q", "--jobs", "1", "--runs-dir", root, *LONG) as sw,
        nnlab_process("serve", root, "--port", "0") as server,
    ):
        try:
            url = _url(server)
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on("request", lambda r: requests.append(r.url))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(url)
                # the running sweep appears in the listing (polled), running
                row = page.wait_for_selector("#runs tr:has-text('live'):has-text('running')",
                                             timeout=120_000)  # fmt: skip
                listed = page.eval_on_selector_all("#runs tbody tr td:nth-child(2)",
                                                   "a => a.map(n => n.textContent)")  # fmt: skip
                row.click()
                page.wait_for_selector("svg.curves[data-chart='0'] polyline.line",
                                       timeout=120_000)  # fmt: skip
                first = _points(page)
                title = page.inner_text("#title")
                page.locator("figure.chart").first.locator("button.ylog").click()  # log: off
                page.wait_for_function(
                    """(before) => {
                        const lines = document.querySelectorAll(
                            "svg.curves[data-chart='0'] polyline.line");
                        return Array.from(lines).some(n => n.points.numberOfItems
                            > (before[n.dataset.name] || 0));
                    }""",
                    arg=first,
                    timeout=120_000,
                )
                second = _points(page)
                # new rows went into the drawn chart: its switches stayed as they were set
                y_scale = page.get_attribute("svg.curves[data-chart='0']", "data-y-scale")
                live = page.evaluate("window.nnlabLive")
                jobs = page.eval_on_selector_all("#jobs tbody tr td:nth-child(2)",
                                                 "a => a.map(n => n.textContent)")  # fmt: skip
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                browser.close()
            assert sw.poll() is None  # still running while the curve grew
        finally:
            os.killpg(sw.pid, signal.SIGKILL)
    assert errors == []
    assert all(r.startswith(url) for r in requests), requests  # nothing from elsewhere
    assert listed[0] == "live" and {"pair", "moons_tanh"} <= set(listed)
    assert title.startswith("Sweep live") and "running" in title
    assert "running" in jobs
    grown = [name for name in second if second[name] > first.get(name, 0)]
    assert grown, (first, second)
    assert live["refreshes"] >= 1 and y_scale == "linear"
    assert Path(tmp_path / "dashboard.png").stat().st_size > 0


def test_a_running_runs_row_follows_its_metrics_while_the_others_are_kept(runs, tmp_path):
    from nnlab.reports.live import Listing

    root = tmp_path / "runs"
    shutil.copytree(runs["runs"], root)
    run = root / runs["run"].name
    meta = json.loads((run / "meta.json").read_text())
    meta.update(status="running", pid=os.getpid(), host=socket.gethostname())
    for key in ("end_time", "duration_seconds"):
        meta.pop(key, None)
    (run / "meta.json").write_text(json.dumps(meta))
    (run / "summary.json").unlink()  # a running run has none yet
    listing = Listing(root)
    first = listing()
    row = next(r for r in first["runs"] if r["folder"] == run.name)
    assert row["status"] == "running"
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert header.split(",")[:3] == ["step", "train_loss", "train_acc"]
    with (run / "metrics.csv").open("a") as f:  # a new row: meta.json unchanged
        f.write(f"{int(rows[-1].split(',')[0]) + 1},0.5,0.5\n")
    second = listing()
    row = next(r for r in second["runs"] if r["folder"] == run.name)
    assert row["results"].startswith("train_acc 50.00%")
    assert second["version"] != first["version"]
    assert listing()["version"] == second["version"]  # nothing changed since
