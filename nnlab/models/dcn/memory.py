"""What a DCN run needs in memory, from its config and the size of its images, before
anything is allocated (docs/reliability.md, 'Resource bounds'). Plain arithmetic on the network
:class:`~nnlab.models.dcn.network.DCN` builds, in float32; no PyTorch."""

from __future__ import annotations

import math
from typing import Any

from nnlab.data.catalog import CATALOG, size_key
from nnlab.data.extent import Extent
from nnlab.models.bounds import Need

FLOAT = 4  # bytes: parameters, activations and images are float32
EVAL_BATCH = 1000  # the largest of network.EVAL_BATCH (a GPU's): images per evaluation pass
ROW_BYTES = 2000  # a metric row, kept by the trainer and by the run's recorder


def _layers(cfg: dict[str, Any], height: int, width: int, classes: int) -> tuple[int, int, int]:
    """(conv parameters, fully connected parameters, floats of one image's forward pass:
    conv and ReLU outputs, pool outputs and their indices, the fully connected layers)."""
    model = cfg["model"]
    k, fc = model["kernel_size"], model["fc_units"]
    conv, floats, c_in, h, w = 0, height * width, 1, height, width
    for c in model["conv_channels"]:
        conv += k * k * c_in * c + c
        floats += 2 * c * h * w
        h, w = h // 2, w // 2
        floats += 3 * c * h * w  # the pool's output and its int64 indices
        c_in = c
    dense = c_in * h * w * fc + fc + fc * classes + classes
    return conv, dense, floats + 3 * fc + classes


def _copies(cfg: dict[str, Any]) -> int:
    """Copies of each parameter a run holds: weights, gradients and the optimizer's state,
    the checkpoint's copy of weights and state, the best weights under early stopping."""
    train = cfg["train"]
    state = 2 if train["optimizer"] == "adam" else int(train["momentum"] > 0)
    return 3 + 2 * state + (train["early_stopping"]["metric"] is not None)


def needs(cfg: dict[str, Any], size: Extent) -> list[Need]:
    """Parameters (conv and fully connected) with their copies; a training step's
    activations and their gradients; an evaluation batch; the images (``size``, both
    splits); the metric rows."""
    train = cfg["train"]
    images, (height, width) = size.examples + size.test, size.example
    classes = len(CATALOG[cfg["data"]["name"]].classes)
    conv, dense, floats = _layers(cfg, height, width, classes)
    batch = min(train["batch_size"], images)
    steps = math.ceil(images / train["batch_size"])
    rows = train["epochs"] * (steps // train["log_every"] + steps // train["eval_every"] + 1)
    data_key = size_key(cfg["data"])
    param_bytes = FLOAT * _copies(cfg)
    what = "parameters with their gradients, optimizer state and checkpoint copies"
    return [
        Need(("model.conv_channels", "model.kernel_size"), f"the conv {what}", conv * param_bytes),
        Need(("model.fc_units",), f"the fully connected {what}", dense * param_bytes),
        Need(
            ("train.batch_size", "model.conv_channels"),
            f"a step's activations and their gradients ({batch:,} images)",
            2 * batch * floats * FLOAT,
        ),
        Need(
            ("model.conv_channels",),
            "an evaluation batch",
            min(EVAL_BATCH, images) * floats * FLOAT,
        ),
        Need((data_key,), "the images", images * height * width * (1 + 2 * FLOAT)),
        Need(("train.log_every", "train.epochs"), "the metric rows", rows * ROW_BYTES),
    ]
