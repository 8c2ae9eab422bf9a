"""The DCN's layer-statistics figure, from the stats.csv its
:class:`~nnlab.models.dcn.callbacks.LayerStats` writes (read back with the checks every
file read back gets, docs/design.md, 'Reading files back')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnlab.common.csvtable import cell, read_table
from nnlab.errors import NnlabError
from nnlab.figures.plots import _pyplot, _save
from nnlab.models.dcn.callbacks import STAT_COLUMNS


def read_stats(path: Path) -> list[dict[str, Any]]:
    """stats.csv: step (an integer), layer and quantity (text), min, max, mean and std
    (numbers); one NnlabError naming the file, line and column for anything else."""
    header, rows = read_table(path, tuple(STAT_COLUMNS), NnlabError)
    parse = {"step": int, "layer": str, "quantity": str}
    return [
        {
            k: cell(path, line, k, row[header.index(k)], parse.get(k, float), NnlabError)
            for k in STAT_COLUMNS
        }
        for line, row in enumerate(rows, start=2)
    ]


STATISTICS = ("min", "max", "mean", "std")
QUANTITIES = ("weights", "biases", "net_input", "activation", "pool")


def layer_stats(stats_csv: Path, path: Path, title: str) -> Path | None:
    """The DCN's layer statistics over steps: a row of panels per quantity (weights, biases,
    net inputs, activations, pool outputs), one panel per statistic, a line per layer."""
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in read_stats(stats_csv):
        for stat in STATISTICS:
            series.setdefault((r["quantity"], stat, r["layer"]), []).append((r["step"], r[stat]))
    quantities = [q for q in QUANTITIES if any(k[0] == q for k in series)]
    if not quantities:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(quantities),
        len(STATISTICS),
        squeeze=False,
        figsize=(4.2 * len(STATISTICS), 2.6 * len(quantities)),
    )
    for row, quantity in enumerate(quantities):
        for col, stat in enumerate(STATISTICS):
            ax = axes[row][col]
            for (q, s, layer), pts in sorted(series.items()):
                if q == quantity and s == stat:
                    ax.plot(*zip(*pts, strict=True), label=layer)
            ax.set_title(f"{quantity.replace('_', ' ')}: {stat}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == len(quantities) - 1:
                ax.set_xlabel("step")
        axes[row][0].legend(fontsize=8)
    fig.suptitle(f"Layer statistics — {title}")
    fig.tight_layout()
    return _save(fig, path)
