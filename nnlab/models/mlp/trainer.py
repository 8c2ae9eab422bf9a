"""The MLP trainer: full-batch gradient descent on scikit-learn's data, and its figures.

Metric rows follow the classic course code (docs/design.md, 'MLP equations'): ``step`` is the
0-based iteration; a row is logged when ``step % log_every == 0``, computed on the full
training (and test) set after that step's update, plus a final row after the last step.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.errors import Diverged
from nnlab.files import atomic_write_bytes
from nnlab.models.base import Hooks, Trainer
from nnlab.models.mlp.data import Dataset, check_fits, load_data
from nnlab.models.mlp.engine import Engine, blas_threads
from nnlab.models.mlp.math import MLP, evaluate


def gradient_descent(model: MLP, data: Dataset, train_cfg: dict[str, Any], hooks: Hooks) -> None:
    """Full-batch gradient descent on ``data.X_train``, updating ``model`` in place.

    Rows go to ``hooks.row``; ``hooks.progress(n, iterations)`` reports that n steps are done,
    about a hundred times a run. Raises :class:`Diverged`.
    """
    X, y = data.X_train, data.y_train
    lam = train_cfg["reg_lambda"]
    iterations, log_every = train_cfg["iterations"], train_cfg["log_every"]
    engine = Engine(model, X, y, train_cfg["epsilon"], lam)
    tick = max(1, iterations // 100)
    with blas_threads(X.shape[0] * max(model.layers)), np.errstate(over="ignore", invalid="ignore"):
        for step in range(iterations):
            if not math.isfinite(engine.step()):
                raise Diverged(step, "the gradient")
            if step % log_every == 0 or step == iterations - 1:
                row = {"step": step}
                row["train_loss"], row["train_acc"] = evaluate(model, X, y, lam)
                if data.X_test is not None:
                    row["test_loss"], row["test_acc"] = evaluate(
                        model, data.X_test, data.y_test, lam
                    )
                if not all(math.isfinite(v) for v in row.values()):
                    raise Diverged(step, "the loss")
                hooks.row(row)
            hooks.step(step)
            if (step + 1) % tick == 0 or step == iterations - 1:
                hooks.progress(step + 1, iterations)


class MLPTrainer(Trainer):
    """One NumPy MLP run: data and initial network, built and validated up front."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.data = load_data(cfg)
        check_fits(cfg, self.data)
        model = cfg["model"]
        self.model = MLP.create(model["layers"], model["activation"], model["init"], cfg["seed"])
        splits = ["train"] + (["test"] if self.data.X_test is not None else [])
        self.metric_columns = ["step", *(f"{s}_{m}" for s in splits for m in ("loss", "acc"))]

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def fit(self, run_dir: Path, hooks: Hooks) -> None:
        gradient_descent(self.model, self.data, self.cfg["train"], hooks)

    def save_model(self, run_dir: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **self.model.state())
        atomic_write_bytes(run_dir / "model.npz", buffer.getvalue())

    def load_model(self, run_dir: Path) -> None:
        with np.load(run_dir / "model.npz") as state:
            self.model = MLP.from_state(dict(state), self.cfg["model"]["activation"])

    def predictor(self) -> tuple[Callable[[np.ndarray], np.ndarray], Dataset] | None:
        return (self.model.predict, self.data) if self.data.n_features == 2 else None

    def figures(
        self, rows: list[dict[str, float]], out_dir: Path, run_dir: Path, ext: str = "png"
    ) -> list[Path]:
        """Loss and accuracy curves; the decision boundary for 2-D inputs; the confusion
        matrix with a test split."""
        from nnlab import plots

        cfg, data, model = self.cfg, self.data, self.model
        name = f"{cfg['name']}: {cfg['model']['layers']} {cfg['model']['activation']}"
        made = [
            plots.loss_curve(rows, out_dir / f"loss.{ext}", name),
            plots.accuracy_curve(rows, out_dir / f"accuracy.{ext}", name),
        ]
        if data.n_features == 2:
            label = " (standardized)" if cfg["data"]["standardize"] else ""
            made.append(
                plots.decision_boundary(
                    model.predict,
                    data.X_train,
                    data.y_train,
                    out_dir / f"decision_boundary.{ext}",
                    name,
                    X_test=data.X_test,
                    y_test=data.y_test,
                    axis_labels=[f + label for f in data.feature_names],
                )
            )
        if data.X_test is not None:
            made.append(
                plots.confusion_matrix(
                    data.y_test,
                    model.predict(data.X_test),
                    data.class_names,
                    out_dir / f"confusion_matrix.{ext}",
                    name,
                )
            )
        return [p for p in made if p is not None]
