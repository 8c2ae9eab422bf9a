"""What every trainer's loop shares: the learning-rate schedule and early stopping
(docs/math.md, 'Learning-rate decay'; docs/models.md, 'Early stopping').

Both are plain Python, so the NumPy MLP needs no PyTorch for them; the DCN uses PyTorch's
schedulers, which follow the same formulas (tests check it epoch by epoch).
"""

from __future__ import annotations

import math
from typing import Any

from nnlab.common.metrics import is_accuracy
from nnlab.models.base import StopRun


def lr_at(epsilon: float, decay: dict[str, Any], epoch: int, epochs: int) -> float:
    """The learning rate after ``epoch`` completed epochs (``train.lr_decay``):

    - none: ``epsilon``;
    - step: ``epsilon * gamma ** (epoch // step_size)``;
    - exponential: ``epsilon * gamma ** epoch``;
    - cosine: ``epsilon * (1 + cos(pi * epoch / epochs)) / 2`` (0 after the last epoch, as
      ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max=epochs``).
    """
    kind = decay["kind"]
    if kind == "step":
        return epsilon * decay["gamma"] ** (epoch // decay["step_size"])
    if kind == "exponential":
        return epsilon * decay["gamma"] ** epoch
    if kind == "cosine":
        return epsilon * (1 + math.cos(math.pi * epoch / epochs)) / 2
    return epsilon


class EarlyStopping:
    """``train.early_stopping``: watch a validation metric in the rows that carry it; stop
    once it has not improved by more than ``min_delta`` for ``patience`` evaluations in a
    row. The trainer keeps the weights of the best evaluation and ends with them."""

    def __init__(self, cfg: dict[str, Any]):
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
    def from_config(cls, train_cfg: dict[str, Any]) -> EarlyStopping | None:
        cfg = train_cfg["early_stopping"]
        return cls(cfg) if cfg["metric"] else None

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
