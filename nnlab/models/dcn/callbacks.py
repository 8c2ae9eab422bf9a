"""What happens around the DCN's training loop, as small callbacks beside it — layer
statistics, TensorBoard, checkpoints — in the one vocabulary of
:class:`nnlab.models.training.callbacks.Callback`.
"""

from __future__ import annotations

import copy
import csv
import io
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnlab.common.csvtable import MAX_BYTES, STAT_COLUMNS
from nnlab.common.files import atomic_write_bytes, atomic_write_text
from nnlab.common.metrics import COUNTERS
from nnlab.common.signals import HeldSignals
from nnlab.common.yamlread import read_file
from nnlab.models.training.callbacks import Callback

CHECKPOINT = "checkpoint.pt"
BUCKETS = 30  # of each layer statistic's TensorBoard histogram
HISTOGRAM_VALUES = 2**18  # a larger tensor's histogram counts every k-th value (scaled)


class TensorBoard(Callback):
    """Metric rows to TensorBoard under ``metrics/``; the writer is shared with LayerStats."""

    def __init__(self, log_dir: Path, first_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=first_step)

    def on_row(self, row: dict[str, float]) -> None:
        for key, value in row.items():
            if key not in COUNTERS:
                self.writer.add_scalar(f"metrics/{key}", value, row["step"])

    def on_train_end(self) -> None:
        self.writer.close()


class LayerStats(Callback):
    """At step 0 and every ``every`` steps: min, max, mean, std of each layer's weights,
    biases, net inputs (pre-activation), ReLU activations and max-pool outputs — to stats.csv
    and, with a writer (a TensorBoard's, which must close after this), to TensorBoard as
    scalars and histograms.

    Listed first among the loop's callbacks: a step's statistics are recorded at its row, or
    after it, before any other callback can end the run. ``first`` (a training batch) asks
    for step 0's, the initial weights', when training starts.
    """

    def __init__(
        self,
        model: nn.Module,
        csv_path: Path,
        every: int,
        writer: Any = None,
        first: torch.Tensor | None = None,
    ):
        self.model, self.every, self.writer, self.first = model, every, writer, first
        self._outputs: dict[tuple[str, str], torch.Tensor] = {}
        self._hooks: dict[tuple[str, str], Any] = {}  # capturing the next forward pass
        self._recorded = -1  # the last step recorded
        self._pending: list[tuple] = []  # statistics computed, not yet written
        self._file = open(csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._file)
        if csv_path.stat().st_size == 0:
            self._csv.writerow(STAT_COLUMNS)

    @staticmethod
    def _role(name: str) -> tuple[str, str] | None:
        """Module name → (layer, quantity) of its output, e.g. conv1_pool → (conv1, pool)."""
        if name.startswith(("conv", "fc")):
            layer, _, suffix = name.partition("_")
            return layer, {"": "net_input", "relu": "activation", "pool": "pool"}[suffix]
        return None

    def on_train_start(self) -> None:
        """Step 0: the initial weights — where the initialisation shows — and the layers'
        outputs for the batch ``first``, in eval mode: no dropout, so no random numbers are
        drawn and training goes on exactly as it would without this."""
        if self.first is None:
            return
        was_training = self.model.training
        self.model.eval()
        try:
            self._capture()
            with torch.no_grad():
                self.model(self.first)
        finally:
            self._release()
            self.model.train(was_training)
        self._record(0)
        self._flush()

    def on_step_start(self, step: int) -> None:
        if step % self.every == 0:
            self._capture()

    def _capture(self) -> None:
        """Keep the output of every named layer in the next forward pass, once (each hook
        removes itself: the evaluations after the step are not captured)."""
        for name, module in self.model.named_children():
            role = self._role(name)
            if role is not None:
                self._hooks[role] = module.register_forward_hook(partial(self._keep, role))

    def _keep(self, role: tuple[str, str], _module: nn.Module, _input: Any, out: Any) -> None:
        self._outputs[role] = out.detach()
        self._hooks.pop(role).remove()

    def _release(self) -> None:
        for handle in self._hooks.values():
            handle.remove()
        self._hooks = {}

    def on_row(self, row: dict[str, float]) -> None:
        self.on_step_end(int(row["step"]))
        self._flush()

    def on_step_end(self, step: int) -> None:
        if step % self.every == 0 and step != self._recorded:
            self._record(step)

    def _record(self, step: int) -> None:
        """Compute the step's statistics where the tensors are — min, max, mean, std, the sum
        of squares and a 30-bucket histogram of each — and keep them there: they are copied
        off the device together, at the next metric row (:meth:`_flush`), not once per
        statistic (each copy would wait for the device)."""
        tensors: dict[tuple[str, str], torch.Tensor] = {}
        for name, module in self.model.named_children():
            if isinstance(module, nn.Conv2d | nn.Linear):
                tensors[(name, "weights")] = module.weight.detach()
                tensors[(name, "biases")] = module.bias.detach()
        tensors.update(self._outputs)
        self._outputs, self._recorded = {}, step
        keys = sorted(tensors, key=lambda k: (k[0], k[1]))
        values = [tensors[k].float() for k in keys]
        stats = torch.stack([_summary(t) for t in values])
        histograms = torch.stack([_histogram(t) for t in values])
        self._pending.append((step, keys, [t.numel() for t in values], stats, histograms))

    def _flush(self) -> None:
        """Write the statistics kept since the last flush: to stats.csv and TensorBoard."""
        for step, keys, sizes, stats, histograms in self._pending:
            rows, counts = stats.cpu().tolist(), histograms.cpu().tolist()
            for (layer, quantity), n, row, count in zip(keys, sizes, rows, counts, strict=True):
                low, high, mean, std, squares = row
                self._csv.writerow([step, layer, quantity, *map(repr, (low, high, mean, std))])
                if self.writer is None:
                    continue
                for stat, value in zip(("min", "max", "mean", "std"), row, strict=False):
                    self.writer.add_scalar(f"{layer}/{quantity}/{stat}", value, step)
                if low == high:  # as torch.histc spreads a constant tensor's buckets
                    low, high = low - 1, high + 1
                width = (high - low) / BUCKETS
                self.writer.add_histogram_raw(
                    f"{layer}/{quantity}", low, high, n, mean * n, squares,
                    [low + width * (i + 1) for i in range(BUCKETS)], count, step,
                )  # fmt: skip
        self._pending = []
        self._file.flush()

    def on_epoch_end(self, epoch: int) -> None:
        self._flush()

    def on_train_end(self) -> None:
        self._release()
        self._flush()
        self._file.close()


class Checkpoints(Callback):
    """checkpoint.pt at the start of a fresh run (``fresh``: so an interruption in the first
    epoch can resume too) and at every epoch end, written atomically — off the training
    thread: ``state()`` is copied (a snapshot of that moment), then serialised and written by
    a thread while training goes on. The next save, and the end of the run, wait for the last
    write; a write that failed raises there."""

    def __init__(self, run_dir: Path, state: Callable[[], dict[str, Any]], fresh: bool):
        self.path, self.state, self.fresh = run_dir / CHECKPOINT, state, fresh
        self._writer: threading.Thread | None = None
        self._failed: BaseException | None = None

    def on_train_start(self) -> None:
        if self.fresh:
            self._save()

    def on_epoch_end(self, epoch: int) -> None:
        self._save()

    def _save(self) -> None:
        self._wait()
        snapshot = copy.deepcopy(self.state())  # tensors cloned: training goes on
        writer = threading.Thread(target=self._write, args=(snapshot,), daemon=True,
                                  name="nnlab-checkpoint")  # fmt: skip
        # Ctrl-C inside start() could leave a thread that runs but cannot be joined yet
        # ("cannot join thread before it is started"): the signal waits until it is ours
        with HeldSignals():
            writer.start()
            self._writer = writer

    def _write(self, state: dict[str, Any]) -> None:
        try:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(self.path, buffer.getvalue())
        except BaseException as exc:  # raised on the training thread, at the next wait
            self._failed = exc

    def _wait(self) -> None:
        """Wait for the checkpoint being written; raise what stopped it, if anything did."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def on_train_end(self) -> None:
        self._wait()


def _summary(t: torch.Tensor) -> torch.Tensor:
    """min, max, mean, std (n - 1) and the sum of squares of ``t``."""
    low, high = torch.aminmax(t)
    std = t.std() if t.numel() > 1 else t.new_zeros(())
    return torch.stack([low, high, t.mean(), std, t.square().sum()])


def _histogram(t: torch.Tensor) -> torch.Tensor:
    """BUCKETS counts over [min, max] of ``t`` — of every k-th value, scaled by k, when it
    holds more than HISTOGRAM_VALUES (torch.histc makes one slow pass: 24 ms for fc1's 3.2M
    weights, a quarter of a training step here); min, max, mean, std are always exact."""
    flat = t.reshape(-1)
    k = -(-flat.numel() // HISTOGRAM_VALUES)  # ceil
    if k == 1:
        return torch.histc(flat, bins=BUCKETS)
    low, high = torch.aminmax(flat)
    counts = torch.histc(flat[::k], bins=BUCKETS, min=low.item(), max=high.item())
    return counts * (flat.numel() / counts.sum())


def truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the rows whose first column (step) is ≤ last_step."""
    if not path.exists():
        return
    text = read_file(path, str(path), MAX_BYTES).decode("utf-8")  # no FIFO, no device
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    atomic_write_text(path, out.getvalue())
