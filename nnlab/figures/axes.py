"""What every figure's axes share: one rule for readable tick values and their plain-number
labels (log axes included), the step axis (linear, or symlog for rows at log-spaced steps),
and the names of the splits' metrics in titles."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np

from nnlab.common.metrics import is_accuracy


def plain_number(x: float, digits: int = 6) -> str:
    """A tick value as a plain number, to ``digits`` significant digits: 0.6, 2, 300, 10000,
    0.00001 (never 1e+04 or 6×10⁻¹)."""
    return np.format_float_positional(float(f"{x:.{digits}g}"), trim="-")


LOG_DECADES = 4  # up to this many decades in view, a log axis is ticked at 1, 2 and 5 × 10ⁿ


def tick_values(
    lo: float,
    hi: float,
    log: bool = False,
    integer: bool = False,
    decades: float = LOG_DECADES,
    ends: bool = False,
) -> list[float]:
    """Readable tick values in [lo, hi], the one rule of every figure's ticks. On a log axis
    1, 2 and 5 times the powers of ten while the range spans at most ``decades`` decades,
    past that the powers alone (every other, or more, past a dozen); in a range so narrow
    that 1, 2 and 5 give fewer than three, every whole multiple (0.3, 0.4, 0.5, 0.6); in one
    narrower still, matplotlib's 'nice' linear steps. On a linear axis those steps (whole
    numbers for an integer param). ``ends``: lo and hi too when fewer than three ticks fall
    inside (an axis without a grid needs something to be read by)."""
    from matplotlib.ticker import MaxNLocator

    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [float(lo)]
    log = log and lo > 0
    span = (math.log10(hi) - math.log10(lo) if log else hi - lo) or 1.0  # hi/lo may overflow
    slack = (lo * 1e-9, hi * 1e-9) if log else (1e-9 * span, 1e-9 * span)  # rounding

    def inside(found) -> list[float]:
        return [float(v) for v in found if lo - slack[0] <= v <= hi + slack[1]]

    def linear() -> list[float]:
        steps = [1, 2, 2.5, 5, 10]
        return inside(MaxNLocator(nbins=5, integer=integer, steps=steps).tick_values(lo, hi))

    def powers(subs: tuple[int, ...], stride: int = 1) -> list[float]:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        exponents = [e for e in range(first, last + 1) if e % stride == 0]
        return inside(float(f"{s}e{e}") for e in exponents for s in subs)  # exact decimals

    if not log:
        found = linear()
    elif span > decades:
        found = powers((1,), stride=max(1, math.ceil(span / 12)))
    else:
        found = powers((1, 2, 5))
        if len(found) < 3:
            found = powers(tuple(range(1, 10)))
        if len(found) < 2:
            found = linear()
    if ends and len(found) < 3:
        found = sorted({lo, hi, *found})
    return found


def plain_log_ticks(axis, decades: float = 2) -> None:
    """A log or symlog axis ticked by :func:`tick_values` (1, 2, 5 × 10ⁿ up to ``decades``
    decades in view, else the powers of ten; more within one decade; 0 on a symlog axis)
    and labelled with :func:`plain_number` (0.6, 1, 2, 300 where matplotlib writes 6×10⁻¹);
    the minor ticks stay matplotlib's, unlabelled."""
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter

    class PlainLogLocator(Locator):
        def __call__(self):
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):
            lo, hi = sorted((float(vmin), float(vmax)))
            if self.axis is None or self.axis.get_scale() != "symlog":
                return tick_values(max(lo, hi * 1e-12), hi, log=True, decades=decades)
            linthresh = self.axis.get_transform().linthresh
            ticks = [0.0] if lo <= 0 <= hi else []
            ticks += tick_values(max(lo, linthresh), hi, log=True, decades=decades)
            ticks += [-v for v in tick_values(max(-hi, linthresh), -lo, log=True, decades=decades)]
            return sorted(ticks) if len(ticks) >= 2 else tick_values(lo, hi)

    axis.set_major_locator(PlainLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda x, _: plain_number(x)))
    axis.set_minor_formatter(NullFormatter())


XSCALES = ("linear", "symlog")  # "symlog": linear from 0 to 1, logarithmic past it


def step_axis(ax, xscale: str = "linear", label: bool = True) -> None:
    """The step axis: linear, or (rows at log-spaced steps, train.log_schedule: log) symlog,
    so the early steps, where a run learns most, get as much room as the late ones."""
    if xscale == "symlog":
        ax.set_xscale("symlog", linthresh=1, linscale=0.4)
        plain_log_ticks(ax.xaxis)
    if label:
        ax.set_xlabel("step" + (" (log scale past 1)" if xscale == "symlog" else ""))


SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
LINESTYLES = {"train": "--", "val": ":", "test": "-"}  # of the splits in one panel
STYLE_NAMES = {"--": "dashed", ":": "dotted", "-": "solid"}  # said in a heading


def metric_title(metric: str) -> str:
    """'train loss', 'validation accuracy', or the metric's own name."""
    split, _, what = metric.partition("_")
    if split in SPLIT_NAMES and what in ("loss", "acc"):
        return f"{SPLIT_NAMES[split]} {'accuracy' if what == 'acc' else 'loss'}"
    return metric.replace("_", " ")


def family(metrics: Sequence[str]) -> str:
    """The y-axis label of panels of these metrics: 'loss', 'accuracy' or the metric."""
    if all(is_accuracy(m) for m in metrics):
        return "accuracy"
    if all(m.endswith("_loss") for m in metrics):
        return "loss"
    return metrics[0].replace("_", " ")


PANEL_CHARS = 46  # a small multiple's title wraps at this many characters (3.2-inch panels)


def panel_title(text: str) -> str:
    """A small multiple's title wrapped to its panel's width, so that neighbours' titles
    never overlap: 'trial 7: epsilon=0.003, …' over two or three lines."""
    return "\n".join(textwrap.fill(line, PANEL_CHARS) for line in text.split("\n"))


def points(ax, xs: Sequence[float], ys: Sequence[float], label: str, **style) -> None:
    """A scatter of trials or runs: outlined markers of ``style`` (size ``s``, ``color``,
    ``zorder``, ...) over thin black edges."""
    ax.scatter(xs, ys, label=label, **{"edgecolors": "k", "linewidths": 0.4, **style})


def star(ax, x: float, y: float, label: str, size: float = 130) -> None:
    """The chosen point (the best trial, best.yaml's): a large gold star above the rest."""
    ax.scatter([x], [y], s=size, marker="*", color="gold", edgecolors="k", linewidths=0.6,
               zorder=5, label=label)  # fmt: skip
