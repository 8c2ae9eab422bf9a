"""What every curve figure's axes share: plain-number ticks on log axes, the step axis (linear,
or symlog for rows at log-spaced steps), and the names of the splits' metrics in titles."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from nnlab.common.metrics import is_accuracy


def plain_number(x: float) -> str:
    """A tick value as a plain number, to 6 significant digits: 0.6, 2, 300, 0.00001."""
    return np.format_float_positional(float(f"{x:.6g}"), trim="-")


def plain_log_ticks(axis) -> None:
    """Plain-number labels (0.6, 1, 2, 300) on a log or symlog axis's major and minor ticks,
    where matplotlib writes 6×10⁻¹. Which ticks are labelled stays matplotlib's choice
    (``LogFormatter``'s: the decades; between them too when two decades or fewer are in view)."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x, pos=None):
            return plain_number(x) if super().__call__(x, pos) else ""

    axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))


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
