"""The figures of a hyperparameter search (nnlab.figures.search and .parallel): written as
PNGs, None when there is nothing to draw, the importances (fANOVA) and the best-so-far series
they show, read back from the matplotlib figures: titles, scales, ticks, colour ranges."""

from __future__ import annotations

import math
import random

import matplotlib.image
import numpy as np
import pytest

from nnlab.figures import parallel as parallel_plots
from nnlab.figures import search as search_plots
from nnlab.figures.parallel import colour_ranks, parallel_coordinates
from nnlab.figures.search import (
    best_so_far,
    importance_groups,
    importances,
    optimisation_history,
    param_importances,
)
from nnlab.figures.trials import TrialRecord
from nnlab.sweeps.search.space import Param


def search(n: int = 30, seed: int = 3) -> list[TrialRecord]:
    """A synthetic search: epsilon log-uniform, momentum uniform, optimizer a choice; the
    accuracy rises with log epsilon and barely depends on the rest; some pruned, one failed."""
    rng = random.Random(seed)
    trials = []
    for number in range(n):
        eps = 10 ** rng.uniform(-4, math.log10(0.3))
        params = {
            "train.epsilon": eps,
            "train.momentum": rng.uniform(0, 0.99),
            "train.optimizer": rng.choice(["sgd", "adam"]),
        }
        acc = 0.9 + 0.02 * math.log10(eps) + rng.gauss(0, 0.003)
        status, value = "completed", acc
        if number in (4, 9, 13):
            status, value = "pruned", acc - 0.05
        elif number in (17, 26):
            status, value = "pruned", None
        elif number == 11:
            status, value = "failed", None
        trials.append(TrialRecord(number, params, status, value))
    return trials


@pytest.fixture
def figures(monkeypatch):
    """The figures the module saves, kept open (by title) for their axes to be inspected."""
    seen = {}
    real_save = search_plots._save

    def save(fig, path):
        title = fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()
        seen[title] = fig
        fig.canvas.draw()  # tick labels are only formatted on drawing
        texts = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        fig.nnlab_yticks = texts
        return real_save(fig, path)

    monkeypatch.setattr(search_plots, "_save", save)
    monkeypatch.setattr(parallel_plots, "_save", save)
    return seen


def check_png(path, min_width=500, min_height=250):
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    assert image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_three_figures_are_written_as_pngs(tmp_path):
    trials = search()
    paths = [
        optimisation_history(trials, "val_acc", "maximize", tmp_path / "h.png", "sweep s"),
        param_importances(trials, "val_acc", tmp_path / "plots" / "i.png", "sweep s"),
        parallel_coordinates(trials, "val_acc", "maximize", tmp_path / "p.png", "sweep s"),
    ]
    assert paths == [tmp_path / "h.png", tmp_path / "plots" / "i.png", tmp_path / "p.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        check_png(path)
    # written atomically: no temporary file left beside them
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("status", ["pruned", "failed", "running"])
def test_nothing_completed_draws_nothing(tmp_path, status):
    trials = [TrialRecord(i, {"train.lr": 0.1 * (i + 1)}, status, None) for i in range(5)]
    trials[0].value = 0.5  # a pruned trial's last value does not make it completed
    assert optimisation_history(trials, "val_acc", "maximize", tmp_path / "h.png", "t") is None
    assert param_importances(trials, "val_acc", tmp_path / "i.png", "t") is None
    assert parallel_coordinates(trials, "val_acc", "maximize", tmp_path / "p.png", "t") is None
    assert best_so_far(trials, "maximize") == []
    assert list(tmp_path.iterdir()) == []


def test_importances_need_two_completed_trials_and_a_varying_param(tmp_path):
    one = [TrialRecord(0, {"a": 1.0}, "completed", 0.5), TrialRecord(1, {"a": 2.0}, "failed")]
    assert param_importances(one, "val_acc", tmp_path / "i.png", "t") is None
    constant = [TrialRecord(i, {"a": 1.0, "b": "x"}, "completed", i / 10) for i in range(4)]
    assert importances(constant) == {"a": 0.0, "b": 0.0}
    assert param_importances(constant, "val_acc", tmp_path / "i.png", "t") is None
    flat = [TrialRecord(i, {"a": float(i)}, "completed", 0.5) for i in range(4)]
    assert importances(flat) == {"a": 0.0}  # a metric that never changes: no shares
    assert not (tmp_path / "i.png").exists()


def _lr_trials(n: int = 40, seed: int = 0, value=None) -> list[TrialRecord]:
    rng = random.Random(seed)
    trials = []
    for i in range(n):
        lr = 10 ** rng.uniform(-4, -1)
        params = {"noise": rng.uniform(0, 1), "train.lr": lr, "fixed": 7}
        params["opt"] = rng.choice(["sgd", "adam"])
        y = value(lr) if value else -math.log10(lr)
        trials.append(TrialRecord(i, params, "completed", y + 0.05 * rng.random()))
    return trials


def test_importances_rank_the_driving_param_first_and_a_constant_one_zero():
    scores = importances(_lr_trials())
    assert list(scores)[0] == "train.lr"
    assert scores["train.lr"] > 0.6
    assert scores["fixed"] == 0.0
    assert math.isclose(sum(scores.values()), 1.0)
    assert list(scores.values()) == sorted(scores.values(), reverse=True)
    assert set(scores) == {"noise", "train.lr", "fixed", "opt"}


def test_fanova_finds_a_mid_range_optimum_that_rank_correlation_misses():
    """The loss is lowest at lr = 10^-2.5, mid-range on the log scale: not monotone, so a
    rank correlation scores it near 0; fANOVA gives it most of the variance."""
    trials = _lr_trials(60, value=lambda lr: (math.log10(lr) + 2.5) ** 2)
    scores = importances(trials)
    assert list(scores)[0] == "train.lr" and scores["train.lr"] > 0.7, scores
    assert importances(trials) == scores  # seeded: the same records, the same numbers


def test_a_categorical_param_that_sets_the_metric_takes_it_all():
    trials = [
        TrialRecord(i, {"opt": choice, "wd": 0.1}, "completed", value)
        for i, (choice, value) in enumerate([("sgd", 0.2), ("adam", 0.9)] * 5)
    ]
    trials.append(TrialRecord(10, {"opt": "rmsprop", "wd": 5.0}, "pruned", 0.1))  # not counted
    assert importances(trials) == {"opt": 1.0, "wd": 0.0}
    bools = [
        TrialRecord(i, {"nesterov": i % 2 == 0, "lr": 0.1}, "completed", 1.0 if i % 2 else 0.0)
        for i in range(6)
    ]
    assert importances(bools) == {"nesterov": 1.0, "lr": 0.0}


SPACE = {
    "train.optimizer": Param("train.optimizer", "choice", choices=["sgd", "adam"]),
    "train.momentum": Param("train.momentum", "float", 0.0, 0.95, when={"train.optimizer": "sgd"}),
    "train.epsilon": Param("train.epsilon", "float", 1e-4, 0.3, log=True),
}


def conditional_search(n: int = 40, seed: int = 1) -> list[TrialRecord]:
    """Momentum only for sgd, where it sets the metric; epsilon barely matters."""
    rng = random.Random(seed)
    trials = []
    for i in range(n):
        params = {"train.optimizer": rng.choice(["sgd", "adam"])}
        if params["train.optimizer"] == "sgd":
            params["train.momentum"] = rng.uniform(0, 0.95)
        params["train.epsilon"] = 10 ** rng.uniform(-4, math.log10(0.3))
        value = 0.5 + 0.01 * rng.random() - 0.3 * params.get("train.momentum", 0.5)
        trials.append(TrialRecord(i, params, "completed", value))
    return trials


def test_a_conditional_param_is_scored_only_over_the_trials_it_applied_to(tmp_path, figures):
    trials = conditional_search()
    sgd = [t for t in trials if "train.momentum" in t.params]
    groups = importance_groups(trials, SPACE)
    assert [g.trials for g in groups] == [len(trials), len(sgd)]
    assert "train.momentum" not in groups[0].scores  # adam trials lack it: never scored there
    assert set(groups[1].scores) == {"train.momentum", "train.epsilon"}  # optimizer is constant
    assert groups[1].condition == "train.optimizer = sgd"
    assert list(groups[1].scores)[0] == "train.momentum"
    # the same numbers as Optuna's own evaluation over the sgd trials alone
    assert groups[1].scores == importances(sgd, SPACE, ["train.momentum", "train.epsilon"])
    param_importances(trials, "val_loss", tmp_path / "i.png", "sweep s", SPACE)
    fig = figures["Parameter importances — sweep s"]
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [
        f"over all {len(trials)} completed trials",
        f"over the {len(sgd)} completed trials where train.optimizer = sgd",
    ]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()][-1] == "train.momentum"
    for ax in fig.axes:
        assert sum(bar.get_width() for bar in ax.patches) == pytest.approx(1.0)


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_best_so_far_is_monotone(direction):
    trials = search()
    series = best_so_far(trials, direction)
    completed = sorted(t.number for t in trials if t.status == "completed")
    assert [n for n, _ in series] == completed
    values = [v for _, v in series]
    steps = list(zip(values, values[1:], strict=False))
    if direction == "maximize":
        assert all(b >= a for a, b in steps)
        assert values[-1] == max(t.value for t in trials if t.status == "completed")
    else:
        assert all(b <= a for a, b in steps)
        assert values[-1] == min(t.value for t in trials if t.status == "completed")
    assert len(set(values)) > 1  # the synthetic search does improve along the way


def test_best_so_far_by_hand_and_out_of_order():
    trials = [
        TrialRecord(2, {}, "completed", 0.3),
        TrialRecord(0, {}, "completed", 0.5),
        TrialRecord(1, {}, "pruned", 0.9),
        TrialRecord(3, {}, "completed", 0.7),
        TrialRecord(4, {}, "completed", float("nan")),
        TrialRecord(5, {}, "completed", 0.1),
    ]
    assert best_so_far(trials, "maximize") == [(0, 0.5), (2, 0.5), (3, 0.7), (5, 0.7)]
    assert best_so_far(trials, "minimize") == [(0, 0.5), (2, 0.3), (3, 0.3), (5, 0.1)]
    with pytest.raises(ValueError, match="direction"):
        best_so_far(trials, "max")


def test_history_shows_accuracy_in_percent_and_counts_what_it_cannot_plot(tmp_path, figures):
    optimisation_history(search(), "val_acc", "maximize", tmp_path / "h.png", "sweep s")
    (fig,) = figures.values()
    ax = fig.axes[0]
    assert "%" in ax.get_ylabel()
    assert ax.get_yscale() == "linear"  # an accuracy stays linear, in percent
    assert ax.get_xlabel() == "trial number"
    assert all(t.endswith("%") for t in fig.nnlab_yticks if t)
    assert "sweep s" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "completed (24)" in legend
    assert "pruned (5, 2 without a value)" in legend
    assert "best so far" in legend
    assert any("1 failed" in t for t in legend)
    # the step line ends at the best completed value
    (step,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    best = max(t.value for t in search() if t.status == "completed")
    assert step.get_ydata()[-1] == pytest.approx(best)


def test_history_of_a_loss_is_on_a_log_axis_with_plain_ticks(tmp_path, figures):
    """Good trials near 0.01 stay apart under an outlier at 5: the loss axis is log."""
    values = [0.012, 0.011, 5.0, 0.03, 0.0105]
    trials = [TrialRecord(i, {"lr": 0.1}, "completed", v) for i, v in enumerate(values)]
    trials.append(TrialRecord(5, {"lr": 0.2}, "diverged", None))
    optimisation_history(trials, "val_loss", "minimize", tmp_path / "h.png", "t")
    fig = next(iter(figures.values()))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    assert "%" not in ax.get_ylabel()
    shown = [t for t in fig.nnlab_yticks if t]
    assert "0.01" in shown and "0.02" in shown and not any("10^" in t or "×" in t for t in shown)
    assert not any("%" in t for t in next(iter(figures.values())).nnlab_yticks)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("1 diverged" in t for t in legend)
    check_png(tmp_path / "h.png")


def test_importance_figure_names_the_method_and_orders_the_bars(tmp_path, figures):
    trials = search()
    param_importances(trials, "val_acc", tmp_path / "i.png", "sweep s")
    (ax,) = figures["Parameter importances — sweep s"].axes
    assert "fANOVA" in ax.get_xlabel() and "sum to 1" in ax.get_xlabel()
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1] == "train.epsilon"  # barh: the top bar is the last label
    assert sorted(names) == ["train.epsilon", "train.momentum", "train.optimizer"]
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == sorted(widths)
    assert sum(widths) == pytest.approx(1.0)


def _trial_lines(ax, n_axes: int) -> list:
    """The solid line of each trial (one point per axis); dashed bridges are apart."""
    return [
        line
        for line in ax.get_lines()
        if len(line.get_xdata()) == n_axes and line.get_linestyle() == "-"
    ]


def _axis_texts(ax, x: float) -> dict[float, str]:
    """The labels beside the axis at x, by height: its ticks and its "(unset)" slot."""
    return {
        t.get_position()[1]: t.get_text()
        for t in ax.texts
        if abs(t.get_position()[0] - (x - 0.04)) < 1e-9
    }


def _axis_ticks(ax, x: float) -> list[str]:
    return [text for y, text in _axis_texts(ax, x).items() if y >= 0]


def test_parallel_coordinates_draw_an_absent_param_in_an_unset_slot(tmp_path, figures):
    """Momentum applies to sgd only: an adam trial has no value on its axis, so its line
    crosses it dashed through the "(unset)" slot under the axis, not at a height inside the
    axis that would read as a momentum; the axis says for how many trials it applied. Axes
    every trial has get no slot."""
    trials = conditional_search()
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "sweep s", SPACE)
    fig = next(iter(figures.values()))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    n_sgd = sum("train.momentum" in t.params for t in trials)
    assert labels == [
        "train.optimizer",
        f"train.momentum\n(when train.optimizer = sgd: {n_sgd} of {len(trials)})",
        "train.epsilon\n(log)",
        "Validation loss\n(log)",
    ]
    unset = parallel_plots.UNSET
    assert unset < 0 and ax.get_ylim()[0] < unset  # under the axis, inside the figure
    assert _axis_texts(ax, 1)[unset] == "(unset)"
    assert [unset not in _axis_texts(ax, x) for x in (0, 2, 3)] == [True, True, True]
    # the solid line of a trial has no point on an axis whose param it lacks
    lines = _trial_lines(ax, 4)
    assert len(lines) == len(trials)
    absent = [line for line in lines if math.isnan(line.get_ydata()[1])]
    assert len(absent) == len(trials) - n_sgd
    assert all(not math.isnan(y) for line in lines for y in np.delete(line.get_ydata(), 1))
    # its dashed stretch runs from optimizer through the slot to epsilon, in its colour
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == len(absent)
    assert all(list(d.get_xdata()) == [0, 1, 2] for d in dashed)
    assert all(d.get_ydata()[1] == unset for d in dashed)
    by_colour = {tuple(line.get_color()): line for line in absent}
    for d in dashed:
        solid = by_colour[tuple(d.get_color())]
        assert list(d.get_ydata()[[0, 2]]) == list(solid.get_ydata()[[0, 2]])
    # a present momentum is never drawn in the slot
    present = [line for line in lines if not math.isnan(line.get_ydata()[1])]
    assert all(0 <= line.get_ydata()[1] <= 1 for line in present)
    check_png(tmp_path / "p.png")


def test_an_unset_first_or_last_param_still_reaches_its_slot(tmp_path, figures):
    """A conditional param on the first axis, or two in a row: the dashed stretch starts at
    the slot, or passes both slots, and the line never loses a segment."""
    trials = [
        TrialRecord(0, {"a": 0.1, "b": 1.0, "c": 2.0}, "completed", 0.5),
        TrialRecord(1, {"c": 3.0}, "completed", 0.4),
        TrialRecord(2, {"a": 0.3, "b": 2.0, "c": 1.0}, "completed", 0.3),
    ]
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "t")
    ax = next(iter(figures.values())).axes[0]
    unset = parallel_plots.UNSET
    (dashed,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(dashed.get_xdata()) == [0, 1, 2]
    assert list(dashed.get_ydata()[:2]) == [unset, unset]
    assert _axis_texts(ax, 0)[unset] == _axis_texts(ax, 1)[unset] == "(unset)"
    assert unset not in _axis_texts(ax, 2)


def test_parallel_coordinates_axes_have_intermediate_ticks_and_declared_scales(tmp_path, figures):
    """Momentum is linear on its declared range [0, 0.95] with ticks between the ends;
    epsilon, declared log, gets ticks at 1, 2 and 5 times the powers of ten."""
    trials = conditional_search()
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "t", SPACE)
    ax = next(iter(figures.values())).axes[0]
    assert _axis_ticks(ax, 1) == ["0", "0.2", "0.4", "0.6", "0.8"]
    eps = _axis_ticks(ax, 2)
    assert {"0.0001", "0.001", "0.01", "0.1", "0.0002", "0.05"} <= set(eps)
    assert len(_axis_ticks(ax, 3)) >= 3  # the metric too, not only its min and max
    # positions follow the declared range and scales
    sgd = next(t for t in conditional_search() if "train.momentum" in t.params)
    line = next(
        line
        for line in _trial_lines(ax, 4)
        if line.get_ydata()[1] == pytest.approx(sgd.params["train.momentum"] / 0.95)
    )
    expected = math.log10(sgd.params["train.epsilon"] / 1e-4) / math.log10(0.3 / 1e-4)
    assert line.get_ydata()[2] == pytest.approx(expected)


def test_parallel_coordinates_colour_by_rank_so_an_outlier_does_not_flatten_the_rest(
    tmp_path, figures
):
    """Nine losses near 0.1 and one at 50: by value, nine lines would share one colour; by
    rank they spread over the whole colour map, the best yellow. The colour bar runs over
    ranks 0..1, labelled with the values at the quartiles, worst to best."""
    values = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 50.0]
    trials = [
        TrialRecord(i, {"hidden": 10 + i, "act": "relu"}, "completed", v)
        for i, v in enumerate(values)
    ]
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "t")
    fig = next(iter(figures.values()))
    ax, bar_axes = fig.axes
    bar = bar_axes._colorbar
    assert colour_ranks(values, "minimize") == pytest.approx([1 - i / 9 for i in range(10)])
    assert colour_ranks(values, "maximize") == pytest.approx([i / 9 for i in range(10)])
    norm = bar.mappable.norm
    assert (norm.vmin, norm.vmax) == (0.0, 1.0)
    # ranks 0, 2.25, 4.5, 6.75 and 9 of 9 from the worst: the nearest trials' values
    assert [t.get_text() for t in bar_axes.get_yticklabels()] == [
        "50",
        "0.17",
        "0.15",
        "0.12",
        "0.1",
    ]
    assert "rank" in bar_axes.get_ylabel()
    import matplotlib

    viridis = matplotlib.colormaps["viridis"]
    lines = _trial_lines(ax, 3)
    colours = {tuple(np.round(line.get_color(), 3)) for line in lines}
    assert len(colours) == 10  # every trial its own colour
    thick = max(lines, key=lambda line: line.get_linewidth())
    assert np.allclose(thick.get_color(), viridis(1.0))  # the best is yellow
    assert thick.get_ydata()[-1] == pytest.approx(0.0)  # the lowest loss, bottom of its axis


def test_parallel_coordinates_handle_accuracy_categorical_and_guessed_scales(tmp_path, figures):
    """Without a space: log10 guessed for values spanning two decades, choices evenly
    spaced, the metric axis in percent, the best (highest accuracy) line thickest."""
    trials = search()
    parallel_coordinates(trials, "val_acc", "maximize", tmp_path / "p.png", "sweep s")
    fig = next(iter(figures.values()))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [
        "train.epsilon\n(log)",
        "train.momentum",
        "train.optimizer",
        "Validation accuracy",
    ]
    texts = {t.get_text() for t in ax.texts}
    assert {"adam", "sgd"} <= texts
    assert any(t.endswith("%") for t in texts)  # the metric axis in percent
    completed = [t for t in trials if t.status == "completed"]
    lines = _trial_lines(ax, 4)
    assert len(lines) == len(completed)
    thick = max(lines, key=lambda line: line.get_linewidth())
    assert thick.get_ydata()[-1] == pytest.approx(1.0)
    assert all(line.get_linewidth() < thick.get_linewidth() for line in lines if line is not thick)
    assert all(t.endswith("%") for t in (x.get_text() for x in fig.axes[1].get_yticklabels()))
    check_png(tmp_path / "p.png")


def test_parallel_coordinates_use_the_declared_scale_over_the_guess(tmp_path, figures):
    """Momentum in [0, 0.95] is linear even when the values span decades; a declared log
    scale holds even when they do not."""
    trials = [
        TrialRecord(i, {"train.momentum": m, "train.epsilon": e}, "completed", v)
        for i, (m, e, v) in enumerate([(0.0001, 0.01, 0.9), (0.9, 0.02, 0.8), (0.5, 0.03, 0.7)])
    ]
    space = {
        "train.momentum": Param("train.momentum", "float", 0.0, 0.95),
        "train.epsilon": Param("train.epsilon", "float", 0.01, 0.03, log=True),
    }
    parallel_coordinates(trials, "val_acc", "maximize", tmp_path / "p.png", "t", space)
    ax = next(iter(figures.values())).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:2] == ["train.momentum", "train.epsilon\n(log)"]
    lines = [line.get_ydata() for line in _trial_lines(ax, 3)]
    momentum, epsilon = sorted(y[0] for y in lines), sorted(y[1] for y in lines)
    assert momentum == pytest.approx([0.0001 / 0.95, 0.5 / 0.95, 0.9 / 0.95])  # linear
    assert epsilon == pytest.approx([0.0, math.log(2) / math.log(3), 1.0])  # log10
