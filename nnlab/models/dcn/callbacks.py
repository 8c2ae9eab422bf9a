"""What happens around the DCN's training loop, as small callbacks beside it.

The loop (:meth:`nnlab.models.dcn.trainer.DCNTrainer.fit`) calls, for every callback:
``forward(step)`` — a context for the step's forward pass; ``step_end(step)`` after the
optimizer step; ``row(row, step)`` for every metric row; ``epoch_end(epoch)``; ``close()`` at
the end, however the loop ended.
"""

from __future__ import annotations

import copy
import csv
import io
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nnlab.common.files import atomic_write_bytes, atomic_write_text
from nnlab.common.metrics import COUNTERS
from nnlab.common.yamlread import read_file

STATS_BYTES = 256 * 2**20  # as nnlab.runfolder.records bounds what it reads back

if TYPE_CHECKING:
    from nnlab.models.dcn.trainer import DCNTrainer

STAT_COLUMNS = ["step", "layer", "quantity", "min", "max", "mean", "std"]
CHECKPOINT = "checkpoint.pt"
BUCKETS = 30  # of each layer statistic's TensorBoard histogram
HISTOGRAM_VALUES = 2**18  # a larger tensor's histogram counts every k-th value (scaled)


class Callback:
    """A no-op for every event; subclasses override what they need."""

    def begin(self, x: torch.Tensor) -> None:
        """Before the first step of a new run (not a resumed one), given a training batch."""

    def forward(self, step: int) -> AbstractContextManager:
        return nullcontext()

    def step_end(self, step: int) -> None:
        pass

    def row(self, row: dict[str, float], step: int) -> None:
        pass

    def epoch_end(self, epoch: int) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoard(Callback):
    """Metric rows to TensorBoard under ``metrics/``; the writer is shared with LayerStats."""

    def __init__(self, log_dir: Path, first_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=first_step)

    def row(self, row: dict[str, float], step: int) -> None:
        for key, value in row.items():
            if key not in COUNTERS:
                self.writer.add_scalar(f"metrics/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


class LayerStats(Callback):
    """At step 0 and every ``every`` steps: min, max, mean, std of each layer's weights,
    biases, net inputs (pre-activation), ReLU activations and max-pool outputs — to stats.csv
    and, with a writer, to TensorBoard as scalars and histograms."""

    def __init__(self, model: nn.Module, csv_path: Path, every: int, writer: Any = None):
        self.model, self.every, self.writer = model, every, writer
        self._outputs: dict[tuple[str, str], torch.Tensor] = {}
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

    def begin(self, x: torch.Tensor) -> None:
        """Step 0: the initial weights — where the initialisation shows — and the layers'
        outputs for ``x``, in eval mode: no dropout, so no random numbers are drawn and
        training goes on exactly as it would without this."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self.capture():
                self.model(x)
        finally:
            self.model.train(was_training)
        self.record(0)
        self.flush()

    def forward(self, step: int) -> AbstractContextManager:
        return self.capture() if step % self.every == 0 else nullcontext()

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Keep the outputs of every named layer during one forward pass."""
        handles = []
        for name, module in self.model.named_children():
            role = self._role(name)
            if role is not None:
                handles.append(
                    module.register_forward_hook(
                        lambda _m, _i, out, role=role: self._outputs.__setitem__(role, out.detach())
                    )
                )
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def step_end(self, step: int) -> None:
        if step % self.every == 0:
            self.record(step)

    def record(self, step: int) -> None:
        """Compute the step's statistics where the tensors are — min, max, mean, std, the sum
        of squares and a 30-bucket histogram of each — and keep them there: they are copied
        off the device together, at the next metric row (:meth:`flush`), not once per
        statistic (each copy would wait for the device)."""
        tensors: dict[tuple[str, str], torch.Tensor] = {}
        for name, module in self.model.named_children():
            if isinstance(module, nn.Conv2d | nn.Linear):
                tensors[(name, "weights")] = module.weight.detach()
                tensors[(name, "biases")] = module.bias.detach()
        tensors.update(self._outputs)
        self._outputs = {}
        keys = sorted(tensors, key=lambda k: (k[0], k[1]))
        values = [tensors[k].float() for k in keys]
        stats = torch.stack([_summary(t) for t in values])
        histograms = torch.stack([_histogram(t) for t in values])
        self._pending.append((step, keys, [t.numel() for t in values], stats, histograms))

    def flush(self) -> None:
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

    def row(self, row: dict[str, float], step: int) -> None:
        self.flush()

    def epoch_end(self, epoch: int) -> None:
        self.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


class Checkpoints(Callback):
    """checkpoint.pt at the start of a fresh run (so an interruption in the first epoch can
    resume too) and at every epoch end, written atomically — off the training thread: the
    state is copied (a snapshot of that moment), then serialised and written by a thread
    while training goes on. The next save, and the end of the run, wait for the last write;
    a write that failed raises there."""

    def __init__(self, trainer: DCNTrainer, run_dir: Path):
        self.trainer, self.path = trainer, run_dir / CHECKPOINT
        self._writer: threading.Thread | None = None
        self._failed: BaseException | None = None
        if trainer.epoch == 0:
            self.save()

    def epoch_end(self, epoch: int) -> None:
        self.save()

    def save(self) -> None:
        self.wait()
        snapshot = copy.deepcopy(self.trainer.state())  # tensors cloned: training goes on
        self._writer = threading.Thread(target=self._write, args=(snapshot,), daemon=True,
                                        name="nnlab-checkpoint")  # fmt: skip
        self._writer.start()

    def _write(self, state: dict[str, Any]) -> None:
        try:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(self.path, buffer.getvalue())
        except BaseException as exc:  # raised on the training thread, at the next wait
            self._failed = exc

    def wait(self) -> None:
        """Wait for the checkpoint being written; raise what stopped it, if anything did."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def close(self) -> None:
        self.wait()


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
    text = read_file(path, str(path), STATS_BYTES).decode("utf-8")  # no FIFO, no device
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    atomic_write_text(path, out.getvalue())
