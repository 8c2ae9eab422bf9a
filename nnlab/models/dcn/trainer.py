"""The DCN trainer: read it like pytorch/examples' mnist — one training step
(:meth:`DCNTrainer.train_step`), one evaluation (:meth:`DCNTrainer.evaluate`), the loop
(:meth:`DCNTrainer.fit`); what watches the loop — the caller's hooks, layer statistics,
TensorBoard, checkpoints, early stopping — are callbacks beside it
(:mod:`nnlab.models.dcn.callbacks`, :mod:`nnlab.models.training`), called through one
:class:`~nnlab.models.training.callbacks.Callbacks`.

Steps count optimizer updates done, from 1. A training row is logged every ``log_every`` steps
with the mean cross-entropy and accuracy of the batches since the previous row; validation and
test metrics join the row every ``eval_every`` steps and at the end of every epoch. The loss is
the cross-entropy alone: weight decay (``reg_lambda``) is applied by the optimizer.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nnlab.common.files import atomic_write_bytes
from nnlab.common.metrics import ORDER, majority_fraction
from nnlab.data.images import ImageData, load_images
from nnlab.errors import Diverged, NnlabError
from nnlab.figures import plots
from nnlab.models.allocator import keep_freed_memory
from nnlab.models.base import Trainer
from nnlab.models.dcn.callbacks import (
    CHECKPOINT,
    Checkpoints,
    LayerStats,
    TensorBoard,
    truncate_csv,
)
from nnlab.models.dcn.figures import layer_stats, sweep_layer_stats, weight_histograms
from nnlab.models.dcn.network import (
    DCN,
    assess,
    autocast,
    channels_last,
    check_image_size,
    evaluate,
    initialise,
    make_optimizer,
    make_scheduler,
    predict,
    resolve_device,
)
from nnlab.models.training.callbacks import Callback, Callbacks, Hooks, StopRun
from nnlab.models.training.early_stopping import EarlyStopping


def since_process_start() -> float | None:
    """Seconds since this process started (Linux: /proc, to 10 ms), or None elsewhere."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class RunningMetrics:
    """Sums of the training loss and correct predictions since the last row, on the device
    (no synchronising copy per step)."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss * len(y)
        self.correct += (logits.argmax(dim=1) == y).sum()
        self.count += len(y)

    def take(self) -> tuple[float, float]:
        """(mean loss, accuracy) since the last take; then start again."""
        out = self.loss.item() / self.count, self.correct.item() / self.count
        self.loss.zero_(), self.correct.zero_()
        self.count = 0
        return out


class DCNTrainer(Trainer):
    """One DCN run: data, model, optimizer and schedule, built and validated up front."""

    metric_columns = list(ORDER)
    resumable = True

    def __init__(self, cfg: dict[str, Any]):
        self.cfg, self.train_cfg = cfg, cfg["train"]
        self.device = resolve_device(self.train_cfg["device"])
        if self.device.type == "cpu":
            keep_freed_memory()  # a step's freed blocks serve the next (nnlab.models.allocator)
        else:  # the same convolution algorithms every time: a repeat gives the same numbers
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        self.precision = self.train_cfg["precision"]
        model_cfg = cfg["model"]
        self.data: ImageData = load_images(cfg)
        check_image_size(self.data.image_size, model_cfg["conv_channels"])
        torch.manual_seed(cfg["seed"])
        self.model = DCN(
            self.data.image_size,
            len(self.data.class_names),
            model_cfg["conv_channels"],
            model_cfg["kernel_size"],
            model_cfg["fc_units"],
            model_cfg["dropout"],
        )
        initialise(self.model, model_cfg["init"])
        self.model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, self.train_cfg)
        self.scheduler = make_scheduler(self.optimizer, self.train_cfg)
        self.shuffle = torch.Generator().manual_seed(cfg["seed"])
        self.epoch = self.step = 0
        self.resumed = False  # from a checkpoint: its run's files so far are kept
        self.rows: list[dict[str, float]] = []
        # training loop time without the evaluations, evaluation time, training images
        # seen: summed over every session of the run (they travel in the checkpoint)
        self.timing = {"train_seconds": 0.0, "eval_seconds": 0.0, "images": 0}
        self.startup_seconds: float | None = None
        self.test_predictions: tuple[int, torch.Tensor | None] = (-1, None)
        self.stopped = False  # a callback ended the run on purpose (StopRun)
        self.stopper = EarlyStopping.from_config(
            self.train_cfg, weights=self._weights, restore=self.model.load_state_dict
        )
        d = self.data
        self.X_train, self.y_train = d.X_train.to(self.device), d.y_train.to(self.device)
        self.X_val, self.y_val = d.X_val.to(self.device), d.y_val.to(self.device)
        self.X_test, self.y_test = d.X_test.to(self.device), d.y_test.to(self.device)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- one step, one evaluation --------------------------------------------------------------

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer update on a batch; returns the (detached) loss and logits."""
        with autocast(self.device, self.precision):
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def evaluate(self, row: dict[str, float]) -> None:
        """Add validation (when there is a split) and test loss and accuracy to ``row``;
        its time counts as evaluation, not training."""
        t0 = time.perf_counter()
        self._evaluate(row)
        self.timing["eval_seconds"] += time.perf_counter() - t0

    def _evaluate(self, row: dict[str, float]) -> None:
        if len(self.y_val):
            row["val_loss"], row["val_acc"] = evaluate(
                self.model, self.X_val, self.y_val, precision=self.precision
            )
        row["test_loss"], row["test_acc"], predicted = assess(
            self.model, self.X_test, self.y_test, precision=self.precision
        )
        # the confusion matrix reuses them while these weights are the model's (its step)
        self.test_predictions = (self.step, predicted)

    # -- the loop ------------------------------------------------------------------------------

    def batches(self) -> Iterator[tuple[int, torch.Tensor]]:
        """One epoch of shuffled batches: (index in the epoch, indices of its images)."""
        n, batch = len(self.y_train), self.train_cfg["batch_size"]
        perm = torch.randperm(n, generator=self.shuffle).to(self.device)
        for i in range(math.ceil(n / batch)):
            yield i, perm[i * batch : (i + 1) * batch]

    def fit(self, run_dir: Path, hooks: Hooks) -> None:
        """Train from the current epoch to the last, checkpointing at every epoch end."""
        cfg = self.train_cfg
        n = len(self.y_train)
        steps_per_epoch = math.ceil(n / cfg["batch_size"])
        callbacks = Callbacks(self._callbacks(run_dir, hooks))
        self.stopped = False
        timing = self.timing
        loop_start, eval_before, seen = time.perf_counter(), timing["eval_seconds"], 0
        try:
            self.model.train()
            callbacks.on_train_start()
            self.startup_seconds = since_process_start()  # this session's, to its first step
            while self.epoch < cfg["epochs"]:
                running = RunningMetrics(self.device)
                desc = f"epoch {self.epoch + 1}/{cfg['epochs']}"
                for i, idx in self.batches():
                    x, y = channels_last(self.X_train[idx]), self.y_train[idx]
                    self.step += 1
                    callbacks.on_step_start(self.step)
                    loss, logits = self.train_step(x, y)
                    running.add(loss, logits, y)
                    seen += len(y)
                    evaluate_now = i == steps_per_epoch - 1 or self.step % cfg["eval_every"] == 0
                    if evaluate_now or self.step % cfg["log_every"] == 0:
                        callbacks.on_row(self._row(running, evaluate_now))
                    callbacks.on_step_end(self.step)
                    done = min((i + 1) * cfg["batch_size"], n)
                    callbacks.on_progress(done, n, desc=desc, unit="img")
                self.scheduler.step()
                self.epoch += 1
                callbacks.on_epoch_end(self.epoch)
        except StopRun:
            self.stopped = True  # ended on purpose: its checkpoint has nothing left to resume
            raise
        finally:
            # the loop's time but its evaluations': steps, rows, progress, statistics and
            # checkpoints (their part on this thread) are what training costs
            loop = time.perf_counter() - loop_start
            timing["train_seconds"] += loop - (timing["eval_seconds"] - eval_before)
            timing["images"] += seen
            callbacks.on_train_end()

    def _row(self, running: RunningMetrics, evaluate_now: bool) -> dict[str, float]:
        """The metric row of this step, checked (and kept for the checkpoint)."""
        row = {
            "step": self.step,
            "epoch": self.epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        row["train_loss"], row["train_acc"] = running.take()
        if evaluate_now:
            self.evaluate(row)
        if not math.isfinite(row["train_loss"]):
            raise Diverged(self.step, "the training loss")
        self.rows.append(row)
        return row

    def _callbacks(self, run_dir: Path, hooks: Hooks) -> list[Callback | None]:
        """The loop's callbacks, in the order they hear of every event: layer statistics
        first (a step's are recorded whoever ends the run at its row), then the caller's
        hooks, TensorBoard, checkpoints, and early stopping, which restores the best weights
        at the end: however the run ends, model.pt holds them (a resume starts from
        checkpoint.pt, written at the last epoch end, not from these)."""
        cfg = self.train_cfg
        board = (
            TensorBoard(run_dir / "tb", first_step=self.step + 1) if cfg["tensorboard"] else None
        )
        if self.resumed:  # back to the checkpoint's step (a fresh one's: step 0's stay)
            truncate_csv(run_dir / "stats.csv", self.step)
        stats = None
        if cfg["stats_every"]:
            first = None  # a new run: the layer statistics of the initial weights too
            if not self.resumed:
                first = channels_last(self.X_train[: cfg["batch_size"]])
            writer = board.writer if board is not None else None
            stats = LayerStats(self.model, run_dir / "stats.csv", cfg["stats_every"], writer, first)
        checkpoints = Checkpoints(run_dir, self.state, fresh=self.epoch == 0)
        return [stats, hooks, board, checkpoints, self.stopper]

    # -- checkpoints ---------------------------------------------------------------------------

    def _weights(self) -> dict[str, torch.Tensor]:
        """A copy of the model's weights (early stopping keeps the best evaluation's)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to go on exactly where this one is."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "shuffle_rng": self.shuffle.get_state(),
            "rows": self.rows,
            "early_stopping": self.stopper.state_dict() if self.stopper else None,
            "best_model": self.stopper.best_weights if self.stopper else None,
            "timing": dict(self.timing),
        }

    def load_checkpoint(self, run_dir: Path) -> list[dict[str, float]]:
        """Restore everything saved at the last epoch end; return the metric rows so far."""
        path = run_dir / CHECKPOINT
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except FileNotFoundError:
            raise NnlabError(f"{run_dir}: no {CHECKPOINT}, so the run cannot be resumed") from None
        except Exception as exc:
            raise NnlabError(f"{path}: not a usable checkpoint: {exc}") from None
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.shuffle.set_state(state["shuffle_rng"])
        self.epoch, self.step, self.rows = state["epoch"], state["step"], state["rows"]
        self.resumed = True
        self.timing.update(state.get("timing") or {})
        if self.stopper is not None and state.get("early_stopping"):
            self.stopper.load_state_dict(state["early_stopping"])
            self.stopper.best_weights = state.get("best_model")
        return list(self.rows)

    # -- outputs -------------------------------------------------------------------------------

    def save_model(self, run_dir: Path) -> None:
        buffer = io.BytesIO()
        torch.save({k: v.contiguous().cpu() for k, v in self.model.state_dict().items()}, buffer)
        atomic_write_bytes(run_dir / "model.pt", buffer.getvalue())
        if self.epoch == self.train_cfg["epochs"] or self.stopped:  # nothing left to resume
            (run_dir / CHECKPOINT).unlink(missing_ok=True)

    def environment(self) -> dict[str, Any]:
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        return {"device": device, "precision": self.precision}

    def chance_accuracy(self) -> float | None:
        return majority_fraction(self.data.y_train.numpy())

    def summary_extra(self) -> dict[str, Any]:
        """The device, and the time split: ``train_seconds`` is the training loop without its
        evaluations (which ``eval_seconds`` counts), ``images_per_second`` the training images
        over it, ``startup_seconds`` the time from the process's start to the first step."""
        t = self.timing
        extra: dict[str, Any] = {
            "device": str(self.device),
            "train_seconds": round(t["train_seconds"], 4),
            "eval_seconds": round(t["eval_seconds"], 4),
            "images_per_second": (
                round(t["images"] / t["train_seconds"], 1) if t["train_seconds"] > 0 else None
            ),
            "startup_seconds": (
                None if self.startup_seconds is None else round(self.startup_seconds, 3)
            ),
        }
        if self.stopper is not None:
            extra["early_stopping"] = self.stopper.summary()
        return extra

    def _test_predictions(self) -> torch.Tensor:
        """The model's classes for the test images: the last evaluation's when the weights
        are still those it saw (the run ended on it, no best weights restored), else anew."""
        step, predicted = self.test_predictions
        restored = self.stopper is not None and self.stopper.best_weights is not None
        if predicted is not None and step == self.step and not restored:
            return predicted
        return predict(self.model, self.X_test, precision=self.precision)

    def load_model(self, run_dir: Path) -> None:
        state = torch.load(run_dir / "model.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state)

    @classmethod
    def sweep_figures(
        cls, groups: list[tuple[str, list[Path]]], out: Path, ext: str, title: str
    ) -> list[Path]:
        """The layer statistics by group (layer_stats_groups: weights' and net inputs'
        spread, a panel per layer) and the saved models' weight distributions
        (weight_histograms)."""
        made = [
            sweep_layer_stats(
                [(label, [f / "stats.csv" for f in folders]) for label, folders in groups],
                out / f"layer_stats_groups.{ext}",
                title,
            ),
            weight_histograms(groups, out / f"weight_histograms.{ext}", title),
        ]
        return [p for p in made if p is not None]

    def figures(
        self, rows: list[dict[str, float]], out_dir: Path, run_dir: Path, ext: str = "png"
    ) -> list[Path]:
        """Loss and accuracy curves, the test confusion matrix, the layer statistics."""
        name = (
            f"{self.cfg['name']}: DCN {self.cfg['model']['conv_channels']} "
            f"{self.cfg['train']['optimizer']}"
        )
        made = [
            plots.loss_curve(rows, out_dir / f"loss.{ext}", name),
            plots.accuracy_curve(rows, out_dir / f"accuracy.{ext}", name),
            plots.confusion_matrix(
                self.data.y_test.numpy(),
                self._test_predictions().numpy(),
                self.data.class_names,
                out_dir / f"confusion_matrix.{ext}",
                name,
            ),
        ]
        if (run_dir / "stats.csv").exists():
            made.append(layer_stats(run_dir / "stats.csv", out_dir / f"layer_stats.{ext}", name))
        return [p for p in made if p is not None]
