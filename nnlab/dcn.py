"""The PyTorch deep convolutional network (DCN) on MNIST-format images.

Read it like pytorch/examples' mnist: the model (:class:`DCN`), one training step, one
evaluation (:func:`evaluate`), the loop (:meth:`DCNJob.fit`); layer statistics, checkpoints and
TensorBoard are small hooks beside the loop.

Steps count optimizer updates done, from 1. A training row is logged every ``log_every`` steps
with the mean cross-entropy and accuracy of the batches since the previous row; validation and
test metrics join the row every ``eval_every`` steps and at the end of every epoch. The loss is
the cross-entropy alone: weight decay (``reg_lambda``) is applied by the optimizer.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nnlab.errors import ConfigError, DataError, Diverged, NnlabError
from nnlab.images import ImageData, load_images

METRIC_COLUMNS = ["step", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                  "test_loss", "test_acc"]  # fmt: skip
STAT_COLUMNS = ["step", "layer", "quantity", "min", "max", "mean", "std"]
CHECKPOINT = "checkpoint.pt"
EVAL_BATCH = 1000


class DCN(nn.Sequential):
    """conv → ReLU → max-pool 2, once per entry of ``conv_channels``, then fc → ReLU → dropout
    → fc. Modules are named so that statistics can say which layer they describe: conv1,
    conv1_relu, conv1_pool, ..., fc1, fc1_relu, dropout, fc2."""

    def __init__(
        self,
        image_size: tuple[int, int],
        n_classes: int,
        conv_channels: list[int],
        kernel_size: int,
        fc_units: int,
        dropout: float,
    ):
        layers: list[tuple[str, nn.Module]] = []
        c_in, (h, w) = 1, image_size
        for i, c_out in enumerate(conv_channels, start=1):
            layers += [
                (f"conv{i}", nn.Conv2d(c_in, c_out, kernel_size, padding="same")),
                (f"conv{i}_relu", nn.ReLU()),
                (f"conv{i}_pool", nn.MaxPool2d(2)),
            ]
            c_in, h, w = c_out, h // 2, w // 2
        layers += [
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(c_in * h * w, fc_units)),
            ("fc1_relu", nn.ReLU()),
            ("dropout", nn.Dropout(dropout)),
            ("fc2", nn.Linear(fc_units, n_classes)),
        ]
        super().__init__(OrderedDict(layers))


def check_image_size(image_size: tuple[int, int], conv_channels: list[int]) -> None:
    """Each stage halves the image; refuse images too small for the stages asked for."""
    need = 2 ** len(conv_channels)
    if min(image_size) < need:
        raise DataError(
            f"images are {image_size[0]}x{image_size[1]} but model.conv_channels has "
            f"{len(conv_channels)} conv + max-pool stages, which need images of at least "
            f"{need}x{need}; use fewer stages"
        )


def initialise(model: nn.Module, init: str) -> None:
    """xavier: Glorot uniform weights; he: Kaiming normal (fan_in, ReLU); biases zero.
    default keeps PyTorch's own initialisation."""
    if init == "default":
        return
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            if init == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


def make_optimizer(model: nn.Module, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam, with weight decay ``reg_lambda``. The fused kernels update
    each parameter in one pass over memory; fc1's 3.2M weights make that worth ~20% a step."""
    lr, wd = train_cfg["epsilon"], train_cfg["reg_lambda"]
    if train_cfg["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, fused=True)
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=train_cfg["momentum"], weight_decay=wd, fused=True
    )


def autocast(device: torch.device, precision: str):
    """bfloat16 mixed precision for the forward pass when asked; float32 leaves it off."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def make_scheduler(optimizer: torch.optim.Optimizer, train_cfg: dict[str, Any]):
    """The learning-rate schedule, stepped once per epoch."""
    decay = train_cfg["lr_decay"]
    kind, gamma = decay["kind"], decay["gamma"]
    sched = torch.optim.lr_scheduler
    if kind == "step":
        return sched.StepLR(optimizer, step_size=decay["step_size"], gamma=gamma)
    if kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=gamma)
    if kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=train_cfg["epochs"])
    return sched.LambdaLR(optimizer, lambda epoch: 1.0)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device is cuda but CUDA is not available here (torch {torch.__version__}, "
            f"{torch.cuda.device_count()} GPUs visible); use device: cpu or auto"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch: int = EVAL_BATCH,
    precision: str = "float32",
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a whole split, in large batches, without grad."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    for i in range(0, len(y), batch):
        with autocast(X.device, precision):
            logits = model(_channels_last(X[i : i + batch])).float()
        loss_sum += F.cross_entropy(logits, y[i : i + batch], reduction="sum")
        correct += (logits.argmax(dim=1) == y[i : i + batch]).sum()
    model.train(was_training)
    n = max(len(y), 1)
    return loss_sum.item() / n, correct.item() / n


@torch.no_grad()
def predict(
    model: nn.Module, X: torch.Tensor, batch: int = EVAL_BATCH, precision: str = "float32"
) -> torch.Tensor:
    model.eval()
    with autocast(X.device, precision):
        return torch.cat(
            [
                model(_channels_last(X[i : i + batch])).argmax(dim=1).cpu()
                for i in range(0, len(X), batch)
            ]
        )


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    # oneDNN's convolutions run markedly faster on NHWC than NCHW on the CPU.
    return x.contiguous(memory_format=torch.channels_last)


class LayerStats:
    """Every ``stats_every`` steps: min, max, mean, std of each layer's weights, biases, net
    inputs (pre-activation), ReLU activations and max-pool outputs — to stats.csv and, with a
    writer, to TensorBoard as scalars and histograms."""

    def __init__(self, model: nn.Module, csv_path: Path, writer=None):
        self.model, self.writer = model, writer
        self.path = csv_path
        self._outputs: dict[tuple[str, str], torch.Tensor] = {}
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

    def record(self, step: int) -> None:
        tensors: dict[tuple[str, str], torch.Tensor] = {}
        for name, module in self.model.named_children():
            if isinstance(module, nn.Conv2d | nn.Linear):
                tensors[(name, "weights")] = module.weight.detach()
                tensors[(name, "biases")] = module.bias.detach()
        tensors.update(self._outputs)
        self._outputs = {}
        keys = sorted(tensors, key=lambda k: (k[0], k[1]))
        summary = (
            torch.stack(
                [
                    torch.stack(
                        [t.min(), t.max(), t.mean(), t.std() if t.numel() > 1 else t.new_zeros(())]
                    )
                    for t in (tensors[k].float() for k in keys)
                ]
            )
            .cpu()
            .tolist()
        )
        for (layer, quantity), values in zip(keys, summary, strict=True):
            self._csv.writerow([step, layer, quantity, *map(repr, values)])
            if self.writer is not None:
                for stat, value in zip(("min", "max", "mean", "std"), values, strict=True):
                    self.writer.add_scalar(f"{layer}/{quantity}/{stat}", value, step)
                self.writer.add_histogram(f"{layer}/{quantity}", tensors[(layer, quantity)], step)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the rows whose first column (step) is ≤ last_step."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)


class DCNJob:
    """One DCN run: data, model, optimizer and schedule, built and validated up front."""

    metric_columns = METRIC_COLUMNS

    def __init__(self, cfg: dict[str, Any]):
        self.cfg, self.train_cfg = cfg, cfg["train"]
        self.device = resolve_device(self.train_cfg["device"])
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
        self.rows: list[dict[str, float]] = []
        self.images_per_second: float | None = None
        d = self.data
        self.X_train, self.y_train = d.X_train.to(self.device), d.y_train.to(self.device)
        self.X_val, self.y_val = d.X_val.to(self.device), d.y_val.to(self.device)
        self.X_test, self.y_test = d.X_test.to(self.device), d.y_test.to(self.device)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def autocast(self):
        return autocast(self.device, self.precision)

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self, run_dir: Path) -> None:
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "shuffle_rng": self.shuffle.get_state(),
            "rows": self.rows,
        }
        tmp = run_dir / f".{CHECKPOINT}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, run_dir / CHECKPOINT)

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
        return list(self.rows)

    # -- the loop ------------------------------------------------------------------------------

    def fit(
        self,
        run_dir: Path,
        on_row: Callable[[dict], None],
        progress: Callable[..., None] | None = None,
    ) -> None:
        """Train from the current epoch to the last, checkpointing at every epoch end."""
        cfg = self.train_cfg
        writer = None
        if cfg["tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"), purge_step=self.step + 1)
        if self.step > 0:
            truncate_csv(run_dir / "stats.csv", self.step)
        stats = None
        if cfg["stats_every"]:
            stats = LayerStats(self.model, run_dir / "stats.csv", writer)
        if self.epoch == 0:
            self.save_checkpoint(run_dir)  # an interruption in the first epoch can resume too
        n, batch = len(self.y_train), cfg["batch_size"]
        steps_per_epoch = math.ceil(n / batch)
        seen, t_train = 0, 0.0

        def log(row: dict[str, float]) -> None:
            if not math.isfinite(row["train_loss"]):
                raise Diverged(self.step, "the training loss")
            self.rows.append(row)
            on_row(row)
            if writer is not None:
                for key, value in row.items():
                    if key not in ("step", "epoch"):
                        writer.add_scalar(f"metrics/{key}", value, self.step)

        try:
            self.model.train()
            while self.epoch < cfg["epochs"]:
                perm = torch.randperm(n, generator=self.shuffle).to(self.device)
                loss_sum = torch.zeros((), device=self.device)
                correct = torch.zeros((), device=self.device, dtype=torch.long)
                count = 0
                for i in range(steps_per_epoch):
                    t0 = time.perf_counter()
                    idx = perm[i * batch : (i + 1) * batch]
                    x, y = _channels_last(self.X_train[idx]), self.y_train[idx]
                    self.step += 1
                    record = stats is not None and self.step % cfg["stats_every"] == 0
                    with stats.capture() if record else nullcontext(), self.autocast():
                        logits = self.model(x)
                    loss = F.cross_entropy(logits.float(), y)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    loss_sum += loss.detach() * len(y)
                    correct += (logits.detach().argmax(dim=1) == y).sum()
                    count += len(y)
                    t_train += time.perf_counter() - t0
                    seen += len(y)
                    if record:
                        stats.record(self.step)
                    epoch_end = i == steps_per_epoch - 1
                    evaluate_now = epoch_end or self.step % cfg["eval_every"] == 0
                    if evaluate_now or self.step % cfg["log_every"] == 0:
                        row = {
                            "step": self.step,
                            "epoch": self.epoch + 1,
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "train_loss": loss_sum.item() / count,
                            "train_acc": correct.item() / count,
                        }
                        loss_sum.zero_(), correct.zero_()
                        count = 0
                        if evaluate_now:
                            if len(self.y_val):
                                row["val_loss"], row["val_acc"] = evaluate(
                                    self.model, self.X_val, self.y_val, precision=self.precision
                                )
                            row["test_loss"], row["test_acc"] = evaluate(
                                self.model, self.X_test, self.y_test, precision=self.precision
                            )
                        log(row)
                    if progress is not None:
                        progress(
                            min((i + 1) * batch, n),
                            n,
                            desc=f"epoch {self.epoch + 1}/{cfg['epochs']}",
                            unit="img",
                        )
                self.scheduler.step()
                self.epoch += 1
                self.save_checkpoint(run_dir)
        finally:
            self.images_per_second = seen / t_train if t_train > 0 else None
            if stats is not None:
                stats.close()
            if writer is not None:
                writer.close()

    # -- outputs -------------------------------------------------------------------------------

    def save_model(self, run_dir: Path) -> None:
        tmp = run_dir / ".model.pt.tmp"
        torch.save({k: v.contiguous().cpu() for k, v in self.model.state_dict().items()}, tmp)
        os.replace(tmp, run_dir / "model.pt")
        if self.epoch == self.train_cfg["epochs"]:  # finished: nothing left to resume
            (run_dir / CHECKPOINT).unlink(missing_ok=True)

    def extra_summary(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "train_images_per_second": None
            if self.images_per_second is None
            else round(self.images_per_second, 1),
        }

    def load_model(self, run_dir: Path) -> None:
        """Take the trained weights from a finished run's model.pt."""
        state = torch.load(run_dir / "model.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state)

    def render_plots(
        self, rows: list[dict], out_dir: Path, run_dir: Path, ext: str = "png"
    ) -> list[Path]:
        from nnlab import plots

        name = (
            f"{self.cfg['name']}: DCN {self.cfg['model']['conv_channels']} "
            f"{self.cfg['train']['optimizer']}"
        )
        made = [
            plots.loss_curve(rows, out_dir / f"loss.{ext}", name),
            plots.accuracy_curve(rows, out_dir / f"accuracy.{ext}", name),
            plots.confusion_matrix(
                self.data.y_test.numpy(),
                predict(self.model, self.X_test, precision=self.precision).numpy(),
                self.data.class_names,
                out_dir / f"confusion_matrix.{ext}",
                name,
            ),
        ]
        if (run_dir / "stats.csv").exists():
            made.append(
                plots.layer_stats(run_dir / "stats.csv", out_dir / f"layer_stats.{ext}", name)
            )
        return [p for p in made if p is not None]
