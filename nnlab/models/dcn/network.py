"""The DCN itself: the network, its initialisation, optimizer, schedule, device and evaluation.

conv → ReLU → max-pool 2 per entry of ``model.conv_channels``, then fc → ReLU → dropout → fc
(docs/models.md, 'The DCN').
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nnlab.errors import ConfigError, DataError

# Images per forward pass when evaluating. On the CPU a batch of 100 runs about twice as fast
# per image as one of 1,000, whose activations (1000 x 32 x 28 x 28 floats after conv1: 100 MB)
# fall out of the caches (measured on 2 cores of an AMD EPYC, 2026-12-03: ~4,000 against
# ~2,300 images/s); a GPU wants large batches.
EVAL_BATCH = {"cpu": 100, "cuda": 1000}


# The loss is summed over chunks of 1,000 images whatever the forward batch — as nnlab always
# summed it — so that the metrics stay the same to the last bit.
SUM_CHUNK = 1000


def eval_batch(device: torch.device) -> int:
    return EVAL_BATCH.get(device.type, 1000)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layers in order, except that each conv stage pools before its ReLU where no
        hook watches the two (the layer statistics' steps keep the written order, so that
        'activation' is still the ReLU's whole map). max-pool and ReLU commute exactly — both
        are monotone, and ReLU's gradient is 0 wherever the window's maximum is <= 0 either
        way — so values and gradients are the same to the bit, with the ReLU and its backward
        pass over a quarter of the elements."""
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            if (
                isinstance(module, nn.ReLU)
                and isinstance(nxt, nn.MaxPool2d)
                and not (_watched(module) or _watched(nxt))
            ):
                x = module(nxt(x))
                i += 2
                continue
            x = module(x)
            i += 1
        return x


def _watched(module: nn.Module) -> bool:
    """Whether any hook — the module's own, forward or backward, or a global one — would see
    the order its layers run in."""
    own = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    kinds = ("forward_hooks", "forward_pre_hooks", "backward_hooks", "backward_pre_hooks")
    return any(getattr(module, name, None) for name in own) or any(
        getattr(torch.nn.modules.module, f"_global_{kind}", None) for kind in kinds
    )


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
    cfg = train_cfg
    lr, wd = cfg["epsilon"], cfg["reg_lambda"]
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(
            model.parameters(),
            lr=lr,
            betas=(cfg["beta1"], cfg["beta2"]),
            eps=cfg["adam_eps"],
            weight_decay=wd,
            fused=True,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=lr,
        momentum=cfg["momentum"],
        nesterov=cfg["nesterov"],
        weight_decay=wd,
        fused=True,
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


def _logits(
    model: nn.Module, X: torch.Tensor, batch: int | None, precision: str
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(start, end, float32 logits) of each chunk of SUM_CHUNK images, the model in eval mode,
    forward passes of ``batch`` images (the device's default when None)."""
    batch = batch or eval_batch(X.device)
    model.eval()
    forward = _inference_forward(model, precision)
    for start in range(0, len(X), SUM_CHUNK):
        end = min(start + SUM_CHUNK, len(X))
        parts = [
            forward(channels_last(X[i : min(i + batch, end)])) for i in range(start, end, batch)
        ]
        yield start, end, torch.cat(parts).float()


def _inference_forward(model: nn.Module, precision: str):
    """The forward pass of an evaluation. float32: the model itself. bfloat16: the model
    with its parameters cast to bfloat16 once for the whole evaluation. Autocast does the
    same arithmetic — it casts each conv's and linear's input, weights and bias to bfloat16
    and computes in bfloat16, and ReLU, max-pool and flatten keep their input's type — so
    the logits are the same to the bit (tests/models/test_dcn.py), without casting fc1's
    3.2M weights again for every batch, which took most of a bfloat16 evaluation's time."""
    if precision != "bfloat16":
        return model
    params = {name: p.to(torch.bfloat16) for name, p in model.named_parameters()}
    return lambda x: torch.func.functional_call(model, params, (x.to(torch.bfloat16),))


@torch.inference_mode()
def assess(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch: int | None = None,
    precision: str = "float32",
) -> tuple[float, float, torch.Tensor]:
    """(mean cross-entropy, accuracy, predicted classes on the CPU) over a whole split, in
    batches, in inference mode; the model's train/eval mode is left as it was."""
    was_training = model.training
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    predicted = []
    for start, end, logits in _logits(model, X, batch, precision):
        loss_sum += F.cross_entropy(logits, y[start:end], reduction="sum")
        predicted.append(logits.argmax(dim=1))
        correct += (predicted[-1] == y[start:end]).sum()
    model.train(was_training)
    n = max(len(y), 1)
    classes = torch.cat(predicted).cpu() if predicted else torch.zeros(0, dtype=torch.long)
    return loss_sum.item() / n, correct.item() / n, classes


def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch: int | None = None,
    precision: str = "float32",
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a whole split: :func:`assess` without the classes."""
    loss, accuracy, _ = assess(model, X, y, batch, precision)
    return loss, accuracy


@torch.inference_mode()
def predict(
    model: nn.Module, X: torch.Tensor, batch: int | None = None, precision: str = "float32"
) -> torch.Tensor:
    """The predicted classes of ``X``, on the CPU (the model left in eval mode)."""
    return torch.cat(
        [logits.argmax(dim=1).cpu() for _, _, logits in _logits(model, X, batch, precision)]
        or [torch.zeros(0, dtype=torch.long)]
    )


def channels_last(x: torch.Tensor) -> torch.Tensor:
    # oneDNN's convolutions run markedly faster on NHWC than NCHW on the CPU.
    return x.contiguous(memory_format=torch.channels_last)
