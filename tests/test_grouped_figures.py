"""Comparison figures group runs the way the tables do: a line per group of seeds (the mean)
with a band of ± one standard deviation; small multiples when one axes would be crowded."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

import nnlab
from nnlab import plots
from nnlab.results import compare
from nnlab.runs import load_run, read_metrics
from tests.conftest import CONFIGS
from tests.test_sweep import state_of


@pytest.fixture
def figures(monkeypatch):
    """The figures nnlab.plots saves, kept open (by file name) to be inspected."""
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


def test_a_3x3x5_sweep_draws_9_mean_lines_with_9_bands(tmp_path, figures):
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
    # the tanh [2, 5, 2] line is the mean of its five seeds' train loss, the band ± their std
    line = next(ln for ln in lines if ln.get_label() == "activation=tanh layers=2-5-2 (n=5)")
    runs = [
        read_metrics(done.path / j["run"] / "metrics.csv")
        for k, j in jobs.items()
        if k.startswith("activation=tanh,layers=2-5-2,")
    ]
    values = np.array([[r["train_loss"] for r in rows] for rows in runs])
    assert list(line.get_xdata()) == [r["step"] for r in runs[0]]
    assert np.allclose(line.get_ydata(), values.mean(axis=0), rtol=1e-12)
    band = bands[lines.index(line)].get_paths()[0].vertices[:, 1]
    top = values.mean(axis=0) + values.std(axis=0, ddof=1)
    assert np.isclose(band.max(), top.max(), rtol=1e-9)


def _rows(step_values: list[float]) -> list[dict]:
    return [{"step": s * 10, "train_loss": v} for s, v in enumerate(step_values)]


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
