"""The DCN's figures beyond the curves: a run's layer statistics, from the stats.csv its
:class:`~nnlab.models.dcn.callbacks.LayerStats` writes (read back with the checks every
file read back gets, docs/design.md, 'Reading files back'); a sweep's layer statistics by
group, from its jobs' stats.csv, and the weight distributions of their saved models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnlab.common.csvtable import QUANTITIES, STATISTICS, read_stats
from nnlab.errors import NnlabError
from nnlab.figures.plots import BAND_NOTE, _pyplot, _save, n_text, note, seed_band


def _series(stats_csv: Path) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(quantity, statistic, layer) -> [(step, value)] of one stats.csv."""
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in read_stats(stats_csv, NnlabError):
        for stat in STATISTICS:
            series.setdefault((r["quantity"], stat, r["layer"]), []).append((r["step"], r[stat]))
    return series


def _readable(files: Sequence[Path], figure: Path) -> list[dict]:
    """The series of each stats.csv that exists and can be read; one that cannot (a row cut
    short by a kill) is left out of ``figure`` with a note naming it, as the report does."""
    out = []
    for stats_csv in files:
        if not stats_csv.exists():
            continue
        try:
            out.append(_series(stats_csv))
        except NnlabError as exc:
            note(figure, f"left out: {exc}")
    return out


def _always_zero(series: dict, quantity: str, stat: str) -> bool:
    """Whether every layer's ``stat`` of ``quantity`` is 0 at every step — as the minimum of
    ReLU activations and of their max-pool outputs is, by design."""
    values = [v for (q, s, _), pts in series.items() if (q, s) == (quantity, stat) for _, v in pts]
    return bool(values) and all(v == 0 for v in values)


COLUMNS = 12  # of the layer-statistics grid: a row's panels share its width evenly


def layer_stats(stats_csv: Path, path: Path, title: str) -> Path | None:
    """The DCN's layer statistics over steps: a row of panels per quantity (weights, biases,
    net inputs, activations, pool outputs), one panel per statistic, a line per layer. A
    statistic that is 0 at every step for every layer (the minimum of ReLU activations and
    of max-pool outputs) gets no panel — the note under the title names it — and the row's
    other panels take its width."""
    series = _series(stats_csv)
    quantities = [q for q in QUANTITIES if any(k[0] == q for k in series)]
    if not quantities:
        return None
    shown = {q: [s for s in STATISTICS if not _always_zero(series, q, s)] for q in quantities}
    dropped = [f"{q.replace('_', ' ')} {s}" for q in quantities for s in STATISTICS
               if s not in shown[q]]  # fmt: skip
    quantities = [q for q in quantities if shown[q]]
    plt = _pyplot()
    fig = plt.figure(figsize=(4.2 * len(STATISTICS), 2.6 * len(quantities) + 0.3))
    grid = fig.add_gridspec(len(quantities), COLUMNS)
    for row, quantity in enumerate(quantities):
        width = COLUMNS // len(shown[quantity])
        for col, stat in enumerate(shown[quantity]):
            ax = fig.add_subplot(grid[row, col * width : (col + 1) * width])
            for (q, s, layer), pts in sorted(series.items()):
                if q == quantity and s == stat:
                    ax.plot(*zip(*pts, strict=True), label=layer)
            ax.set_title(f"{quantity.replace('_', ' ')}: {stat}", fontsize=10)
            ax.grid(alpha=0.3)
            if row == len(quantities) - 1:
                ax.set_xlabel("step")
            if col == 0:
                ax.legend(fontsize=8)
    heading = f"Layer statistics — {title}"
    if dropped:
        heading += f"\nnot drawn, 0 at every step for every layer: {', '.join(dropped)}"
    fig.suptitle(heading)
    fig.tight_layout()
    return _save(fig, path)


LAYER_STATISTICS = (("weights", "std"), ("net_input", "std"))  # of a sweep's figure


def sweep_layer_stats(
    groups: Sequence[tuple[str, Sequence[Path]]],
    path: Path,
    title: str,
    chosen: Sequence[tuple[str, str]] = LAYER_STATISTICS,
) -> Path | None:
    """A sweep's layer statistics: a row per chosen (quantity, statistic) — the spread of
    each layer's weights and of its net inputs, by default — a panel per layer, a line per
    group of jobs (``groups``: label and the stats.csv of each of its jobs) against step:
    the median over its seeds with their interquartile band (nnlab.figures.plots.seed_band),
    so that an initialisation's effect (Xavier against PyTorch's default) shows at a
    glance. None when no job wrote statistics."""
    per_group = [(label, _readable(files, path)) for label, files in groups]
    per_group = [(label, runs) for label, runs in per_group if runs]
    keys = {k for _, runs in per_group for series in runs for k in series}
    layers = sorted({layer for _, _, layer in keys})
    rows = [(q, s) for q, s in chosen if any((q, s, layer) in keys for layer in layers)]
    if not rows:
        return None
    plt = _pyplot()
    colors = plt.get_cmap("tab10" if len(per_group) <= 10 else "tab20").colors
    fig, axes = plt.subplots(
        len(rows), len(layers), squeeze=False,
        figsize=(3.6 * len(layers) + 3.2, 2.9 * len(rows) + 0.6),
    )  # fmt: skip
    several = False
    for r, (quantity, stat) in enumerate(rows):
        for c, layer in enumerate(layers):
            ax = axes[r][c]
            for i, (label, runs) in enumerate(per_group):
                metric = f"{quantity}_{stat}"
                as_rows = [[{"step": step, metric: v} for step, v in series.get(
                    (quantity, stat, layer), [])] for series in runs]  # fmt: skip
                as_rows = [rows_ for rows_ in as_rows if rows_]
                if not as_rows:
                    continue
                band = seed_band(as_rows, metric)
                several |= band.runs > 1
                name = label if band.runs == 1 else f"{label} ({n_text(band.n)})"
                ax.plot(band.steps, band.median, color=colors[i % len(colors)], lw=1.3,
                        label=name)  # fmt: skip
                if band.runs > 1:
                    ax.fill_between(band.steps, band.low, band.high, lw=0, alpha=0.2,
                                    color=colors[i % len(colors)])  # fmt: skip
            ax.set_title(f"{layer}: {quantity.replace('_', ' ')} {stat}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if r == len(rows) - 1:
                ax.set_xlabel("step", fontsize=8)
    axes[0][-1].legend(
        fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
        title=BAND_NOTE if several else None, title_fontsize=7,
    )  # fmt: skip
    fig.suptitle(f"Layer statistics by group — {title}")
    fig.tight_layout()
    return _save(fig, path)


def weight_histograms(
    groups: Sequence[tuple[str, Sequence[Path]]], path: Path, title: str, bins: int = 60
) -> Path | None:
    """The distribution of each layer's weights in the saved models (model.pt: the weights
    a job ended with — with early stopping, the best evaluation's): a panel per layer, a
    density histogram per group (``groups``: label and the run folders of its jobs), all its
    seeds' weights pooled, on bins shared by the groups. None when no job saved a model."""
    import numpy as np
    import torch

    per_group: list[tuple[str, dict[str, np.ndarray], int]] = []
    for label, folders in groups:
        weights: dict[str, list[np.ndarray]] = {}
        models = [f / "model.pt" for f in folders if (f / "model.pt").exists()]
        for model in models:
            state = torch.load(model, map_location="cpu", weights_only=True)
            for name, tensor in state.items():
                if name.endswith(".weight"):
                    weights.setdefault(name.removesuffix(".weight"), []).append(
                        tensor.float().numpy().ravel()
                    )
        if models:
            pooled = {k: np.concatenate(v) for k, v in weights.items()}
            per_group.append((label, pooled, len(models)))
    if not per_group:
        return None
    layers = list(dict.fromkeys(k for _, pooled, _ in per_group for k in pooled))
    plt = _pyplot()
    colors = plt.get_cmap("tab10" if len(per_group) <= 10 else "tab20").colors
    fig, axes = plt.subplots(1, len(layers), squeeze=False,
                             figsize=(3.6 * len(layers) + 3.2, 3.4))  # fmt: skip
    for ax, layer in zip(axes[0], layers, strict=True):
        values = [pooled[layer] for _, pooled, _ in per_group if layer in pooled]
        lo, hi = min(v.min() for v in values), max(v.max() for v in values)
        if hi <= lo:  # one value in every group (a constant init): a bin around it
            lo, hi = lo - (abs(lo) * 0.1 or 0.5), hi + (abs(hi) * 0.1 or 0.5)
        edges = np.linspace(lo, hi, bins + 1)
        for i, (label, pooled, n) in enumerate(per_group):
            if layer in pooled:
                name = label if n == 1 else f"{label} ({n} seeds pooled)"
                ax.hist(pooled[layer], bins=edges, density=True, histtype="step", lw=1.2,
                        color=colors[i % len(colors)], label=name)  # fmt: skip
        ax.set_title(f"{layer}: weights (final)", fontsize=9)
        ax.set_xlabel("weight", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="x", nbins=5)  # 8 ticks of 6 characters would overlap
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                       borderaxespad=0)  # fmt: skip
    fig.suptitle(f"Weight distributions of the saved models — {title}")
    fig.tight_layout()
    return _save(fig, path)
