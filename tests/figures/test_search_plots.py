"""The figures of a hyperparameter search (nnlab.figures.search): written as PNGs, None when
there is nothing to draw, the importances and the best-so-far series they show."""

from __future__ import annotations

import math
import random

import matplotlib.image
import pytest

from nnlab.figures import search as search_plots
from nnlab.figures.search import (
    TrialRecord,
    best_so_far,
    importances,
    optimisation_history,
    parallel_coordinates,
    param_importances,
)


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
        seen[fig.axes[0].get_title()] = fig
        fig.canvas.draw()  # tick labels are only formatted on drawing
        texts = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        fig.nnlab_yticks = texts
        return real_save(fig, path)

    monkeypatch.setattr(search_plots, "_save", save)
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
    assert importances(constant, "val_acc") == {"a": 0.0, "b": 0.0}
    assert param_importances(constant, "val_acc", tmp_path / "i.png", "t") is None
    assert not (tmp_path / "i.png").exists()


def test_importances_rank_the_driving_param_first_and_a_constant_one_zero():
    rng = random.Random(0)
    trials = []
    for i in range(40):
        lr = 10 ** rng.uniform(-4, -1)
        noise = rng.uniform(0, 1)
        trials.append(
            TrialRecord(
                i,
                {"noise": noise, "train.lr": lr, "fixed": 7, "opt": rng.choice(["sgd", "adam"])},
                "completed",
                -math.log10(lr) + 0.05 * rng.random(),
            )
        )
    scores = importances(trials, "val_loss")
    assert list(scores)[0] == "train.lr"
    assert scores["train.lr"] > 0.6
    assert scores["fixed"] == 0.0
    assert math.isclose(sum(scores.values()), 1.0)
    assert list(scores.values()) == sorted(scores.values(), reverse=True)
    assert set(scores) == {"noise", "train.lr", "fixed", "opt"}


def test_importances_of_a_categorical_param_use_the_correlation_ratio():
    # the metric is set by the choice alone: eta is 1; the numeric param is a constant 0
    trials = [
        TrialRecord(i, {"opt": choice, "wd": 0.1}, "completed", value)
        for i, (choice, value) in enumerate([("sgd", 0.2), ("adam", 0.9)] * 5)
    ]
    trials.append(TrialRecord(10, {"opt": "rmsprop", "wd": 5.0}, "pruned", 0.1))  # not counted
    assert importances(trials, "val_acc") == {"opt": 1.0, "wd": 0.0}
    # eta by hand: groups {0, 1} and {1, 1}, overall mean 0.75 -> sqrt(0.25 / 0.75)
    mixed = [
        TrialRecord(0, {"c": "a", "x": 1.0}, "completed", 0.0),
        TrialRecord(1, {"c": "a", "x": 2.0}, "completed", 1.0),
        TrialRecord(2, {"c": "b", "x": 3.0}, "completed", 1.0),
        TrialRecord(3, {"c": "b", "x": 4.0}, "completed", 1.0),
    ]
    eta = math.sqrt(0.25 / 0.75)
    rho = 3 / math.sqrt(5 * 3)  # Pearson of ranks (0, 1, 2, 3) and tied ranks (0, 2, 2, 2)
    scores = importances(mixed, "val_acc")
    assert scores["c"] == pytest.approx(eta / (eta + rho))
    assert scores["x"] == pytest.approx(rho / (eta + rho))


def test_bools_are_categorical():
    trials = [
        TrialRecord(i, {"nesterov": i % 2 == 0, "lr": 0.1}, "completed", 1.0 if i % 2 else 0.0)
        for i in range(6)
    ]
    assert importances(trials, "val_acc") == {"nesterov": 1.0, "lr": 0.0}


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


def test_history_of_a_loss_is_not_in_percent(tmp_path, figures):
    trials = [TrialRecord(i, {"lr": 0.1}, "completed", 2.0 - 0.1 * i) for i in range(5)]
    trials.append(TrialRecord(5, {"lr": 0.2}, "diverged", None))
    optimisation_history(trials, "val_loss", "minimize", tmp_path / "h.png", "t")
    ax = next(iter(figures.values())).axes[0]
    assert "%" not in ax.get_ylabel()
    assert not any("%" in t for t in next(iter(figures.values())).nnlab_yticks)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("1 diverged" in t for t in legend)
    check_png(tmp_path / "h.png")


def test_importance_figure_names_the_method_and_orders_the_bars(tmp_path, figures):
    trials = search()
    param_importances(trials, "val_acc", tmp_path / "i.png", "sweep s")
    ax = next(iter(figures.values())).axes[0]
    assert "(rank correlation / correlation ratio; normalised)" in ax.get_xlabel()
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1] == "train.epsilon"  # barh: the top bar is the last label
    assert sorted(names) == ["train.epsilon", "train.momentum", "train.optimizer"]
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == sorted(widths)
    assert sum(widths) == pytest.approx(1.0)


def test_parallel_coordinates_handle_numeric_log_categorical_and_unset(tmp_path, figures):
    trials = search()
    for t in trials:  # momentum only for sgd, as nnlab's trainers have it
        if t.params["train.optimizer"] == "adam":
            del t.params["train.momentum"]
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
    assert {"adam", "sgd", "(unset)"} <= texts
    eps = [t.params["train.epsilon"] for t in trials if t.status == "completed"]
    assert f"{min(eps):.3g}" in texts and f"{max(eps):.3g}" in texts
    assert any(t.endswith("%") for t in texts)  # the metric axis in percent
    completed = [t for t in trials if t.status == "completed"]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 4]
    assert len(lines) == len(completed)
    for line in lines:
        ys = line.get_ydata()
        assert all(search_plots.UNSET_Y <= y <= 1 for y in ys)
    # the best trial is the thickest line and tops the metric axis
    thick = max(lines, key=lambda line: line.get_linewidth())
    assert thick.get_ydata()[-1] == pytest.approx(1.0)
    assert all(line.get_linewidth() < thick.get_linewidth() for line in lines if line is not thick)
    assert "%" in fig.axes[1].get_ylabel()  # the colorbar
    check_png(tmp_path / "p.png")


def test_parallel_coordinates_use_the_declared_scale_over_the_guess(tmp_path, figures):
    """Momentum in [0, 0.95] is linear even when the values span decades; a declared log
    scale holds even when they do not."""
    trials = [
        TrialRecord(i, {"train.momentum": m, "train.epsilon": e}, "completed", v)
        for i, (m, e, v) in enumerate([(0.0001, 0.01, 0.9), (0.9, 0.02, 0.8), (0.5, 0.03, 0.7)])
    ]
    scales = {"train.momentum": False, "train.epsilon": True}
    parallel_coordinates(trials, "val_acc", "maximize", tmp_path / "p.png", "t", scales)
    ax = next(iter(figures.values())).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:2] == ["train.momentum", "train.epsilon\n(log)"]
    lines = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == 3]
    momentum, epsilon = sorted(y[0] for y in lines), sorted(y[1] for y in lines)
    assert momentum == pytest.approx([0.0, (0.5 - 0.0001) / (0.9 - 0.0001), 1.0])  # linear
    assert epsilon == pytest.approx([0.0, math.log(2) / math.log(3), 1.0])  # log10


def test_parallel_coordinates_minimize_puts_the_lowest_value_thickest(tmp_path, figures):
    trials = [
        TrialRecord(i, {"hidden": h, "act": a}, "completed", v)
        for i, (h, a, v) in enumerate([(16, "relu", 0.9), (64, "tanh", 0.2), (32, "relu", 0.5)])
    ]
    parallel_coordinates(trials, "val_loss", "minimize", tmp_path / "p.png", "t")
    ax = next(iter(figures.values())).axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
    thick = max(lines, key=lambda line: line.get_linewidth())
    # hidden 64 is the top of a linear axis (64 / 16 < 100), tanh the second of two choices
    assert list(thick.get_ydata()) == pytest.approx([1.0, 1.0, 0.0])
    texts = {t.get_text() for t in ax.texts}
    assert {"16", "64", "relu", "tanh", "0.2", "0.9"} <= texts
    assert "(unset)" not in texts
