"""Figures of a hyperparameter search: the optimisation history, the parameters' importances and
a parallel-coordinates plot of the completed trials.

They are drawn from plain trial records (number, params, status, value), not from an Optuna
study, so that they can be redrawn from a sweep folder's state alone and need no Optuna. Every
figure goes through nnlab.figures.plots (Agg backend, atomic write); each function returns
the path it wrote, or None when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.common.metrics import LABELS, is_accuracy
from nnlab.common.status import RunStatus
from nnlab.figures.plots import _pyplot, _save

DIRECTIONS = ("maximize", "minimize")
IMPORTANCE_METHOD = "rank correlation / correlation ratio; normalised"
UNSET_Y = -0.12  # where a parallel-coordinates line crosses the axis of a param it lacks


@dataclass
class TrialRecord:
    """One trial of a search: its number (0-based, in the order trials were started), its
    sampled params (dotted config key -> value), its status and, for a completed trial, the
    search metric."""

    number: int
    params: dict[str, Any] = field(default_factory=dict)
    status: str = RunStatus.COMPLETED
    value: float | None = None
    did_not_learn: bool = False  # a run of it stayed at chance (nnlab.common.metrics.did_not_learn)


# ---------------------------------------------------------------------------------------------
# The numbers behind the figures


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _completed(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The completed trials that have a finite value, in trial-number order."""
    return sorted(
        (t for t in trials if t.status == RunStatus.COMPLETED and _finite(t.value)),
        key=lambda t: t.number,
    )


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _param_names(trials: Iterable[TrialRecord]) -> list[str]:
    """Every param any of the trials has, in the trials' own order: a param first seen in a
    later trial (a conditional one, say momentum for sgd only) goes right after the param
    before it in that trial, not at the end."""
    names: list[str] = []
    for t in sorted(trials, key=lambda t: t.number):
        prev = None
        for name in t.params:
            if name not in names:
                names.insert(0 if prev is None else names.index(prev) + 1, name)
            prev = name
    return names


def _numeric(values: list[Any]) -> bool:
    """Whether a param's values are all numbers (bools and strings make it categorical)."""
    return bool(values) and all(_is_number(v) and math.isfinite(v) for v in values)


def best_so_far(trials: Iterable[TrialRecord], direction: str) -> list[tuple[int, float]]:
    """(trial number, best value of the completed trials up to and including it), one pair
    per completed trial with a finite value, in trial-number order."""
    _check_direction(direction)
    better = max if direction == "maximize" else min
    out: list[tuple[int, float]] = []
    for t in _completed(trials):
        value = float(t.value)
        out.append((t.number, better(out[-1][1], value) if out else value))
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties given their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (starts + (counts - 1) / 2.0)[inverse.ravel()]


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """|Spearman's rho|: the Pearson correlation of the ranks; 0 when either is constant."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return 0.0 if denom == 0 else min(1.0, abs(float(rx @ ry)) / denom)


def _eta(groups: list[str], y: np.ndarray) -> float:
    """The correlation ratio: sqrt(between-group sum of squares / total sum of squares)."""
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    between = 0.0
    for g in set(groups):
        ys = y[[i for i, h in enumerate(groups) if h == g]]
        between += len(ys) * (ys.mean() - y.mean()) ** 2
    return min(1.0, math.sqrt(between / total))


def importances(trials: Iterable[TrialRecord], metric: str) -> dict[str, float]:
    """How much each param matters for the metric over the completed trials, largest first.

    A numeric param scores the absolute Spearman rank correlation of its values with the
    metric (so a log-uniform param needs no log); a categorical param (strings, bools, mixed)
    the correlation ratio eta of the metric over its choices. Each param is scored over the
    completed trials that have it; a param that never varies there scores 0. The scores are
    then divided by their sum, so that they sum to 1 -- unless every score is 0 (the metric
    is constant, say), when they all stay 0. ``metric`` names what the values are; the
    numbers do not depend on it. Ties are ordered by name."""
    del metric  # the values are the metric; the name only labels figures
    trials = list(trials)
    done = _completed(trials)
    scores: dict[str, float] = {}
    for name in _param_names(trials):
        have = [t for t in done if name in t.params]
        values = [t.params[name] for t in have]
        y = np.array([float(t.value) for t in have])
        if len({repr(v) for v in values}) < 2:
            scores[name] = 0.0
        elif _numeric(values):
            scores[name] = _spearman(np.array(values, dtype=float), y)
        else:
            scores[name] = _eta([repr(v) for v in values], y)
    total = sum(scores.values())
    if total > 0:
        scores = {k: v / total for k, v in scores.items()}
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))


# ---------------------------------------------------------------------------------------------
# Figures


def _metric_label(metric: str) -> str:
    """'Validation accuracy (%)' for val_acc; the key with spaces for unknown metrics."""
    if metric in LABELS:
        return LABELS[metric]
    label = metric.replace("_", " ")
    return f"{label} (%)" if is_accuracy(metric) else label


def _metric_name(metric: str) -> str:
    return _metric_label(metric).removesuffix(" (%)")


def _format_metric(metric: str, value: float) -> str:
    return f"{value:.1%}" if is_accuracy(metric) else f"{value:.4g}"


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0))


def optimisation_history(
    trials: Iterable[TrialRecord], metric: str, direction: str, path: Path, title: str
) -> Path | None:
    """The metric of each trial against its number: completed trials as dots, pruned trials
    with a value (their last reported one) as crosses, the best-so-far as a step line; pruned
    trials without a value and failed, diverged or unfinished trials are counted in the
    legend. Accuracies in percent. None when no trial completed."""
    _check_direction(direction)
    trials = sorted(trials, key=lambda t: t.number)
    done = _completed(trials)
    if not done:
        return None
    pruned = [t for t in trials if t.status == RunStatus.PRUNED]
    pruned_shown = [t for t in pruned if _finite(t.value)]
    shown = {id(t) for t in done}
    others: dict[str, int] = {}
    for t in trials:
        if t.status != RunStatus.PRUNED and id(t) not in shown:
            # a completed trial without a finite value is counted as 'completed, no value'
            key = "completed, no value" if t.status == RunStatus.COMPLETED else t.status
            others[key] = others.get(key, 0) + 1

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.scatter(
        [t.number for t in done],
        [t.value for t in done],
        s=28,
        color="C0",
        edgecolors="k",
        linewidths=0.4,
        zorder=3,
        label=f"completed ({len(done)})",
    )
    if pruned:
        hidden = len(pruned) - len(pruned_shown)
        label = f"pruned ({len(pruned)}" + (f", {hidden} without a value)" if hidden else ")")
        ax.scatter(
            [t.number for t in pruned_shown],
            [t.value for t in pruned_shown],
            s=34,
            marker="x",
            color="C1",
            linewidths=1.2,
            zorder=2,
            label=label,
        )
    steps = best_so_far(done, direction)
    last = max(t.number for t in trials)
    xs = [n for n, _ in steps] + [last]
    ys = [v for _, v in steps] + [steps[-1][1]]
    ax.step(xs, ys, where="post", color="C3", lw=1.6, zorder=4, label="best so far")
    best_number, best_value = next((n, v) for n, v in steps if v == steps[-1][1])
    ax.scatter(
        [best_number],
        [best_value],
        s=130,
        marker="*",
        color="gold",
        edgecolors="k",
        linewidths=0.6,
        zorder=5,
        label=f"best: trial {best_number}, {_format_metric(metric, best_value)}",
    )
    if others:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(others.items()))
        ax.plot([], [], " ", label=f"not plotted: {counts}")
    ax.set_xlabel("trial number")
    ax.set_ylabel(_metric_label(metric))
    if is_accuracy(metric):
        _percent_axis(ax.yaxis)
    ax.set_xlim(-0.5, last + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: hides no dot
    ax.set_title(f"Optimisation history ({direction} {_metric_name(metric)}) — {title}")
    return _save(fig, path)


def param_importances(
    trials: Iterable[TrialRecord], metric: str, path: Path, title: str
) -> Path | None:
    """A horizontal bar per param, the most important on top, each annotated with its share.
    None when fewer than two trials completed or no param varies over them (or the metric is
    constant, when every share is 0)."""
    trials = list(trials)
    n_done = len(_completed(trials))
    scores = importances(trials, metric)
    if n_done < 2 or not scores or sum(scores.values()) == 0:
        return None
    names = list(scores)[::-1]  # barh draws bottom up
    values = [scores[n] for n in names]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, max(2.6, 0.5 * len(names) + 1.6)))
    bars = ax.barh(names, values, color="C0", height=0.6)
    for bar, value in zip(bars, values, strict=True):
        ax.text(
            bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{value:.2f}",
            va="center",
            fontsize=9,
        )
    ax.set_xlim(0, min(1.0, max(values) + 0.15) if max(values) < 0.85 else 1.08)
    ax.set_xlabel(f"importance for {_metric_name(metric)}\n({IMPORTANCE_METHOD})")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"Parameter importances ({n_done} completed trials) — {title}")
    return _save(fig, path)


@dataclass
class _Axis:
    """One parallel-coordinates axis: positions in [0, 1] of each trial (UNSET_Y where the
    trial lacks the param), and the tick labels (position, text)."""

    label: str
    positions: list[float]
    ticks: list[tuple[float, str]]


def _format_param(value: float, integer: bool) -> str:
    return str(int(value)) if integer else f"{value:.3g}"


def _sorted_if_possible(values: list[Any]) -> list[Any]:
    """Strings alphabetically, False before True; mixed types in order of first appearance."""
    try:
        return sorted(values)
    except TypeError:
        return values


def _param_axis(name: str, trials: list[TrialRecord], log: bool | None = None) -> _Axis:
    """One param's axis; ``log`` is the scale the search declared (None: guessed from the
    values, log10 when they are positive and span two decades or more)."""
    present = [t.params[name] for t in trials if name in t.params]
    if _numeric(present):
        integer = all(isinstance(v, int) for v in present)
        lo, hi = min(present), max(present)
        if log is None:
            log = hi / lo >= 100 if lo > 0 else False
        log = log and lo > 0
        label = f"{name}\n(log)" if log else name
        f = math.log10 if log else float
        span = f(hi) - f(lo)

        def position(v: Any) -> float:
            return 0.5 if span == 0 else (f(v) - f(lo)) / span

        ticks = (
            [(0.5, _format_param(lo, integer))]
            if span == 0
            else [(0.0, _format_param(lo, integer)), (1.0, _format_param(hi, integer))]
        )
    else:
        choices = list(dict.fromkeys(map(str, _sorted_if_possible(list(dict.fromkeys(present))))))
        k = len(choices)
        spot = {c: (0.5 if k == 1 else i / (k - 1)) for i, c in enumerate(choices)}

        def position(v: Any) -> float:
            return spot[str(v)]

        label, ticks = name, [(spot[c], c) for c in choices]
    positions = [position(t.params[name]) if name in t.params else UNSET_Y for t in trials]
    if len(present) < len(trials):
        ticks.append((UNSET_Y, "(unset)"))
    return _Axis(label, positions, ticks)


def parallel_coordinates(
    trials: Iterable[TrialRecord],
    metric: str,
    direction: str,
    path: Path,
    title: str,
    log_scale: dict[str, bool] | None = None,
) -> Path | None:
    """An axis per param and a last one for the metric; each completed trial a line across
    them coloured by its metric, the best trial thicker. Numeric params are scaled to the
    axis (log10 where ``log_scale`` says so — the search's declared scales — else when all
    values are positive and span two decades or more), labelled with their min and max;
    categorical params get evenly spaced choices. A trial that lacks a param crosses that axis
    at '(unset)', below it. None when no trial completed or the completed trials have no
    params."""
    _check_direction(direction)
    done = _completed(trials)
    names = _param_names(done)
    if not done or not names:
        return None
    axes = [_param_axis(name, done, (log_scale or {}).get(name)) for name in names]
    values = np.array([float(t.value) for t in done])
    lo, hi = float(values.min()), float(values.max())
    fmt = (lambda v: f"{v:.1%}") if is_accuracy(metric) else (lambda v: f"{v:.4g}")
    if hi > lo:
        metric_pos = list((values - lo) / (hi - lo))
        metric_ticks = [(0.0, fmt(lo)), (1.0, fmt(hi))]
    else:
        metric_pos, metric_ticks = [0.5] * len(done), [(0.5, fmt(lo))]
    axes.append(_Axis(_metric_name(metric), metric_pos, metric_ticks))

    plt = _pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = plt.get_cmap("viridis" if direction == "maximize" else "viridis_r")  # best is yellow
    norm = Normalize(lo, hi) if hi > lo else Normalize(lo - 0.5, hi + 0.5)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.7 * len(axes) + 1.8), 4.8))
    xs = np.arange(len(axes))
    # worst first so that the better lines lie on top; the best one last and thicker
    sign = 1.0 if direction == "maximize" else -1.0
    order = sorted(range(len(done)), key=lambda i: (sign * values[i], -done[i].number))
    best = order[-1]
    for i in order:
        ys = [a.positions[i] for a in axes]
        is_best = i == best
        ax.plot(
            xs,
            ys,
            color=cmap(norm(values[i])),
            lw=3.2 if is_best else 1.1,
            alpha=1.0 if is_best else 0.7,
            zorder=3 if is_best else 2,
            label=f"best: trial {done[i].number}, {fmt(values[i])}" if is_best else None,
        )
    for x, a in zip(xs, axes, strict=True):
        ax.axvline(x, color="0.25", lw=1.0, zorder=1)
        for y, text in a.ticks:
            ax.text(
                x - 0.04,
                y,
                text,
                ha="right",
                va="center",
                fontsize=8,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
                zorder=4,
            )
    ax.set_xticks(xs, [a.label for a in axes], fontsize=9)
    ax.set_xlim(-0.6, len(axes) - 0.6)
    unset = any(y == UNSET_Y for a in axes for y, _ in a.ticks)
    ax.set_ylim(UNSET_Y - 0.06 if unset else -0.06, 1.06)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
    bar.set_label(_metric_label(metric))
    if is_accuracy(metric):
        _percent_axis(bar.ax.yaxis)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, -0.1), frameon=False)
    ax.set_title(f"Parallel coordinates ({len(done)} completed trials) — {title}")
    return _save(fig, path)
