"""Comparison figures group runs the way the tables do: a line per group of seeds, the median
over the seeds that logged each step with a band from their 25th to their 75th percentile, n
counted per step; small multiples when one axes would be crowded. The report's Explore data
draws the same numbers."""

import json

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

import nnlab
from nnlab.figures import plots
from nnlab.reports.results import compare
from nnlab.runfolder.records import read_metrics
from nnlab.runfolder.runs import load_run
from tests.conftest import CONFIGS
from tests.sweeps.test_sweep import state_of


@pytest.fixture
def figures(monkeypatch):
    """The figures nnlab.figures.plots saves, kept open (by file name) to be inspected."""
    seen = {}

    def save(fig, path):  # written, but not closed
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        seen[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", save)
    yield seen
    plots._pyplot().close("all")


def _lines_and_bands(ax) -> tuple[list, list]:
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    return lines, bands


@pytest.mark.slow
def test_a_3x3x5_sweep_draws_9_median_lines_with_9_interquartile_bands(tmp_path, figures):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: grouped\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [sigmoid, tanh, relu]\n"
        "    model.layers: [[2, 3, 2], [2, 5, 2], [2, 8, 2]]\n"
        "  seeds: [0, 1, 2, 3, 4]\n"
    )
    sets = {"train.iterations": 100, "train.log_every": 50}
    done = nnlab.sweep(path, sets, runs_dir=tmp_path / "runs", jobs=2)
    jobs = state_of(done.path)["jobs"]
    assert len(jobs) == 45
    ax = figures["loss.png"].axes[0]
    assert len(figures["loss.png"].axes) == 1  # nine lines fit one axes
    lines, bands = _lines_and_bands(ax)
    assert len(lines) == 9 and len(bands) == 9
    assert all(line.get_label().endswith("(n=5)") for line in lines)
    # the tanh [2, 5, 2] line is the median of its five seeds' train loss, the band their IQR
    line = next(ln for ln in lines if ln.get_label() == "activation=tanh layers=2-5-2 (n=5)")
    runs = [
        read_metrics(done.path / j["run"] / "metrics.csv")
        for k, j in jobs.items()
        if k.startswith("activation=tanh,layers=2-5-2,")
    ]
    values = np.array([[r["train_loss"] for r in rows] for rows in runs])
    assert list(line.get_xdata()) == [r["step"] for r in runs[0]]
    assert np.allclose(line.get_ydata(), np.median(values, axis=0), rtol=1e-12)
    band = bands[lines.index(line)].get_paths()[0].vertices[:, 1]
    assert np.isclose(band.max(), np.percentile(values, 75, axis=0).max(), rtol=1e-9)
    assert np.isclose(band.min(), np.percentile(values, 25, axis=0).min(), rtol=1e-9)
    assert ax.get_legend().get_title().get_text() == plots.BAND_NOTE


def _rows(step_values: list[float]) -> list[dict]:
    return [{"step": s * 10, "train_loss": v} for s, v in enumerate(step_values)]


@pytest.mark.slow
def test_past_nine_groups_the_figure_becomes_small_multiples(tmp_path, figures):
    rng = np.random.default_rng(0)
    groups = [
        (f"units={u}", [_rows(list(1.0 / (1 + u) + 0.01 * rng.random(5))) for _ in range(3)])
        for u in range(12)
    ]
    plots.grouped_curves(groups, ["train_loss"], tmp_path / "loss.png", "twelve")
    fig = figures["loss.png"]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 12
    for ax, (label, _) in zip(panels, groups, strict=True):
        assert ax.get_title() == f"{label} (n=3)"
        lines, bands = _lines_and_bands(ax)
        assert len(lines) == 1 and len(bands) == 1  # its own group, drawn on the others
        assert len(ax.get_lines()) == 13  # 12 faint context lines + its own


def test_single_runs_keep_one_plain_line_each(tmp_path, figures):
    groups = [(f"run {i}", [_rows([1.0, 0.5, 0.2 + i / 10])]) for i in range(3)]
    plots.grouped_curves(groups, ["train_loss"], tmp_path / "loss.png", "three")
    lines, bands = _lines_and_bands(figures["loss.png"].axes[0])
    assert [ln.get_label() for ln in lines] == ["run 0", "run 1", "run 2"] and not bands


@pytest.mark.slow
def test_nnlab_plot_of_several_runs_groups_the_ones_that_differ_only_in_seed(tmp_path, figures):
    made = []
    for activation in ("tanh", "relu"):
        for seed in (0, 1, 2):
            sets = {"model.activation": activation, "seed": seed, "train.iterations": 200}
            run = nnlab.train(CONFIGS / "moons_tanh.yaml", sets, runs_dir=tmp_path)
            made.append(load_run(run.path))
    for run in made:
        run.metrics = read_metrics(run.path / "metrics.csv")
    compare(made, tmp_path / "cmp", ["loss"])
    lines, bands = _lines_and_bands(figures["compare_loss.png"].axes[0])
    assert sorted(ln.get_label() for ln in lines) == [
        "activation=relu (n=3)",
        "activation=tanh (n=3)",
    ]
    assert len(bands) == 2


@pytest.mark.slow
def test_nnlab_plot_of_a_sweeps_job_folders_groups_their_seeds_on_a_log_step_axis(
    tmp_path, figures, capsys
):
    """Jobs are named 'SWEEP / JOB' (their seed in it): overlaid by their folders, those that
    differ only in their seed are still one group; rows at log-spaced steps: symlog."""
    from nnlab.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: seeds\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n  seeds: [0, 1]\n"
        "  table: {rows: model.layers, cols: model.activation, value: train_acc}\n"
    )
    sets = {"train.iterations": 300, "train.log_every": 100, "train.log_schedule": "log"}
    folder = nnlab.sweep(path, sets, runs_dir=tmp_path, jobs=2).path
    jobs = sorted(str(p) for p in folder.glob("jobs/*/attempt-1"))
    assert len(jobs) == 4
    with pytest.raises(SystemExit) as done:
        main(["plot", *jobs, "--out", str(tmp_path / "cmp")])
    assert done.value.code == 0, capsys.readouterr().err
    ax = figures["compare_loss.png"].axes[0]
    lines, bands = _lines_and_bands(ax)
    assert sorted(ln.get_label() for ln in lines) == [
        "activation=relu (n=2)",
        "activation=tanh (n=2)",
    ]
    assert len(bands) == 2 and ax.get_xscale() == "symlog"


@pytest.mark.slow
def test_nnlab_plot_of_several_sweeps_draws_a_line_per_group_of_all_their_jobs(
    tmp_path, figures, capsys
):
    from nnlab.cli import main

    folders = []
    for name, epsilon in (("first", 0.01), ("second", 0.03)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"sweep:\n  name: {name}\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
            "  grid:\n    model.activation: [tanh]\n  seeds: [0, 1]\n"
        )
        sets = {"train.iterations": 100, "train.log_every": 50, "train.epsilon": epsilon}
        folders.append(nnlab.sweep(path, sets, runs_dir=tmp_path / "runs", jobs=2).path)
    with pytest.raises(SystemExit) as done:
        main(
            ["plot", *map(str, folders), "--out", str(tmp_path / "both"), "--metric", "train_loss"]
        )
    assert done.value.code == 0, capsys.readouterr().err
    lines, bands = _lines_and_bands(figures["compare_train_loss.png"].axes[0])
    assert sorted(ln.get_label() for ln in lines) == [
        "sweep=first epsilon=0.01 (n=2)",
        "sweep=second epsilon=0.03 (n=2)",
    ]
    assert len(bands) == 2  # four jobs: a group of two seeds per sweep


NAN = float("nan")
# test loss and accuracy of five seeds at steps 0, 10, 20, 30; per group, seed 4 is the odd one
TANH = [  # seed 4 diverges at step 20 (a row of NaN, then no more rows)
    [(0.70, 0.50), (0.30, 0.90), (0.010, 0.99), (0.0, 1.00)],
    [(0.72, 0.52), (0.31, 0.91), (0.020, 0.98), (0.0, 1.00)],
    [(0.69, 0.55), (0.29, 0.93), (0.030, 1.00), (0.002, 1.00)],
    [(0.71, 0.51), (0.35, 0.88), (0.900, 0.70), (0.9, 0.70)],
    [(0.75, 0.50), (3.00, 0.60), (NAN, NAN)],
]
RELU = [  # seed 4 explodes: its test loss reaches 1e3
    [(0.70, 0.50), (0.40, 0.80), (0.30, 0.85), (0.25, 0.88)],
    [(0.68, 0.52), (0.42, 0.79), (0.31, 0.86), (0.26, 0.87)],
    [(0.71, 0.51), (0.38, 0.81), (0.29, 0.87), (0.24, 0.89)],
    [(0.72, 0.50), (0.41, 0.80), (0.32, 0.84), (0.27, 0.86)],
    [(0.70, 0.50), (5.00, 0.50), (60.0, 0.50), (1e3, 0.50)],
]


def _seeds(table: list) -> list[list[dict]]:
    return [
        [{"step": 10 * i, "test_loss": loss, "test_acc": acc} for i, (loss, acc) in enumerate(seed)]
        for seed in table
    ]


def _by_step(table: list, column: int) -> list[list[float]]:
    """Each step's finite values over the seeds that logged it."""
    return [
        [seed[i][column] for seed in table if i < len(seed) and np.isfinite(seed[i][column])]
        for i in range(4)
    ]


GROUPS = [("activation=tanh", _seeds(TANH)), ("activation=relu", _seeds(RELU))]


def _band_edges(band: PolyCollection, step: float | None = None) -> np.ndarray:
    """The y of the band's outline (at one step, its lower and upper edge)."""
    xy = band.get_paths()[0].vertices
    return xy[:, 1] if step is None else xy[xy[:, 0] == step, 1]


def test_n_is_counted_per_step_and_the_median_band_stays_in_range(tmp_path):
    fig = plots.grouped_figure(GROUPS, ["test_loss"], "one diverged, one exploded")
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "activation=tanh (n=4–5)",  # five seeds, four with a value from step 20 on
        "activation=relu (n=5)",
    ]
    assert legend.get_title().get_text() == plots.BAND_NOTE
    assert "median" in plots.BAND_NOTE and "interquartile" in plots.BAND_NOTE
    (tanh, relu), bands = _lines_and_bands(ax)
    assert list(tanh.get_xdata()) == [0, 10, 20, 30]
    assert np.allclose(tanh.get_ydata(), [np.median(v) for v in _by_step(TANH, 0)])
    # one seed at 1e3 leaves the median where the other four are (the mean would be ~200)
    assert relu.get_ydata()[-1] == pytest.approx(0.26)
    assert _band_edges(bands[1], 30).max() == pytest.approx(0.27)  # its 75th percentile
    # tanh's last step is 0, 0, 0.002, 0.9: its 25th percentile, 0, is raised to the smallest
    # positive value shown, the median 0.001, so the log axis keeps the band (the mean − one
    # std would be < 0)
    assert ax.get_yscale() == "log"
    assert tanh.get_ydata()[-1] == pytest.approx(0.001)
    assert _band_edges(bands[0], 30).min() == pytest.approx(0.001)
    assert all(_band_edges(b).min() > 0 for b in bands)
    band = plots.seed_band(GROUPS[0][1], "test_loss")
    assert band.n == [5, 5, 4, 4] and band.runs == 5
    plots._pyplot().close(fig)

    fig = plots.grouped_figure(GROUPS, ["test_acc"], "accuracy")
    ax = fig.axes[0]
    (tanh, relu), bands = _lines_and_bands(ax)
    assert np.allclose(tanh.get_ydata(), [np.median(v) for v in _by_step(TANH, 1)])
    for b in bands:  # mean + one std of 0.99, 0.98, 1, 0.7 would pass 100%
        assert _band_edges(b).min() >= 0 and _band_edges(b).max() <= 1
    plots._pyplot().close(fig)


def test_the_report_data_carries_n_per_step_and_the_same_band():
    from nnlab.reports.explore import html_block, sweep_data

    data = sweep_data(GROUPS, [], "")
    block = html_block(data)
    payload = block.split('id="nnlab-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(payload) == data  # the page carries exactly this
    loss, acc = data["charts"]
    assert loss["log"] and acc["percent"]
    assert loss["note"] == acc["note"] == plots.BAND_NOTE
    tanh, relu = loss["lines"]
    assert tanh["n"] == [5, 5, 4, 4] and tanh["n_range"] == [4, 5]
    assert relu["n"] == [5] * 4 and relu["n_range"] == [5, 5]
    assert tanh["y"] == pytest.approx([np.median(v) for v in _by_step(TANH, 0)])
    assert relu["y"][-1] == pytest.approx(0.26) and relu["hi"][-1] == pytest.approx(0.27)
    assert min(tanh["lo"] + relu["lo"]) > 0
    for line in acc["lines"]:
        assert min(line["lo"]) >= 0 and max(line["hi"]) <= 1


@pytest.mark.slow
def test_a_sweep_with_a_seed_that_stopped_early_counts_it_only_while_it_ran(tmp_path, figures):
    """A real sweep of five seeds, one job's metrics cut short after two rows, as a run that
    diverged leaves them: its figure and its report say n=4–5, and n per step."""
    from nnlab.reports.report import write_report
    from nnlab.reports.results import replot

    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: early\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh]\n  seeds: [0, 1, 2, 3, 4]\n"
    )
    sets = {"train.iterations": 100, "train.log_every": 20}
    done = nnlab.sweep(path, sets, runs_dir=tmp_path / "runs", jobs=2)
    jobs = state_of(done.path)["jobs"]
    short = done.path / next(j["run"] for k, j in jobs.items() if k.endswith("seed=4"))
    csv_lines = (short / "metrics.csv").read_text().splitlines(keepends=True)
    (short / "metrics.csv").write_text("".join(csv_lines[:3]))  # the header and two rows
    steps = len(csv_lines) - 1

    replot(done.path)
    for name in ("loss.png", "accuracy.png"):
        ax = figures[name].axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["activation=tanh (n=4–5)"]
    write_report(done.path)
    html = (done.path / "report.html").read_text()
    payload = html.split('id="nnlab-data">', 1)[1].split("</script>", 1)[0]
    for chart in json.loads(payload)["charts"]:
        (line,) = chart["lines"]
        assert line["n"] == [5, 5] + [4] * (steps - 2) and line["n_range"] == [4, 5]
        if chart["percent"]:
            assert min(line["lo"]) >= 0 and max(line["hi"]) <= 1
        else:
            assert min(line["lo"]) > 0
