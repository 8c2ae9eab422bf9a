"""The MLP trainer: full-batch gradient descent (the classic course runs, reproduced exactly)
or mini-batch sgd / adam, with a learning-rate schedule and early stopping, and its figures.

Under ``gd`` metric rows follow the classic course code (docs/math.md, 'Metric rows'):
``step`` is the 0-based iteration; a row is logged when ``step % log_every == 0``, computed on
the full training (and validation and test) set after that step's update, plus a final row
after the last step. One iteration is one epoch for the schedule. With ``train.log_schedule:
log``, rows at steps 1, 2, 3, 5, 7, 10, 20, … join them: evaluations only, which change no
weight and no other row, and which early stopping does not count.

Under ``sgd`` and ``adam`` steps count updates from 1, as the DCN's do: every ``log_every``
steps a row holds the mean cross-entropy and accuracy of the batches since the previous row
(plus the L2 term at the current weights), with ``epoch`` and ``lr``; at every epoch end the
row adds the validation and test metrics, and the schedule steps.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.common.files import atomic_write_bytes
from nnlab.common.metrics import majority_fraction
from nnlab.data.tabular import Dataset, check_fits, load_data
from nnlab.errors import Diverged
from nnlab.figures import plots
from nnlab.models.base import Trainer
from nnlab.models.mlp.engine import BLAS_THREADS_FROM, Engine, blas_threads, step_work
from nnlab.models.mlp.math import MLP, evaluate
from nnlab.models.training.callbacks import Callbacks, Hooks
from nnlab.models.training.early_stopping import EarlyStopping
from nnlab.models.training.schedule import lr_at


class _Loop:
    """What both loops share: the engine, the rows' held-out metrics, the schedule, and the
    callbacks (the caller's hooks, then early stopping with the best weights)."""

    def __init__(self, model: MLP, data: Dataset, train_cfg: dict[str, Any], hooks: Hooks):
        self.model, self.data, self.cfg = model, data, train_cfg
        self.lam = train_cfg["reg_lambda"]
        self.minibatch = train_cfg["optimizer"] != "gd"
        n = len(data.y_train)
        steps = train_cfg["iterations"]
        if self.minibatch:
            steps = train_cfg["epochs"] * math.ceil(n / min(train_cfg["batch_size"], n))
        self.engine = Engine(
            model, data.X_train, data.y_train, self.lam, train_cfg, self.minibatch, steps
        )
        self.scheduled = train_cfg["lr_decay"]["kind"] != "none"
        theta = self.engine.theta
        self.stopper = EarlyStopping.from_config(
            train_cfg, weights=theta.copy, restore=lambda best: np.copyto(theta, best)
        )
        self.hooks = hooks
        self.callbacks = Callbacks([hooks, self.stopper])
        self.lr = train_cfg["epsilon"]  # as the rows give it (the engine's may be float32)

    def set_lr(self, epoch: int, epochs: int) -> None:
        if self.scheduled:
            cfg = self.cfg
            self.lr = lr_at(cfg["epsilon"], cfg["lr_decay"], epoch, epochs)
            self.engine.lr[...] = self.lr

    def held_out(self, row: dict[str, float], splits: list[str]) -> None:
        """Loss and accuracy of the current weights on each split named."""
        for split in splits:
            X, y = self.data.split(split)
            row[f"{split}_loss"], row[f"{split}_acc"] = evaluate(self.model, X, y, self.lam)

    def log(self, row: dict[str, float], step: int, extra: bool = False) -> None:
        """Check a row and hand it to the callbacks (early stopping may end the run); an
        ``extra`` row (train.log_schedule: log) only to the caller's hooks: early stopping
        does not count it as an evaluation, so the run trains as it would without it."""
        if not all(math.isfinite(v) for v in row.values()):
            raise Diverged(step, "the loss")
        (self.hooks if extra else self.callbacks).on_row(row)


LOG_MANTISSAS = (1, 2, 3, 5, 7)  # train.log_schedule log: rows at these × 10^k


def is_log_spaced(step: int) -> bool:
    """Whether ``step`` is one of 1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, …"""
    if step < 1:
        return False
    power = 10 ** (len(str(step)) - 1)
    return step % power == 0 and step // power in LOG_MANTISSAS


def gradient_descent(loop: _Loop) -> None:
    """Full-batch gradient descent, ``train.iterations`` steps."""
    engine, cfg, callbacks = loop.engine, loop.cfg, loop.callbacks
    X, y = loop.data.X_train, loop.data.y_train
    iterations, log_every = cfg["iterations"], cfg["log_every"]
    log_spaced = cfg.get("log_schedule") == "log"
    tick = max(1, iterations // 100)
    for step in range(iterations):
        loop.set_lr(step, iterations)
        callbacks.on_step_start(step)
        if not math.isfinite(engine.step()):
            raise Diverged(step, "the gradient")
        regular = step % log_every == 0 or step == iterations - 1
        if regular or (log_spaced and is_log_spaced(step)):
            row: dict[str, float] = {"step": step}
            if loop.scheduled:
                row["lr"] = loop.lr
            row["train_loss"], row["train_acc"] = evaluate(loop.model, X, y, loop.lam)
            loop.held_out(row, loop.data.splits[1:])
            loop.log(row, step, extra=not regular)
        callbacks.on_step_end(step)
        if (step + 1) % tick == 0 or step == iterations - 1:
            callbacks.on_progress(step + 1, iterations)
        callbacks.on_epoch_end(step + 1)  # one full-batch step is one epoch


def minibatch_descent(loop: _Loop, seed: int) -> None:
    """``train.epochs`` passes over the training set in shuffled mini-batches."""
    engine, cfg, callbacks = loop.engine, loop.cfg, loop.callbacks
    n, epochs, log_every = engine.n, cfg["epochs"], cfg["log_every"]
    batch = min(cfg["batch_size"], n)
    n_batches = math.ceil(n / batch)
    tick = max(1, n_batches // 100)
    shuffle = np.random.RandomState(seed)
    step = 0
    for epoch in range(epochs):
        loop.set_lr(epoch, epochs)
        # one batch holds everything: no shuffling, so that it equals gd step for step
        order = shuffle.permutation(n) if batch < n else np.arange(n)
        desc = f"epoch {epoch + 1}/{epochs}"
        for i in range(n_batches):
            callbacks.on_step_start(step + 1)
            if not math.isfinite(engine.step(order[i * batch : (i + 1) * batch])):
                raise Diverged(step + 1, "the batch loss")
            step += 1
            epoch_end = i == n_batches - 1
            if epoch_end or step % log_every == 0:
                row = {"step": step, "epoch": epoch + 1, "lr": loop.lr}
                loss, row["train_acc"] = engine.stats.take()
                w = engine.weights
                row["train_loss"] = loss + 0.5 * loop.lam * float(w @ w) / n
                if epoch_end:
                    loop.held_out(row, loop.data.splits[1:])
                loop.log(row, step)
            callbacks.on_step_end(step)
            if (i + 1) % tick == 0 or epoch_end:
                callbacks.on_progress(min((i + 1) * batch, n), n, desc=desc, unit="ex")
        callbacks.on_epoch_end(epoch + 1)


def _step_work(cfg: dict[str, Any], data: Dataset) -> int:
    """A step's multiply-adds: its rows are the batch (sgd, adam) or the whole training set."""
    rows = data.X_train.shape[0]
    if cfg["train"]["optimizer"] != "gd":
        rows = min(cfg["train"]["batch_size"], rows)
    return step_work(rows, cfg["model"]["layers"])


def fit_threads(cfg: dict[str, Any], data: Dataset) -> contextlib.AbstractContextManager:
    """BLAS threads for a run's steps: one for small steps (see engine.blas_threads)."""
    return blas_threads(_step_work(cfg, data))


class MLPTrainer(Trainer):
    """One NumPy MLP run: data and initial network, built and validated up front."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.data = load_data(cfg)
        check_fits(cfg, self.data)
        model, train = cfg["model"], cfg["train"]
        self.model = MLP.create(model["layers"], model["activation"], model["init"], cfg["seed"])
        minibatch = train["optimizer"] != "gd"
        columns = ["step"] + (["epoch", "lr"] if minibatch else [])
        if not minibatch and train["lr_decay"]["kind"] != "none":
            columns.append("lr")
        splits = self.data.splits
        self.metric_columns = [*columns, *(f"{s}_{m}" for s in splits for m in ("loss", "acc"))]
        self.stopper: EarlyStopping | None = None

    def fit(self, run_dir: Path, hooks: Hooks) -> None:
        train = self.cfg["train"]
        loop = _Loop(self.model, self.data, train, hooks)
        self.stopper = loop.stopper
        with fit_threads(self.cfg, self.data), np.errstate(over="ignore", invalid="ignore"):
            loop.callbacks.on_train_start()
            try:
                if loop.minibatch:
                    minibatch_descent(loop, self.cfg["seed"])
                else:
                    gradient_descent(loop)
            finally:  # however the run ends (early stopping: with the best weights)
                loop.callbacks.on_train_end()

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def environment(self) -> dict[str, Any]:
        """``step_threads``: the BLAS threads its steps run on — one for steps too small for
        a second thread to pay (engine.BLAS_THREADS_FROM), whatever train.threads says."""
        small = _step_work(self.cfg, self.data) < BLAS_THREADS_FROM
        threads = 1 if small else self.cfg["train"]["threads"]
        return {"device": "cpu", "precision": self.cfg["train"]["dtype"], "step_threads": threads}

    def chance_accuracy(self) -> float | None:
        return majority_fraction(self.data.y_train)

    def summary_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"classes": self.data.class_names}
        if self.stopper is not None:
            extra["early_stopping"] = self.stopper.summary()
        return extra

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
        cfg, data, model = self.cfg, self.data, self.model
        name = f"{cfg['name']}: {cfg['model']['layers']} {cfg['model']['activation']}"
        xscale = "symlog" if cfg["train"].get("log_schedule") == "log" else "linear"
        made = [
            plots.loss_curve(rows, out_dir / f"loss.{ext}", name, xscale),
            plots.accuracy_curve(rows, out_dir / f"accuracy.{ext}", name, xscale),
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
