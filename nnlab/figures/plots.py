"""Figures of runs and sweeps, rendered with matplotlib's Agg backend (no display needed) to
PNG, PDF or SVG, and written atomically."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nnlab.common.files import atomic_write_bytes
from nnlab.common.metrics import SPLITS, is_accuracy
from nnlab.errors import FigureNote, NnlabError
from nnlab.figures.axes import (
    LINESTYLES,
    STYLE_NAMES,
    family,
    metric_title,
    panel_title,
    plain_log_ticks,
    step_axis,
)
from nnlab.figures.bands import (
    BAND_NOTE,
    DRAWN_LIMIT,
    SeedBand,
    drawable,
    n_text,
    seed_band,
)


def note(path: Path, text: str) -> None:
    """Say in one line what the figure at ``path`` leaves out (a :class:`FigureNote`)."""
    warnings.warn(FigureNote(f"{path}: {text}"), stacklevel=2)


def _steps_text(steps: Sequence) -> str:
    shown = ", ".join(str(s) for s in steps[:3])
    return (
        f"step {shown}" if len(steps) == 1 else f"steps {shown}" + (", …" if len(steps) > 3 else "")
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Render the figure in the format its file name says, and write it atomically; a folder
    that cannot take it is an NnlabError naming the file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip("."), dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise NnlabError(f"{path}: the figure cannot be written: {exc.strerror or exc}") from None
    return path


def _curves(
    rows: Sequence[dict],
    keys: Sequence[str],
    path: Path,
    title: str,
    ylabel: str,
    percent: bool = False,
    xscale: str = "linear",
) -> Path | None:
    keys = [k for k in keys if any(k in r for r in rows)]
    if not keys:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r and drawable(r[key])]
        extreme = [
            r["step"] for r in rows if key in r and np.isfinite(r[key]) and not drawable(r[key])
        ]
        if extreme:
            note(
                path,
                f"{len(extreme)} {key} value(s) beyond ±{DRAWN_LIMIT:g} not drawn "
                f"({_steps_text(extreme)})",
            )
        steps, values = zip(*pts, strict=True) if pts else ((), ())
        ax.plot(
            steps, values, marker="o" if len(pts) < 40 else None, ms=3, label=key.replace("_", " ")
        )
    step_axis(ax, xscale)
    ax.set_ylabel(ylabel)
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def loss_curve(rows: Sequence[dict], path: Path, title: str, xscale: str = "linear") -> Path | None:
    """Training (and test) loss against step."""
    return _curves(
        rows,
        [f"{split}_loss" for split in SPLITS],
        path,
        f"Loss — {title}",
        "loss (cross-entropy + L2)",
        xscale=xscale,
    )


def accuracy_curve(
    rows: Sequence[dict], path: Path, title: str, xscale: str = "linear"
) -> Path | None:
    """Training (and validation / test) accuracy against step."""
    return _curves(
        rows,
        [f"{split}_acc" for split in SPLITS],
        path,
        f"Accuracy — {title}",
        "accuracy",
        percent=True,
        xscale=xscale,
    )


def metric_curve(rows: Sequence[dict], metric: str, path: Path, title: str) -> Path | None:
    """One metric against step ('loss' and 'accuracy': every split's, as the run's own
    figures draw them)."""
    if metric == "loss":
        return loss_curve(rows, path, title)
    if metric == "accuracy":
        return accuracy_curve(rows, path, title)
    label = metric.replace("_", " ")
    return _curves(rows, [metric], path, f"{label} — {title}", label, is_accuracy(metric))


def _draw_boundary(
    ax,
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    size: float = 22,
) -> None:
    """Filled contour of the predicted class over the points' box, the points on top. Each
    axis spans its own feature's range (with a margin of 0.5, or a quarter of a range
    narrower than 2), on a grid of GRID_CELLS along each: features of very different
    scales both show."""
    plt = _pyplot()
    pts = X if X_test is None else np.vstack([X, X_test])
    xx, yy = np.meshgrid(_axis_grid(pts[:, 0]), _axis_grid(pts[:, 1]))
    Z = predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
    n_classes = int(max(y.max(), Z.max(), -1 if y_test is None else y_test.max())) + 1
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(xx, yy, Z, levels=levels, cmap=plt.cm.Spectral, alpha=0.8)
    points = dict(cmap=plt.cm.Spectral, vmin=0, vmax=n_classes - 1, edgecolors="k")
    ax.scatter(X[:, 0], X[:, 1], c=y, linewidths=0.5, s=size, label="train", **points)
    if X_test is not None:
        ax.scatter(
            X_test[:, 0], X_test[:, 1], c=y_test, marker="^", s=size * 1.5, label="test", **points
        )
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())


GRID_CELLS = 300  # of the decision boundary's grid, along each axis


def _axis_grid(values: np.ndarray) -> np.ndarray:
    """GRID_CELLS points from below the smallest value to above the largest; computed as
    weighted means of the ends, so that no difference between them can overflow."""
    low, high = float(values.min()), float(values.max())
    span = high / 2 - low / 2  # half the range: finite for any two finite values
    margin = 0.5 if span == 0 else min(0.5, span / 2)
    low, high = max(low - margin, -DRAWN_LIMIT), min(high + margin, DRAWN_LIMIT)
    t = np.linspace(0.0, 1.0, GRID_CELLS)
    return low * (1 - t) + high * t


def decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    path: Path,
    title: str,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    axis_labels: Sequence[str] = ("x1", "x2"),
) -> Path:
    """The classic filled contour of the predicted class over the plane, points on top; None,
    said in a :class:`FigureNote`, when a feature holds values no axis takes."""
    if not _boundary_drawable(path, X, X_test):
        return None
    fig, ax = _pyplot().subplots(figsize=(6.4, 4.8))
    _draw_boundary(ax, predict, X, y, X_test, y_test)
    if X_test is not None:
        ax.legend(loc="best")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(f"Decision boundary — {title}")
    return _save(fig, path)


def decision_boundary_grid(
    panels: Sequence[tuple], shape: tuple[int, int], path: Path, title: str
) -> Path:
    """Decision boundaries side by side: ``panels`` holds ((row, col), predict, data,
    panel title) with data an nnlab Dataset; empty places stay blank."""
    rows, cols = shape
    panels = [p for p in panels if _boundary_drawable(path, p[2].X_train, p[2].X_test, p[3])]
    if not panels:
        return None
    fig, axes = _pyplot().subplots(rows, cols, squeeze=False, figsize=(4.6 * cols, 3.9 * rows))
    for ax in axes.flat:
        ax.set_axis_off()
    for (r, c), predict, data, heading in panels:
        ax = axes[r][c]
        ax.set_axis_on()
        _draw_boundary(ax, predict, data.X_train, data.y_train, data.X_test, data.y_test, 16)
        ax.set_title(heading, fontsize=11)
        ax.tick_params(labelsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _boundary_drawable(
    path: Path, X: np.ndarray, X_test: np.ndarray | None, panel: str | None = None
) -> bool:
    pts = X if X_test is None else np.vstack([X, X_test])
    if np.all(np.abs(pts) <= DRAWN_LIMIT):
        return True
    where = f" of {panel}" if panel else ""
    note(
        path,
        f"the decision boundary{where} is not drawn: its features hold values beyond "
        f"±{DRAWN_LIMIT:g}",
    )
    return False


MAX_LINES = 9  # lines one axes holds readably; past it, small multiples


def _group_title(label: str, band: SeedBand) -> str:
    return label if band.runs == 1 else f"{label} ({n_text(band.n)})"


def _draw_group(ax, band: SeedBand, label: str, color, lw: float = 1.4, ls: str = "-") -> None:
    ax.plot(band.steps, band.median, color=color, lw=lw, ls=ls, label=_group_title(label, band))
    if band.runs > 1:
        ax.fill_between(band.steps, band.low, band.high, color=color, alpha=0.2, lw=0)


def _metric_axis(ax, metric: str, label: str | None = None) -> None:
    ax.set_ylabel(metric.replace("_", " ") if label is None else label)
    if is_accuracy(metric):
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    ax.grid(alpha=0.3)


def common_metric(
    groups: Sequence[tuple[str, Sequence[Sequence[dict]]]], candidates: Sequence[str]
) -> str | None:
    """The first of ``candidates`` that every run of every group logged."""
    return next(iter(common_metrics(groups, candidates)), None)


def common_metrics(
    groups: Sequence[tuple[str, Sequence[Sequence[dict]]]], candidates: Sequence[str]
) -> list[str]:
    """Those of ``candidates`` that every run of every group logged, in their order."""
    return [
        m
        for m in candidates
        if all(any(m in r for r in rows) for _, runs in groups for rows in runs)
    ]


def _by_split(metrics: Sequence[str]) -> list[str]:
    """The metrics in the order the splits go: train, validation, test; others after."""
    rank = {split: i for i, split in enumerate(SPLITS)}
    return sorted(metrics, key=lambda m: rank.get(m.partition("_")[0], len(rank)))


def grouped_figure(
    groups: Sequence[tuple[str, Sequence[Sequence[dict]]]],
    candidates: Sequence[str],
    title: str,
    xscale: str = "linear",
):
    """The matplotlib Figure :func:`grouped_curves` saves (None when no candidate metric is
    logged by every run), to be saved or read back."""
    metrics = _by_split(common_metrics(groups, candidates))
    if not metrics:
        return None
    plt = _pyplot()
    colors = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20").colors
    bands = {m: [(label, seed_band(runs, m)) for label, runs in groups] for m in metrics}
    several = any(band.runs > 1 for _, band in bands[metrics[0]])
    note = BAND_NOTE if several else None
    if len(groups) <= MAX_LINES:
        return _panel_per_metric(plt, bands, colors, title, note, xscale)
    ncols = min(4, math.ceil(math.sqrt(len(groups))))
    nrows = math.ceil(len(groups) / ncols)
    titles = [panel_title(_group_title(label, band)) for label, band in bands[metrics[0]]]
    lines = max(t.count("\n") + 1 for t in titles)  # room above each row for its titles
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.2 * ncols, (2.3 + 0.14 * lines) * nrows),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    context = metrics[-1]  # the others' medians, faint: held-out data when logged
    for i, (label, _) in enumerate(groups):
        ax = axes.flat[i]
        for _, other in bands[context]:
            ax.plot(other.steps, other.median, color="0.85", lw=0.8)
        for metric in metrics:
            band = bands[metric][i][1]
            style = LINESTYLES.get(metric.partition("_")[0], "-") if len(metrics) > 1 else "-"
            name = label if len(metrics) == 1 else f"{label}: {metric_title(metric)}"
            _draw_group(ax, band, name, colors[i % len(colors)], lw=1.6, ls=style)
        _metric_axis(ax, metrics[0], family(metrics))
        step_axis(ax, xscale, label=False)
        if xscale == "linear":  # a 3.2-inch panel fits 5 labels like '20000', not 9
            ax.locator_params(axis="x", nbins=4)
        if i % ncols:
            ax.set_ylabel("")
        ax.set_title(titles[i], fontsize=7.5)
        ax.tick_params(labelsize=7, which="both")
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    heading = [title]
    if len(metrics) > 1:
        heading.append(
            ", ".join(
                f"{metric_title(m)} {STYLE_NAMES[LINESTYLES.get(m.partition('_')[0], '-')]}"
                for m in metrics
            )
        )
    if note:
        heading.append(note)
    fig.suptitle("\n".join(heading))
    fig.supxlabel("step", fontsize=9)
    # tight_layout leaves the suptitle out: keep its lines' height clear above the panels
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.15 + 0.22 * len(heading)) / fig.get_figheight()))
    return fig


def _panel_per_metric(plt, bands: dict, colors, title: str, note: str | None, xscale: str):
    """A panel per metric (train, validation, test), side by side on one y scale, a line
    per group (the same colour in every panel), the legend beside the last panel."""
    metrics = list(bands)
    n_groups = len(bands[metrics[0]])
    width = 7.5 if len(metrics) == 1 else 4.4 * len(metrics) + (2.6 if n_groups > 4 else 0)
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 4.8), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, band) in enumerate(bands[metric]):
            _draw_group(ax, band, label, colors[i % len(colors)])
        step_axis(ax, xscale)
        _metric_axis(ax, metric, None if len(metrics) == 1 else family(metrics))
        if len(metrics) > 1:
            ax.set_title(metric_title(metric), fontsize=10)
            ax.yaxis.set_tick_params(labelleft=True, which="both")
    ax = axes[0][-1]
    if len(metrics) == 1:
        ax.set_title(title)
    else:
        fig.suptitle(title)
    legend = dict(fontsize=7, title=note, title_fontsize=7)
    if n_groups > 4 or len(metrics) > 1:  # beside the axes: inside, it would hide curves
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **legend)
    else:
        ax.legend(loc="best", **legend)
    if len(metrics) > 1:
        fig.tight_layout()
    return fig


def grouped_curves(
    groups: Sequence[tuple[str, Sequence[Sequence[dict]]]],
    candidates: Sequence[str],
    path: Path,
    title: str,
    xscale: str = "linear",
) -> Path | None:
    """One line per group of runs (its seeds) — the median over the runs that logged each
    step, with a band from their 25th to their 75th percentile (:func:`seed_band`), n in the
    legend (its range where runs stop early: n=4–5) — of each metric in ``candidates`` that
    every run logged: a panel per metric (train, validation, test), side by side on one y
    scale. A group of one run is its plain curve. Past ``MAX_LINES`` groups, small
    multiples: a panel per group, its metrics in line styles (train dashed, validation
    dotted, test solid), the others' medians faint behind it. Losses use a log scale (they
    span decades), labelled in plain numbers."""
    fig = grouped_figure(groups, candidates, title, xscale)
    if fig is None:
        return None
    extreme = [
        (k, r["step"])
        for _, runs in groups
        for rows in runs
        for r in rows
        for k in candidates
        if k in r and np.isfinite(r[k]) and not drawable(r[k])
    ]
    if extreme:
        keys = ", ".join(dict.fromkeys(k for k, _ in extreme))
        steps = sorted({step for _, step in extreme})
        note(path, f"{keys} values beyond ±{DRAWN_LIMIT:g} not drawn ({_steps_text(steps)})")
    return _save(fig, path)


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], path: Path, title: str
) -> Path:
    """Counts of (true class, predicted class) on the test split, annotated."""
    plt = _pyplot()
    k = len(class_names)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    size = max(4.0, 0.55 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(counts, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="examples")
    ax.set_xticks(
        range(k), class_names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center"
    )
    ax.set_yticks(range(k), class_names)
    threshold = counts.max() / 2
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
            )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix (test, accuracy {acc:.1%}) — {title}")
    return _save(fig, path)
