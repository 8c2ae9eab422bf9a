"""The trade-off figure of a multi-objective search: every completed trial on its first two
objectives, the Pareto front coloured and (with two objectives) drawn as a step line, the
dominated trials grey, the trial best.yaml holds starred (docs/results.md, 'Search figures').

The caller gives the front (nnlab.sweeps.search.front: Optuna's ``best_trials``); this
module only draws it.
"""

from __future__ import annotations

from pathlib import Path

from nnlab.common.metrics import is_accuracy, metric_text
from nnlab.figures.axes import plain_log_ticks, points, star
from nnlab.figures.plots import _pyplot, _save
from nnlab.figures.trials import TrialRecord, check_direction, metric_label

LOG_SPAN = 10  # a size, a time or a loss spanning this factor or more is drawn on a log axis


def log_axis(metric: str, values: list[float]) -> bool:
    """Whether an objective's axis is logarithmic: not an accuracy, every value above 0, the
    largest at least LOG_SPAN times the smallest (parameter counts from 20 to 2,000)."""
    if is_accuracy(metric) or not values or min(values) <= 0:
        return False
    return max(values) / min(values) >= LOG_SPAN


def _axis(ax, which: str, metric: str, direction: str, values: list[float]) -> None:
    from matplotlib.ticker import PercentFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    label = f"{metric_label(metric)}, {direction}d"
    if is_accuracy(metric):
        axis.set_major_formatter(PercentFormatter(1.0))
    elif log_axis(metric, values):
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        plain_log_ticks(axis, decades=4)
        label += " (log scale)"
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(label)


def pareto_figure(
    trials: list[TrialRecord],
    objectives: list[tuple[str, str]],
    front: list[int],
    chosen: int | None,
    path: Path,
    title: str,
    pick: str = "knee",
) -> Path | None:
    """:func:`draw_front` written to ``path`` (None when no trial has values)."""
    fig = draw_front(trials, objectives, front, chosen, title, pick)
    return None if fig is None else _save(fig, path)


def draw_front(
    trials: list[TrialRecord],
    objectives: list[tuple[str, str]],
    front: list[int],
    chosen: int | None,
    title: str,
    pick: str = "knee",
):
    """The figure (matplotlib's, unsaved) of the completed trials (``values``: one per
    objective) with the second objective across and the first up; ``front`` (trial numbers,
    in the front files' order) in colour, labelled with their front file's number, joined by
    a step line when there are two objectives (the best first value reachable at each second
    value); dominated trials grey; ``chosen`` (the trial best.yaml holds, by ``pick``)
    starred. Trials without values are counted in the legend. None when no trial has
    values."""
    for _, direction in objectives:
        check_direction(direction)
    (ym, yd), (xm, xd) = objectives[0], objectives[1]
    done = [t for t in trials if t.values is not None and None not in t.values]
    if not done:
        return None
    by_number = {t.number: t for t in done}
    members = [by_number[n] for n in front if n in by_number]
    others = [t for t in done if t.number not in set(front)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    points(
        ax,
        [t.values[1] for t in others],
        [t.values[0] for t in others],
        f"dominated ({len(others)})",
        s=26,
        color="0.65",
        edgecolors="0.4",
        zorder=2,
    )
    points(ax, [t.values[1] for t in members], [t.values[0] for t in members],
           f"Pareto front ({len(members)}; labels: front-NN.yaml)", s=40, color="C0",
           linewidths=0.5, zorder=4)  # fmt: skip
    labels: dict[tuple[float, float], list[str]] = {}  # trials at one point share a label
    for k, t in enumerate(members, start=1):
        labels.setdefault((t.values[1], t.values[0]), []).append(f"{k:02d}")
    for point, names in labels.items():
        ax.annotate(", ".join(names), point, textcoords="offset points", xytext=(5, 5),
                    fontsize=7, color="C0", zorder=6)  # fmt: skip
    if len(objectives) == 2 and members:  # from the best second value to the worst
        line = sorted(members, key=lambda t: t.values[1], reverse=xd == "maximize")
        ax.step([t.values[1] for t in line], [t.values[0] for t in line], where="post",
                color="C0", lw=1.4, zorder=3)  # fmt: skip
    if chosen is not None and chosen in by_number:
        t = by_number[chosen]
        pairs = zip(objectives, t.values, strict=True)
        shown = ", ".join(f"{m} {metric_text(m, v)}" for (m, _), v in pairs)
        star(ax, t.values[1], t.values[0], f"best.yaml ({pick}): trial {t.number}, {shown}", 150)
    missing = len(trials) - len(done)
    if missing:
        ax.plot([], [], " ", label=f"not plotted: {missing} without a result")
    _axis(ax, "x", xm, xd, [t.values[1] for t in done])
    _axis(ax, "y", ym, yd, [t.values[0] for t in done])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    more = (
        f" (the front over all {len(objectives)} objectives, seen on the first two)"
        if len(objectives) > 2
        else ""
    )
    ax.set_title(f"Pareto front{more} — {title}", fontsize=10)
    return fig
