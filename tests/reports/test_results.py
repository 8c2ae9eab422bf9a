"""`nnlab plot`, `nnlab report` and `nnlab runs` on real run and sweep folders."""

import base64
import csv
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest
import yaml

import nnlab
from nnlab.reports.report import one_line
from nnlab.reports.results import differing_labels
from tests.conftest import CONFIGS, small_mnist
from tests.conftest import nnlab as run_nnlab
from tests.reports.browser import launch, needs_chromium

QUICK = {"train.iterations": 300, "train.log_every": 100}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two MLP runs, a DCN run and a small sweep, made once for the module."""
    root = tmp_path_factory.mktemp("results")
    runs = root / "runs"
    a = nnlab.train(CONFIGS / "moons_tanh.yaml", QUICK, runs_dir=runs)
    b = nnlab.train(
        CONFIGS / "moons_tanh.yaml",
        {**QUICK, "model.activation": "relu", "train.epsilon": 0.02},
        runs_dir=runs,
    )
    idx = small_mnist(root / "mnist")
    dcn = nnlab.train(
        {
            "model": {"kind": "dcn", "conv_channels": [4], "fc_units": 16},
            "data": {"name": "mnist", "root": str(idx), "val_size": 20},
            "train": {"epochs": 1, "stats_every": 2, "log_every": 2},
        },
        runs_dir=runs,
    )
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: table\n  base: {CONFIGS / 'breast_cancer_tanh.yaml'}"
        "\n  grid:\n    model.activation: [tanh, relu]\n  seeds: [0, 1]\n"
        "  table: {rows: model.layers, cols: model.activation}\n"
    )
    sweep = nnlab.sweep(sweep_file, overrides=QUICK, runs_dir=runs, jobs=2)
    return {"a": a.path, "b": b.path, "dcn": dcn.path, "sweep": sweep.path, "runs": runs}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["a", "dcn", "sweep"])
def test_plot_recreates_the_same_figures_after_plots_is_deleted(folders, which, tmp_path):
    folder = tmp_path / which
    shutil.copytree(folders[which], folder)
    before = sorted(p.name for p in (folder / "plots").iterdir())
    assert before
    shutil.rmtree(folder / "plots")
    result = run_nnlab("plot", folder)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (folder / "plots").iterdir()) == before
    for png in (folder / "plots").iterdir():
        assert matplotlib.image.imread(png).shape[0] > 100
    pdf = run_nnlab("plot", folder, "--format", "pdf", "--out", tmp_path / "pdf")
    assert pdf.returncode == 0
    made = sorted(p.name for p in (tmp_path / "pdf").iterdir())
    assert made == sorted(n.replace(".png", ".pdf") for n in before)
    assert all((tmp_path / "pdf" / n).read_bytes()[:4] == b"%PDF" for n in made)


@pytest.mark.slow
def test_overlaying_two_runs_labels_them_by_the_keys_that_differ(folders, tmp_path):
    configs = [nnlab.load_run(folders[k]).config for k in ("a", "b")]
    assert differing_labels(configs) == [
        "activation=tanh epsilon=0.01",
        "activation=relu epsilon=0.02",
    ]
    result = run_nnlab(
        "plot",
        folders["a"],
        folders["b"],
        "--out",
        tmp_path,
        "--metric",
        "train_loss",
        "--metric",
        "accuracy",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "compare_accuracy.png",
        "compare_train_loss.png",
    ]


def test_dcn_keys_are_labelled_as_a_course_compares_them():
    base = nnlab.load_config({"model": {"kind": "dcn"}})
    other = nnlab.load_config(
        {
            "model": {"kind": "dcn", "init": "xavier"},
            "train": {"optimizer": "adam", "lr_decay": {"kind": "step"}},
        }
    )
    assert differing_labels([base, other]) == [
        "init=default optimizer=sgd lr_decay=none",
        "init=xavier optimizer=adam lr_decay=step",
    ]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.scripts = [], [], 0
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None


@pytest.mark.slow
def test_sweep_report_holds_the_numbers_of_summary_csv_and_decodable_images(folders):
    result = run_nnlab("report", folders["sweep"])
    assert result.returncode == 0, result.stderr
    page = _Page()
    page.feed((folders["sweep"] / "report.html").read_text())
    with open(folders["sweep"] / "summary.csv", newline="") as f:
        summary = {row["job"]: row for row in csv.DictReader(f)}
    jobs = next(t for t in page.tables if t[0][0] == "job")
    header = jobs[0]
    assert len(jobs) - 1 == len(summary) == 4
    for row in jobs[1:]:
        expected = summary[row[0]]
        assert row[1] == expected["status"]
        for metric in ("test_acc", "train_loss"):
            value = float(expected[metric])
            shown = row[header.index(metric)]
            assert shown == (f"{value:.2%}" if metric.endswith("_acc") else f"{value:.4f}")
    pivot = next(t for t in page.tables if t[0][0] == "Test accuracy (%)")
    assert pivot[0][1:] == ["Tanh", "ReLU"] and len(pivot) == 2
    assert len(page.images) == 2  # loss and accuracy of the sweep
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        img = matplotlib.image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.shape[0] > 100
    md = (folders["sweep"] / "report.md").read_text()
    assert "## Results" in md and "| Test accuracy (%) | Tanh | ReLU |" in md
    assert "## Environment" in md and "numpy" in md


def test_run_report_and_strings_from_configs_are_escaped(folders, tmp_path):
    run = nnlab.train(
        CONFIGS / "moons_tanh.yaml",
        {**QUICK, "name": "<script>alert(1)</script>"},
        runs_dir=tmp_path,
    )
    assert "<" not in run.path.name and "/" not in run.path.name.split("-", 2)[-1]
    result = run_nnlab("report", run.path)
    assert result.returncode == 0, result.stderr
    text = (run.path / "report.html").read_text()
    page = _Page()
    page.feed(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.scripts == 2  # the Explore section's data (JSON, never run) and its script
    assert text.count("<script") == 2 and "<script>alert" not in text
    assert len(page.images) == 3  # loss, accuracy, decision boundary
    assert "&lt;script&gt;" in (run.path / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_report_renders_in_a_real_browser(folders, tmp_path):
    from playwright.sync_api import sync_playwright

    run_nnlab("report", folders["dcn"])
    page_path = folders["dcn"] / "report.html"
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(page_path.as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        tables = page.evaluate("document.querySelectorAll('table').length")
        heading = page.inner_text("h1")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert heading.startswith("Report: ")
    assert tables == 1 and len(images) == 4  # loss, accuracy, confusion matrix, layer stats
    assert all(done and w > 300 and h > 200 for done, w, h in images)
    shot = matplotlib.image.imread(tmp_path / "report.png")
    assert shot.shape[0] > 1500  # the whole page, figures included


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_the_sweep_report_is_explorable_offline_in_a_real_browser(folders, tmp_path):
    from playwright.sync_api import sync_playwright

    assert run_nnlab("report", folders["sweep"]).returncode == 0
    page_path = folders["sweep"] / "report.html"
    requests, errors = [], []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        axes = page.eval_on_selector_all(
            "svg.parallel .axis-name", "a => a.map(n => n.textContent)"
        )
        jobs = page.eval_on_selector_all("svg.parallel polyline.job", "a => a.length")
        curves = page.eval_on_selector_all("svg.curves", "a => a.length")
        groups = page.eval_on_selector_all(
            "svg.curves[data-chart='0'] polyline.line", "a => a.map(n => n.dataset.name)"
        )
        bands = page.eval_on_selector_all(
            "svg.curves[data-chart='0'] polygon.band", "a => a.length"
        )
        # hover the middle of the first group's loss curve: the tooltip names its group
        x, y = page.evaluate(
            """() => {
                const line = document.querySelector("svg.curves[data-chart='0'] polyline.line");
                line.closest("svg").scrollIntoView();
                const pts = line.points, p = pts.getItem(Math.floor(pts.numberOfItems / 2));
                const m = line.getScreenCTM();
                return [p.x * m.a + p.y * m.c + m.e, p.x * m.b + p.y * m.d + m.f];
            }"""
        )
        page.mouse.move(x, y)
        curve_tip = page.inner_text("#tip")
        page.hover("svg.parallel polyline.job >> nth=0", force=True)
        job_tip = page.inner_text("#tip")
        page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
        browser.close()
    assert errors == []
    assert requests == [page_path.as_uri()]  # the page itself; nothing leaves it
    assert axes == ["model.activation", "Test accuracy (%)"]  # the varied key, the metric
    assert jobs == 4 and curves == 2  # a line per job; loss and accuracy
    assert groups == ["activation=tanh", "activation=relu"] and bands == 2  # n=2 seeds each
    assert curve_tip.splitlines()[0] == "activation=tanh" and "n=2)" in curve_tip
    assert "step " in curve_tip and "(median; IQR " in curve_tip
    head, *values = job_tip.splitlines()
    assert head.startswith("activation=") and values[0].startswith("model.activation: ")
    assert values[1].startswith("Test accuracy (%): ") and values[1].endswith("%")


@pytest.mark.slow
def test_bad_folders_are_named_and_the_others_still_processed(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(folders["a"], corrupt)
    (corrupt / "meta.json").write_text("{not json")
    truncated = tmp_path / "truncated"
    shutil.copytree(folders["a"], truncated)
    (truncated / "metrics.csv").write_text("step,train_loss,train_acc\n0,0.5\n1,")
    result = run_nnlab(
        "plot",
        tmp_path / "empty",
        corrupt,
        truncated,
        folders["a"],
        folders["b"],
        "--out",
        tmp_path / "overlay",
    )
    assert result.returncode == 1
    assert (tmp_path / "overlay" / "compare_loss.png").is_file()  # the good two, overlaid
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("nnlab: error: ") for e in errors)
    assert "not a run or sweep folder" in errors[0] and str(tmp_path / "empty") in errors[0]
    single = run_nnlab("report", corrupt)
    assert single.returncode == 2 and "meta.json: cannot be read" in single.stderr
    single = run_nnlab("report", truncated)
    assert single.returncode == 2 and "metrics.csv" in single.stderr
    missing = run_nnlab("plot", folders["a"], folders["b"], "--metric", "f1", "--out", tmp_path)
    assert missing.returncode == 2
    assert "no metric 'f1'" in missing.stderr and "train_loss" in missing.stderr
    assert "Traceback" not in result.stderr + single.stderr + missing.stderr


def test_runs_lists_runs_and_sweeps_newest_first_with_filters(folders):
    result = run_nnlab("runs", "--runs-dir", folders["runs"])
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["started", "name", "kind", "status", "time", "results", "folder"]
    assert len(lines) == 1 + 4  # three runs and the sweep (its jobs live inside it)
    assert "sweep" in lines[1] and "4 jobs: 4 completed" in lines[1]  # made last
    assert any("dcn" in line and "test_acc" in line for line in lines)
    only = run_nnlab("runs", "--runs-dir", folders["runs"], "--name", "moons*")
    assert len(only.stdout.strip().splitlines()) == 1 + 2
    none = run_nnlab("runs", "--runs-dir", folders["runs"], "--status", "failed")
    assert none.stdout == f"no runs matching --status failed in {folders['runs']}\n"


def test_sweep_jobs_are_named_by_sweep_and_job_and_a_plain_run_by_its_config(folders, tmp_path):
    """A job's run is 'SWEEP / JOB' in its config.yaml and meta.json, its figures' titles and
    `nnlab runs`; a plain run keeps its config file's name."""
    sweep = folders["sweep"]
    jobs = json.loads((sweep / "state.json").read_text())["jobs"]
    for job_id, job in jobs.items():
        run = sweep / job["run"]
        assert json.loads((run / "meta.json").read_text())["name"] == f"table / {job_id}"
        assert yaml.safe_load((run / "config.yaml").read_text())["name"] == f"table / {job_id}"
    # the titles, read back from SVG (matplotlib writes each text as a comment)
    relu = sweep / jobs["activation=relu,seed=1"]["run"]
    for folder, title in ((relu, "table / activation=relu,seed=1: [30, 10, 2] relu"),
                          (folders["a"], "moons_tanh: [2, 3, 2] tanh")):  # fmt: skip
        out = tmp_path / folder.name
        assert run_nnlab("plot", folder, "--format", "svg", "--out", out).returncode == 0
        assert f"<!-- Loss — {title} -->" in (out / "loss.svg").read_text()
        assert f"<!-- Accuracy — {title} -->" in (out / "accuracy.svg").read_text()
    listed = run_nnlab("runs", "--runs-dir", sweep, "--columns", "name", "--format", "json")
    assert sorted(r["name"] for r in json.loads(listed.stdout)) == sorted(
        f"table / {j}" for j in jobs
    )


def test_runs_jobs_lists_and_queries_the_jobs_of_every_sweep_beside_the_runs(folders):
    columns = ["--columns", "name,kind,sweep,job,status,model.activation,test_acc"]
    result = run_nnlab("runs", "--runs-dir", folders["runs"], "--jobs", *columns,
                       "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted(r["kind"] for r in rows) == ["dcn", "mlp", "mlp", *["mlp"] * 4]  # no sweep
    jobs = {r["job"]: r for r in rows if r["sweep"] == "table"}
    assert set(jobs) == {f"activation={a},seed={s}" for a in ("tanh", "relu") for s in (0, 1)}
    assert all(r["status"] == "completed" and r["name"] == f"table / {j}" for j, r in jobs.items())
    relu = run_nnlab("runs", "--runs-dir", folders["runs"], "--jobs", "--where",
                     "model.activation=relu", "--sort", "-test_acc", *columns, "--format",
                     "json")  # fmt: skip
    found = json.loads(relu.stdout)
    assert sorted(r["job"] or r["name"] for r in found) == [
        "activation=relu,seed=0",
        "activation=relu,seed=1",
        "moons_tanh",
    ]  # and run b
    accs = [r["test_acc"] for r in found]  # the moons run has no test split: last
    assert accs[:2] == sorted(accs[:2], reverse=True) and accs[2] is None
    table = run_nnlab("runs", "--runs-dir", folders["runs"], "--jobs", "--where", "sweep=table")
    lines = table.stdout.splitlines()
    assert len(lines) == 1 + 4 and all("table / activation=" in line for line in lines[1:])


@pytest.mark.slow
def test_a_diverged_jobs_error_is_in_the_report_on_one_line(tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: lr\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    train.epsilon: [0.1, 1.0e6]\n"
    )
    made = run_nnlab("sweep", sweep_file, "--runs-dir", tmp_path / "runs", "-q",
                     "-s", "train.iterations=300", "-s", "train.log_every=100")  # fmt: skip
    assert made.returncode == 0, made.stderr
    folder = Path(made.stdout.strip().splitlines()[-1])
    error = json.loads((folder / "state.json").read_text())["jobs"]["epsilon=1e+06"]["error"]
    assert error.startswith("training diverged at step")
    assert run_nnlab("report", folder).returncode == 0
    md = (folder / "report.md").read_text()
    table = md[md.index("## Jobs") :].split("\n\n")[1].splitlines()
    assert table[0] == "| job | status | attempts | train_loss | train_acc | error |"
    diverged = next(line for line in table if line.startswith("| epsilon=1e+06 |"))
    assert "| diverged" in diverged and diverged.endswith(f"| {error} |")
    assert next(line for line in table if line.startswith("| epsilon=0.1 |")).endswith("|  |")


def test_an_error_is_one_line_cut_short_at_a_word():
    tail = "Traceback (most recent call last):\n  File 'x.py', line 3\nRuntimeError: " + "y" * 50
    assert one_line(tail, 1000) == " ".join(tail.split())
    cut = one_line("word " * 40, 90)
    assert len(cut) <= 90 and cut.endswith("word…") and "\n" not in cut
    assert one_line("x" * 200, 50) == "x" * 49 + "…"  # no word to cut at


# -- figures from valid but extreme data ----------------------------------------------------


def _warnings_only(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("nnlab: warning: ") for line in lines), lines
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("standardize", [False, True])
def test_a_two_feature_set_of_very_different_scales_draws_its_decision_boundary(
    tmp_path, standardize
):
    """x1 within [0, 1e-3], x2 within [0, 1e6]: the boundary is drawn by `train` (no warning
    in meta.json) and by `plot`, each axis over its own feature's range."""
    import json

    import numpy as np

    rs = np.random.RandomState(0)
    X = np.c_[rs.uniform(0, 1e-3, 200), rs.uniform(0, 1e6, 200)]
    y = (X[:, 0] / 1e-3 + X[:, 1] / 1e6 > 1).astype(int)
    table = tmp_path / "scales.csv"
    lines = [f"{a!r},{b!r},{c}\n" for (a, b), c in zip(X.tolist(), y.tolist(), strict=True)]
    table.write_text("x1,x2,label\n" + "".join(lines))
    config = tmp_path / "scales.yaml"
    config.write_text(
        f"data: {{name: csv, path: scales.csv, standardize: {str(standardize).lower()}}}\n"
        "train: {iterations: 300, log_every: 100}\n"
    )
    result = run_nnlab("train", config, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = Path(result.stdout.strip().splitlines()[-1])
    run = run if run.is_absolute() else tmp_path / run
    assert "warnings" not in json.loads((run / "meta.json").read_text())
    figure = run / "plots" / "decision_boundary.png"
    assert figure.is_file()
    figure.unlink()
    result = run_nnlab("plot", run, timeout=120)
    assert result.returncode == 0 and _warnings_only(result) == [], result.stderr
    assert figure.is_file() and str(figure) in result.stdout


@pytest.mark.slow
def test_extreme_finite_metric_values_are_plotted_or_named_in_one_line(folders, tmp_path):
    """±1e308 in metrics.csv (finite, valid): plot, plot --metric, an overlay and report
    draw the rest and say in one warning line per figure which values were left out."""
    run = shutil.copytree(folders["a"], tmp_path / "extreme")
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["train_loss"], rows[2]["train_loss"], rows[2]["train_acc"] = "1e308", "-1e308", "1e308"
    with open(run / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    steps = [rows[1]["step"], rows[2]["step"]]
    result = run_nnlab("plot", run, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = _warnings_only(result)
    assert len(lines) == 2, lines
    loss = next(line for line in lines if "loss.png" in line)
    assert "2 train_loss" in loss and all(s in loss for s in steps), loss
    assert "1 train_acc" in next(line for line in lines if "accuracy.png" in line)
    assert (run / "plots" / "loss.png").is_file()
    for args in (["plot", run, "--metric", "train_loss", "--out", tmp_path / "one"],
                 ["plot", run, folders["a"], "--out", tmp_path / "overlay"]):  # fmt: skip
        result = run_nnlab(*args, timeout=120)
        assert result.returncode == 0, result.stderr
        assert any("train_loss" in line for line in _warnings_only(result)), result.stderr
    shutil.rmtree(run / "plots")
    result = run_nnlab("report", run, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(_warnings_only(result)) == 2 and (run / "report.html").is_file()
