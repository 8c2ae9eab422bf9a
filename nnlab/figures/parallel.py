"""A parallel-coordinates plot of a search's completed trials: an axis per param, a last one
for the metric, a line per trial coloured by its rank (nnlab.figures.search holds the trial
records and the other search figures)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.common.metrics import is_accuracy
from nnlab.figures.axes import plain_number, tick_values
from nnlab.figures.plots import _pyplot, _save
from nnlab.figures.trials import (
    Space,
    TrialRecord,
    check_direction,
    completed,
    metric_label,
    metric_name,
    numeric,
    optuna_value,
    param_names,
)

RANK_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the colour bar's ticks: ranks, labelled by value


@dataclass
class _Axis:
    """One parallel-coordinates axis: positions in [0, 1] of each trial (NaN where the trial
    lacks the param: its line has a gap there), and the tick labels (position, text)."""

    label: str
    positions: list[float]
    ticks: list[tuple[float, str]]
    log: bool = False


def _format(value: float, integer: bool = False) -> str:
    """A tick or value on the figure: a whole number, or 3 significant digits written plainly
    (0.0002, 10000)."""
    return str(int(round(value))) if integer else plain_number(value, 3)


def _numeric_axis(
    name: str, values: list[Any], bounds: tuple[float, float] | None, log: bool | None
) -> tuple[Any, list[tuple[float, str]], bool]:
    """(position of a value, ticks, log) of a numeric param: its range the space's bounds
    (else the values'), its scale the space's (else log10 when the values are positive and
    span two decades or more)."""
    integer = all(isinstance(v, int) for v in values)
    lo, hi = min(values), max(values)
    if bounds is not None and bounds[0] <= lo and hi <= bounds[1]:
        lo, hi = bounds
    if log is None:
        log = hi / lo >= 100 if lo > 0 else False
    log = bool(log) and lo > 0
    f = math.log10 if log else float
    span = f(hi) - f(lo)

    def position(v: Any) -> float:
        return 0.5 if span == 0 else (f(v) - f(lo)) / span

    if span == 0:
        return position, [(0.5, _format(lo, integer))], log
    found = tick_values(lo, hi, log, integer, ends=True)
    ticks = [(position(v), _format(v, integer)) for v in found]
    return position, ticks, log


def _sorted_if_possible(values: list[Any]) -> list[Any]:
    """Strings alphabetically, False before True; mixed types in order of first appearance."""
    try:
        return sorted(values)
    except TypeError:
        return values


def _param_axis(name: str, trials: list[TrialRecord], space: Space | None) -> _Axis:
    """One param's axis, as the space declares it when it is given: its range, its scale
    (log only for a param sampled on a log scale) and its choices."""
    declared = (space or {}).get(name)
    present = [t.params[name] for t in trials if name in t.params]
    if numeric(present) and (declared is None or declared.kind != "choice"):
        bounds = (declared.low, declared.high) if declared is not None else None
        position, ticks, log = _numeric_axis(
            name, present, bounds, declared.log if declared is not None else None
        )
        label = f"{name}\n(log)" if log else name
    else:
        seen = [str(optuna_value(v)) for v in _sorted_if_possible(list(dict.fromkeys(present)))]
        if declared is not None and declared.kind == "choice":
            dist = declared.distribution()
            seen = [str(c) for c in dist.choices] + seen
        choices = list(dict.fromkeys(seen))
        k = len(choices)
        spot = {c: (0.5 if k == 1 else i / (k - 1)) for i, c in enumerate(choices)}

        def position(v: Any) -> float:
            return spot[str(optuna_value(v))]

        label, ticks, log = name, [(spot[c], c) for c in choices], False
    if len(present) < len(trials):  # a conditional param: absent where it did not apply
        condition = declared.condition_text() if declared is not None else None
        where = f"when {condition}: " if condition else "in "
        label += f"\n({where}{len(present)} of {len(trials)})"
    positions = [position(t.params[name]) if name in t.params else math.nan for t in trials]
    return _Axis(label, positions, ticks, log)


def colour_ranks(values: list[float], direction: str) -> list[float]:
    """Each trial's colour: its rank among the completed trials as a fraction, 0 the worst
    and 1 the best (ties share their mean rank), so that one outlier does not leave the
    rest one colour."""
    n = len(values)
    if n == 1:
        return [1.0]
    sign = 1.0 if direction == "maximize" else -1.0
    keyed = np.array([sign * v for v in values])
    _, inverse, counts = np.unique(keyed, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = (starts + (counts - 1) / 2.0)[inverse.ravel()]
    return list(ranks / (n - 1))


def _metric_axis(metric: str, values: np.ndarray) -> _Axis:
    """The metric's axis: percent on a linear scale for an accuracy, a log scale for a
    positive loss (as the history's), with readable ticks."""
    lo, hi = float(values.min()), float(values.max())
    log = not is_accuracy(metric) and lo > 0
    fmt = (lambda v: f"{v:.1%}") if is_accuracy(metric) else _format
    if hi == lo:
        return _Axis(metric_name(metric), [0.5] * len(values), [(0.5, fmt(lo))], log)
    f = np.log10 if log else (lambda v: v)
    positions = list((f(values) - f(lo)) / (f(hi) - f(lo)))
    found = tick_values(lo, hi, log, ends=True)
    ticks = [((f(v) - f(lo)) / (f(hi) - f(lo)), fmt(v)) for v in found]
    label = metric_name(metric) + ("\n(log)" if log else "")
    return _Axis(label, positions, ticks, log)


UNSET = -0.16  # the height of the "(unset)" slot under an axis (the axes run from 0 to 1)
UNSET_LABEL = "(unset)"  # as report.html writes it


def _unset_runs(ys: list[float]) -> list[list[int]]:
    """The stretches of a line that touch an unset slot (NaN: the trial lacks that axis's
    param): runs of consecutive axes, each with its neighbours on either side, drawn dashed
    through the slot -- [0, 1, 2] for a trial that lacks the second axis's param."""
    runs: list[list[int]] = []
    for i in range(len(ys) - 1):
        if math.isnan(ys[i]) or math.isnan(ys[i + 1]):
            if runs and runs[-1][-1] == i:
                runs[-1].append(i + 1)
            else:
                runs.append([i, i + 1])
    return runs


def parallel_coordinates(
    trials: Iterable[TrialRecord],
    metric: str,
    direction: str,
    path: Path,
    title: str,
    space: Space | None = None,
) -> Path | None:
    """An axis per param and a last one for the metric; each completed trial a line across
    them, coloured by its rank (best yellow; the colour bar's ticks are the metric's values
    at those ranks), the best trial thicker, each trial's values marked with dots. A numeric
    param's axis spans the space's range on the scale it was sampled on (log10 only for a
    log param; without ``space``, guessed from the values), with readable intermediate
    ticks; a categorical param gets its choices evenly spaced. A trial that lacks a param
    (its condition did not hold) has no value on that axis: its line crosses it dashed
    through a slot labelled "(unset)" under the axis (:data:`UNSET`, as report.html draws
    it), never at a height that would read as a value, and the axis label says for how many
    trials the param applied. None when no trial completed or the completed trials have no
    params."""
    check_direction(direction)
    done = completed(trials)
    names = param_names(done, space)
    if not done or not names:
        return None
    axes = [_param_axis(name, done, space) for name in names]
    values = np.array([float(t.value) for t in done])
    axes.append(_metric_axis(metric, values))
    ranks = colour_ranks(list(values), direction)

    plt = _pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap, norm = plt.get_cmap("viridis"), Normalize(0.0, 1.0)  # the best yellow
    fig, ax = plt.subplots(figsize=(max(6.4, 1.9 * len(axes) + 2.0), 5.0))
    xs = np.arange(len(axes))
    order = sorted(range(len(done)), key=lambda i: (ranks[i], -done[i].number))  # worst first
    best = order[-1]
    fmt = (lambda v: f"{v:.1%}") if is_accuracy(metric) else _format
    for i in order:
        is_best = i == best
        ys = [a.positions[i] for a in axes]
        style = dict(
            color=cmap(norm(ranks[i])),
            lw=3.2 if is_best else 1.1,
            alpha=1.0 if is_best else 0.75,
            zorder=3 if is_best else 2,
        )
        ax.plot(
            xs,
            ys,
            marker="o",
            markersize=4 if is_best else 2.5,
            label=f"best: trial {done[i].number}, {fmt(values[i])}" if is_best else None,
            **style,
        )
        for run in _unset_runs(ys):  # dashed through the slot of a param it lacks
            slot = [UNSET if math.isnan(ys[j]) else ys[j] for j in run]
            ax.plot(xs[run], slot, ls=(0, (2, 2)), **style)
    for x, a in zip(xs, axes, strict=True):
        ax.plot([x, x], [0.0, 1.0], color="0.25", lw=1.0, zorder=1)
        if any(math.isnan(y) for y in a.positions):  # some trials lack it: their slot
            ax.plot([x - 0.02, x + 0.02], [UNSET, UNSET], color="0.25", lw=1.0, zorder=1)
            ax.text(
                x - 0.04,
                UNSET,
                UNSET_LABEL,
                ha="right",
                va="center",
                fontsize=8,
                style="italic",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
                zorder=4,
            )
        for y, text in a.ticks:
            ax.plot([x - 0.02, x], [y, y], color="0.25", lw=1.0, zorder=1)
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
    ax.set_xlim(-0.7, len(axes) - 0.6)
    unset = any(math.isnan(y) for a in axes for y in a.positions)
    ax.set_ylim((UNSET if unset else 0.0) - 0.06, 1.06)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
    ordered = np.sort(values) if direction == "maximize" else np.sort(values)[::-1]
    bar.set_ticks(list(RANK_TICKS))
    at = [ordered[round(q * (len(ordered) - 1))] for q in RANK_TICKS]  # worst to best
    bar.set_ticklabels([fmt(float(v)) for v in at])
    bar.set_label(f"{metric_label(metric)}\ncolour by rank (best at top), ticks at quartiles")
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, -0.16), frameon=False)
    ax.set_title(f"Parallel coordinates ({len(done)} completed trials) — {title}")
    return _save(fig, path)
