"""Metric names, their order, which is better, and how they are shown — in one place.

A metric row holds ``step`` (and ``epoch`` and ``lr`` for epoch-based trainers) and, per split
(train, val, test), ``<split>_loss`` and ``<split>_acc``. Accuracies are fractions in [0, 1] in
every file; they are shown in percent (docs/run-folder.md, 'Run folder').
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

SPLITS = ("train", "val", "test")
ORDER = ("step", "epoch", "lr", *(f"{s}_{m}" for s in SPLITS for m in ("loss", "acc")))
COUNTERS = ("step", "epoch")  # integers in metrics.csv
# What a figure or a listing shows first when a run has several splits: held-out data first.
PREFERRED = {
    "loss": ("test_loss", "val_loss", "train_loss"),
    "accuracy": ("test_acc", "val_acc", "train_acc"),
}
LISTED = ("test_acc", "train_acc", "train_loss")  # `nnlab runs` shows the first two a run has
LABELS = {
    "test_acc": "Test accuracy (%)", "train_acc": "Train accuracy (%)",
    "val_acc": "Validation accuracy (%)", "test_loss": "Test loss", "train_loss": "Train loss",
    "val_loss": "Validation loss",
    "n_params": "Parameters", "train_seconds": "Training time (s)",
}  # fmt: skip


def is_loss(key: str) -> bool:
    return key.endswith("_loss")


def is_accuracy(key: str) -> bool:
    return key.endswith("_acc")


def is_result(key: str) -> bool:
    """A loss or an accuracy (not a counter or the learning rate)."""
    return is_loss(key) or is_accuracy(key)


def logged_metrics(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The metrics the rows hold, sorted (not the counters step and epoch)."""
    return sorted({k for row in rows for k in row} - set(COUNTERS))


def best(key: str, values: Iterable[float]) -> float | None:
    """The best of the finite values: the lowest loss, the highest accuracy."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if is_loss(key) else max(finite)


def summarize(rows: list[dict[str, float]]) -> tuple[dict, dict]:
    """(final row, best value of each loss and accuracy over the rows)."""
    final = dict(rows[-1]) if rows else {}
    bests: dict[str, float] = {}
    for key in final:
        if is_result(key):
            value = best(key, (r[key] for r in rows if key in r))
            if value is not None:
                bests[key] = value
    return final, bests


# A run "did not learn" when its best accuracy never rose above chance (the training split's
# most frequent class) by more than this share of the way to 100% — on its held-out splits
# when it has any (a mini-batch trainer's train_acc is a few batches' and jumps about), else
# on the training split.
LEARNED_MARGIN = 0.05


def majority_fraction(labels: Any) -> float | None:
    """The share of the most frequent label: the accuracy of always answering it."""
    import numpy as np

    labels = np.asarray(labels).ravel()
    if labels.size == 0:
        return None
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)


def did_not_learn(best_values: dict[str, float], chance: float | None) -> bool | None:
    """Whether a run's best accuracies (summary.json's ``best``) all stayed within
    :data:`LEARNED_MARGIN` of ``chance``; None when there is no chance level or accuracy."""
    accuracies = [v for k, v in best_values.items() if is_accuracy(k) and math.isfinite(v)]
    held_out = [v for k, v in best_values.items()
                if k in ("val_acc", "test_acc") and math.isfinite(v)]  # fmt: skip
    accuracies = held_out or accuracies
    if chance is None or not accuracies:
        return None
    return max(accuracies) <= chance + LEARNED_MARGIN * (1 - chance)


def status_text(status: str, not_learned: Any, reused: Any = None) -> str:
    """A run's status as tables, listings and reports show it: ``completed, did not learn``
    when its summary's ``did_not_learn`` (``not_learned``) is true: its accuracy stayed at
    chance (:func:`did_not_learn`); ``completed, reused`` when its folder is a copy of a
    completed run with its fingerprint (``reused``: the source; docs/sweeps.md)."""
    text = f"{status}, did not learn" if not_learned is True else str(status)
    return f"{text}, reused" if reused else text


def metric_text(key: str, value: Any) -> str:
    """A value as tables, reports and listings show it: 97.50%, 0.0708, step 19999, lr 0.001."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if is_accuracy(key):
        return f"{value:.2%}"
    if key in COUNTERS:
        return str(int(value))
    if key == "n_params":  # a summary's size (a mean over seeds is still a whole count)
        return f"{value:,.0f}"
    if key == "train_seconds":
        return f"{value:.3g} s"
    return f"{value:.4g}" if key == "lr" else f"{value:.4f}"


def metric_field(key: str, value: float) -> str:
    """``key value`` as the console prints a metric row, aligned: 'train_acc  97.50%'."""
    if key in COUNTERS:
        return f"{key} {value:>6d}"
    if key == "lr":
        return f"lr {value:.3g}"
    if is_accuracy(key):
        return f"{key} {value:7.2%}"
    return f"{key} {value:.6f}"


def short_key(dotted: str) -> str:
    """The part of a dotted config key that names it in a label: model.activation ->
    activation; a ``kind`` key is named by its section: train.lr_decay.kind -> lr_decay."""
    parts = dotted.split(".")
    return parts[-2] if parts[-1] == "kind" and len(parts) > 2 else parts[-1]
