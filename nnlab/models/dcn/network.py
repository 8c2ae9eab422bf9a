"""The DCN itself: the network, its initialisation, optimizer, schedule, device and evaluation.

conv → ReLU → max-pool 2 per entry of ``model.conv_channels``, then fc → ReLU → dropout → fc
(docs/models.md, 'The DCN').
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
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
    """(start, end, float32 logits) of each chunk of SUM_CHUNK images, the model in eval mode:
    the conv stages in forward passes of ``batch`` images (the device's default when None),
    the layers after them over the whole chunk (:class:`_Inference`)."""
    batch = batch or eval_batch(X.device)
    model.eval()
    infer = _Inference(model, precision)
    for start in range(0, len(X), SUM_CHUNK):
        end = min(start + SUM_CHUNK, len(X))
        yield start, end, infer(X[start:end], batch).float()


class _Inference:
    """The forward pass of an evaluation, with the same logits as the model's own forward
    (tests/models/test_dcn.py), faster:

    - bfloat16: the parameters are cast to bfloat16 once for the whole evaluation. Autocast
      does the same arithmetic — it casts each conv's and linear's input, weights and bias to
      bfloat16 and computes in bfloat16, and ReLU, max-pool and flatten keep their input's
      type — without casting fc1's 3.2M weights again for every batch.
    - The conv stages run in batches of ``batch`` images, whose activations stay in the
      caches; the layers after the flatten run over the whole chunk at once, so that fc1's
      weights are read from memory once a chunk rather than once a batch (its product gives
      each image's row the same bits at either size, here and in the tests).
    - Each ReLU and 2 x 2 max-pool pair is one pairwise maximum of the map's rows, then of
      its columns, then the ReLU in place on the pooled map. max_pool2d keeps the index of
      each maximum for a backward pass an evaluation never takes, at 2-3x the time; a
      maximum is exact, so the values are the same.

    Only a DCN's own forward is run this way: for any other model or forward (a subclass,
    one set on the model), and where a hook watches the model or a layer, each batch runs
    through the model's forward instead."""

    def __init__(self, model: nn.Module, precision: str):
        self.model, self.bf16 = model, precision == "bfloat16"
        self.params = {
            name: p.to(torch.bfloat16) if self.bf16 else p for name, p in model.named_parameters()
        }
        modules = list(model._modules.items())  # as DCN.forward runs them, repeats included
        self.plain = (
            type(model) is not DCN  # another forward: a subclass's, or one set on the model
            or "forward" in vars(model)
            or _watched(model)
            or not all(_layer_we_run(m) for _, m in modules)
            or any(f"{name}.weight" not in self.params for name, m in modules if _has_params(m))
        )
        if self.plain:
            return
        # up to the flatten in batches, the rest over the chunk (everything in batches if none)
        flatten = next(
            (i for i, (_, m) in enumerate(modules) if isinstance(m, nn.Flatten)), len(modules)
        )
        self.features = self._steps(modules[: flatten + 1])
        self.head = self._steps(modules[flatten + 1 :])

    def __call__(self, X: torch.Tensor, batch: int) -> torch.Tensor:
        per_batch = self._own_forward if self.plain else partial(_apply, self.features)
        x = torch.cat([per_batch(self._input(X[i : i + batch])) for i in range(0, len(X), batch)])
        return x if self.plain else _apply(self.head, x)

    def _own_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own forward, with the cast parameters in bfloat16."""
        if self.bf16:
            return torch.func.functional_call(self.model, self.params, (x,))
        return self.model(x)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = channels_last(x)
        return x.to(torch.bfloat16) if self.bf16 else x

    def _steps(self, layers: list[tuple[str, nn.Module]]) -> list[Callable]:
        """The layers as functions, once per evaluation: a ReLU and max-pool pair as one."""
        steps, i = [], 0
        while i < len(layers):
            name, module = layers[i]
            if i + 1 < len(layers) and _relu_and_halving_pool(module, layers[i + 1][1]):
                steps.append(_pool_and_relu)
                i += 2
                continue
            if type(module) in (nn.Conv2d, nn.Linear):
                weight, bias = self.params[f"{name}.weight"], self.params.get(f"{name}.bias")
                if type(module) is nn.Conv2d:
                    how = (module.stride, module.padding, module.dilation, module.groups)
                    steps.append(partial(_conv, weight=weight, bias=bias, how=how))
                else:
                    steps.append(partial(F.linear, weight=weight, bias=bias))
            else:
                steps.append(module)
            i += 1
        return steps


def _apply(steps: list[Callable], x: torch.Tensor) -> torch.Tensor:
    for step in steps:
        x = step(x)
    return x


def _conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, how: tuple
) -> torch.Tensor:
    return F.conv2d(x, weight, bias, *how)


def _layer_we_run(module: nn.Module) -> bool:
    """Whether :class:`_Inference` can run the layer: a zero-padded conv or a linear layer
    with the cast parameters, or a layer without parameters; and no hook watches it."""
    if _watched(module):
        return False
    if type(module) is nn.Conv2d:  # exact types: a subclass may have its own forward
        return module.padding_mode == "zeros"
    return type(module) is nn.Linear or not _has_params(module)


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _relu_and_halving_pool(a: nn.Module, b: nn.Module) -> bool:
    """Whether a and b are a ReLU and a 2 x 2, stride 2 max-pool, in either order."""
    relu, pool = (a, b) if type(a) is nn.ReLU else (b, a)
    return (
        type(relu) is nn.ReLU
        and type(pool) is nn.MaxPool2d
        and _pair(pool.kernel_size) == _pair(pool.stride) == (2, 2)
        and _pair(pool.padding) == (0, 0)
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
    )


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _pool_and_relu(x: torch.Tensor) -> torch.Tensor:
    return _halve(x).clamp_min_(0)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2)'s values without its indices: the maximum of each pair of rows, then
    of each pair of columns (an odd last row or column is dropped, as max_pool2d drops it)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


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
