"""Figures of a hyperparameter search: the optimisation history, the parameters' importances
(Optuna's fANOVA) and a parallel-coordinates plot of the completed trials (in
nnlab.figures.parallel).

They are drawn from plain trial records (number, params, status, value) and, where the caller
has it, the search space (each param's distribution, scale and condition), both in
nnlab.figures.trials, so that they can be redrawn from a sweep folder alone; the importances
build an in-memory Optuna study from the records. A trial lacks the params whose condition
did not hold for it. Every figure goes through nnlab.figures.plots (Agg backend, atomic
write); each function returns the path it wrote, or None when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nnlab.common.metrics import is_accuracy
from nnlab.common.status import RunStatus
from nnlab.figures.axes import plain_log_ticks, points, star
from nnlab.figures.plots import _pyplot, _save
from nnlab.figures.trials import (
    Space,
    TrialRecord,
    check_direction,
    completed,
    finite,
    metric_label,
    metric_name,
    numeric,
    optuna_value,
    param_names,
)

IMPORTANCE_METHOD = "fANOVA: the share of the metric's variance each key explains"
IMPORTANCE_SEED = 0  # the fANOVA random forest's seed: the same records, the same numbers

# ---------------------------------------------------------------------------------------------
# The numbers behind the figures


def best_so_far(trials: Iterable[TrialRecord], direction: str) -> list[tuple[int, float]]:
    """(trial number, best value of the completed trials up to and including it), one pair
    per completed trial with a finite value, in trial-number order."""
    check_direction(direction)
    better = max if direction == "maximize" else min
    out: list[tuple[int, float]] = []
    for t in completed(trials):
        value = float(t.value)
        out.append((t.number, better(out[-1][1], value) if out else value))
    return out


def _varies(trials: list[TrialRecord], name: str) -> bool:
    return len({repr(t.params[name]) for t in trials}) > 1


def _distribution(name: str, trials: list[TrialRecord], space: Space | None):
    """The param's Optuna distribution: the space's when it holds every value of the trials
    (a sweep resumed with --force may have others), else one spanning the values seen."""
    from optuna import distributions as d

    values = [optuna_value(t.params[name]) for t in trials]
    if space and name in space:
        dist = space[name].distribution()
        try:
            if all(dist._contains(dist.to_internal_repr(v)) for v in values):
                return dist
        except (ValueError, TypeError):
            pass
    if numeric(values):
        if all(isinstance(v, int) for v in values):
            return d.IntDistribution(min(values), max(values))
        return d.FloatDistribution(float(min(values)), float(max(values)))
    return d.CategoricalDistribution(list(dict.fromkeys(values)))


def importances(
    trials: Iterable[TrialRecord],
    space: Space | None = None,
    params: list[str] | None = None,
    seed: int = IMPORTANCE_SEED,
) -> dict[str, float]:
    """fANOVA importances (Optuna's FanovaImportanceEvaluator, seeded) of ``params`` over the
    completed trials that have all of them -- by default the params every completed trial
    has, as Optuna's get_param_importances does, so a conditional param is left out (see
    :func:`importance_groups`). Each is the share of the metric's variance over the space
    that the param explains alone; they are divided by their sum, so that they sum to 1,
    unless all are 0 (a metric that never changes), when they stay 0. A param that does not
    vary over those trials scores 0. Largest first, ties by name. Needs no study: an
    in-memory one is built from the records with the space's distributions."""
    done = completed(trials)
    if params is None:
        params = [k for k in param_names(done, space) if all(k in t.params for t in done)]
    have = [t for t in done if all(k in t.params for k in params)]
    varying = [k for k in params if len(have) > 1 and _varies(have, k)]
    if len({float(t.value) for t in have}) < 2:  # a metric that never changes: nothing to share
        varying = []
    scores = dict.fromkeys(params, 0.0)
    if varying:
        scores |= _fanova(have, varying, space, seed)
    total = sum(scores.values())
    if total > 0:
        scores = {k: v / total for k, v in scores.items()}
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))


def _fanova(
    trials: list[TrialRecord], params: list[str], space: Space | None, seed: int
) -> dict[str, float]:
    """Optuna's fANOVA importances (not normalised) of ``params`` over ``trials``."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(k, trials, space) for k in params}
    study = optuna.create_study()
    study.add_trials(
        [
            create_trial(
                params={k: optuna_value(t.params[k]) for k in params},
                distributions=dists,
                value=float(t.value),
            )
            for t in trials
        ]
    )
    found = FanovaImportanceEvaluator(seed=seed).evaluate(study, params=params)
    return {k: max(0.0, float(v)) if math.isfinite(v) else 0.0 for k, v in found.items()}


@dataclass
class ImportanceGroup:
    """The importances over one set of completed trials: all of them for the params every
    trial has, or those where a conditional param applied (``condition``)."""

    trials: int
    scores: dict[str, float]
    condition: str | None = None  # 'train.optimizer = sgd', or the params it is about

    @property
    def title(self) -> str:
        if self.condition is None:
            return f"all {self.trials} completed trials"
        return f"the {self.trials} completed trials where {self.condition}"


def importance_groups(
    trials: Iterable[TrialRecord], space: Space | None = None, seed: int = IMPORTANCE_SEED
) -> list[ImportanceGroup]:
    """The importances as Optuna scores a conditional space: first over every completed
    trial, of the params they all have; then, for each set of params that applied to only
    some trials (momentum, for the sgd trials), over those trials, of every param they all
    have that varies there (the condition's own key is constant there and left out). A
    param is never scored over trials that lack it. Groups of fewer than two trials are
    left out."""
    done = completed(trials)
    names = param_names(done, space)
    every = frozenset(t.number for t in done)
    by_trials: dict[frozenset, list[str]] = {}
    for name in names:
        by_trials.setdefault(frozenset(t.number for t in done if name in t.params), []).append(name)
    out = []
    if every in by_trials:
        out.append(ImportanceGroup(len(done), importances(done, space, by_trials[every], seed)))
    for numbers, own in by_trials.items():
        subset = [t for t in done if t.number in numbers]
        if numbers == every or len(subset) < 2:
            continue
        params = [k for k in names if all(k in t.params for t in subset) and _varies(subset, k)]
        if not params:
            continue
        said = {space[k].condition_text() for k in own if space and k in space}
        condition = said.pop() if len(said) == 1 and None not in said else None
        condition = condition or " and ".join(own) + " applied"
        out.append(
            ImportanceGroup(len(subset), importances(subset, space, params, seed), condition)
        )
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def _format_metric(metric: str, value: float) -> str:
    return f"{value:.1%}" if is_accuracy(metric) else f"{value:.4g}"


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0))


def history_log_scale(metric: str, values: list[float]) -> bool:
    """Whether the history's y-axis is logarithmic: for a loss-like metric (not an accuracy)
    whose values are all above 0, so that the good trials are not squashed at the bottom
    by a few bad ones an order of magnitude above them."""
    return not is_accuracy(metric) and bool(values) and all(v > 0 for v in values)


def optimisation_history(
    trials: Iterable[TrialRecord], metric: str, direction: str, path: Path, title: str
) -> Path | None:
    """The metric of each trial against its number: completed trials as dots, pruned trials
    with a value (their last reported one) as crosses, the best-so-far as a step line; pruned
    trials without a value and failed, diverged or unfinished trials are counted in the
    legend. Accuracies in percent on a linear axis; a loss on a log axis
    (:func:`history_log_scale`). None when no trial completed."""
    check_direction(direction)
    trials = sorted(trials, key=lambda t: t.number)
    done = completed(trials)
    if not done:
        return None
    pruned = [t for t in trials if t.status == RunStatus.PRUNED]
    pruned_shown = [t for t in pruned if finite(t.value)]
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
    points(ax, [t.number for t in done], [t.value for t in done], f"completed ({len(done)})",
           s=28, color="C0", zorder=3)  # fmt: skip
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
    star(ax, best_number, best_value, f"best: trial {best_number}, "
         f"{_format_metric(metric, best_value)}")  # fmt: skip
    if others:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(others.items()))
        ax.plot([], [], " ", label=f"not plotted: {counts}")
    ax.set_xlabel("trial number")
    ax.set_ylabel(metric_label(metric))
    if is_accuracy(metric):
        _percent_axis(ax.yaxis)
    elif history_log_scale(metric, [t.value for t in [*done, *pruned_shown]]):
        ax.set_ylabel(f"{metric_label(metric)} (log scale)")
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis, decades=4)
    ax.set_xlim(-0.5, last + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: hides no dot
    ax.set_title(f"Optimisation history ({direction} {metric_name(metric)}) — {title}")
    return _save(fig, path)


def param_importances(
    trials: Iterable[TrialRecord],
    metric: str,
    path: Path,
    title: str,
    space: Space | None = None,
    seed: int = IMPORTANCE_SEED,
) -> Path | None:
    """A panel per :func:`importance_groups` group (all completed trials first, then each
    set of trials a conditional param applied to), a horizontal bar per param, the most
    important on top, each annotated with its share. None when fewer than two trials
    completed or no group has a param that matters (a metric that never changes)."""
    groups = [g for g in importance_groups(trials, space, seed) if sum(g.scores.values()) > 0]
    if not groups:
        return None
    plt = _pyplot()
    heights = [max(1.2, 0.45 * len(g.scores) + 0.7) for g in groups]
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(7.5, sum(heights) + 1.2),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, group in zip(axes[:, 0], groups, strict=True):
        names = list(group.scores)[::-1]  # barh draws bottom up
        values = [group.scores[n] for n in names]
        bars = ax.barh(names, values, color="C0", height=0.6)
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                bar.get_width() + 0.01,
                bar.get_y() + bar.get_height() / 2,
                f"{value:.2f}",
                va="center",
                fontsize=9,
            )
        ax.set_xlim(0, 1.08)
        ax.grid(alpha=0.3, axis="x")
        ax.set_title(f"over {group.title}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(
        f"importance for {metric_name(metric)}\n({IMPORTANCE_METHOD}; each panel's shares sum to 1)"
    )
    fig.suptitle(f"Parameter importances — {title}")
    fig.tight_layout()
    return _save(fig, path)
