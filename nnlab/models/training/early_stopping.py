"""``train.early_stopping`` as a callback (docs/design.md, 'Training'): it watches the rows,
keeps the weights of the best evaluation, ends the run once the metric stops improving and
leaves the model with the best weights, however the run ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nnlab.common.metrics import is_accuracy
from nnlab.models.training.callbacks import Callback, StopRun


class EarlyStopping(Callback):
    """``train.early_stopping``: watch a validation metric in the rows that carry it; stop
    once it has not improved by more than ``min_delta`` for ``patience`` evaluations in a
    row. ``weights()`` copies the model's weights (taken at every improvement, as
    ``best_weights``), ``restore(weights)`` puts them back (at the end of training)."""

    def __init__(
        self,
        cfg: dict[str, Any],
        weights: Callable[[], Any],
        restore: Callable[[Any], Any],
    ):
        self._weights, self._restore = weights, restore
        self.best_weights: Any = None
        self.metric: str = cfg["metric"]
        self.patience, self.min_delta = cfg["patience"], cfg["min_delta"]
        mode = cfg["mode"]
        self.mode = ("max" if is_accuracy(self.metric) else "min") if mode == "auto" else mode
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_row: dict[str, float] | None = None
        self.bad = 0  # evaluations since the last improvement
        self.stopped_step: int | None = None

    @classmethod
    def from_config(
        cls,
        train_cfg: dict[str, Any],
        weights: Callable[[], Any],
        restore: Callable[[Any], Any],
    ) -> EarlyStopping | None:
        cfg = train_cfg["early_stopping"]
        return cls(cfg, weights, restore) if cfg["metric"] else None

    def on_row(self, row: dict[str, float]) -> None:
        """Keep the weights when the row is the best so far; stop once patience has run out."""
        if self.improved(row):
            self.best_weights = self._weights()
        self.check(int(row["step"]))

    def on_train_end(self) -> None:
        """End with the weights of the best evaluation (a resume starts from a checkpoint,
        not from these)."""
        if self.best_weights is not None:
            self._restore(self.best_weights)

    def improved(self, row: dict[str, float]) -> bool:
        """Take one row; True when it holds the metric and is the best so far (keep the
        weights now). A non-finite value never improves."""
        value = row.get(self.metric)
        if value is None:
            return False
        better = (
            self.best is None
            or (self.mode == "min" and value < self.best - self.min_delta)
            or (self.mode == "max" and value > self.best + self.min_delta)
        )
        if better and math.isfinite(value):
            self.best, self.best_step, self.bad = value, int(row["step"]), 0
            self.best_row = dict(row)
            return True
        self.bad += 1
        return False

    def check(self, step: int) -> None:
        """Raise :class:`StopRun` once patience has run out."""
        if self.bad >= self.patience:
            self.stopped_step = step
            raise StopRun(
                f"early stopping: {self.metric} did not improve by more than {self.min_delta:g} "
                f"for {self.patience} evaluations; best {self.best:.6g} at step {self.best_step}"
            )

    def summary(self) -> dict[str, Any]:
        """What summary.json says: the metric, the best value and step, whether the run
        stopped early, the step whose weights the model file holds and that step's row (the
        metrics of those weights)."""
        return {
            "metric": self.metric,
            "mode": self.mode,
            "best": self.best,
            "best_step": self.best_step,
            "stopped_early": self.stopped_step is not None,
            "weights_from_step": self.best_step,
            "row": self.best_row,
        }

    def state_dict(self) -> dict[str, Any]:
        keys = ("best", "best_step", "best_row", "bad", "stopped_step")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
