"""The PyTorch deep convolutional network (DCN) on MNIST-format images.

- :mod:`~nnlab.models.dcn.network`: the network, initialisation, optimizer, schedule,
  evaluation;
- :mod:`~nnlab.data.images`: IDX files, Fashion-MNIST, scikit-learn's digits as tensors;
- :mod:`~nnlab.models.dcn.trainer`: the training step and loop, checkpoints, figures;
- :mod:`~nnlab.models.dcn.callbacks`: layer statistics, TensorBoard, checkpoint writing;
- :mod:`~nnlab.models.dcn.figures`: the layer-statistics figure, from stats.csv.

This module declares the kind and its config keys only, so validating a config imports no
PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nnlab.common.constraints import Boolean, Integer, ListOf, Number, OneOf
from nnlab.config.options import (
    BATCH_SIZE,
    EARLY_STOPPING_KEYS,
    EPOCHS,
    EPSILON,
    LOG_EVERY,
    LR_DECAY_KEYS,
    MOMENTUM,
    OPTIMIZER,
    OPTIMIZER_KEYS,
    REG_LAMBDA,
    SIZE,
    Option,
    check_early_stopping,
    check_optimizer,
)
from nnlab.data.catalog import CATALOG, DCN, DOWNLOAD, ROOT, TEST_SIZE, names
from nnlab.data.extent import image_extent
from nnlab.errors import ConfigError
from nnlab.models.base import Kind

if TYPE_CHECKING:
    from nnlab.models.bounds import Need

INITS = ("default", "xavier", "he")

# fmt: off
SCHEMA = {
    "data.name": Option("digits", OneOf(names(DCN)), "data set", aliases=("dataset",)),
    "data.test_size": TEST_SIZE.but(data_sets=names(DCN, own_test=False)),
    "data.val_size": Option(5000, SIZE, "validation images carved from the training images: "
                            "a count (at most 10% of them) or a fraction of them"),
    "data.root": ROOT,
    "data.download": DOWNLOAD,
    "model.init": Option("default", OneOf(INITS), "default (PyTorch's), xavier (Glorot "
                         "uniform), he; biases zero"),
    "model.conv_channels": Option([32, 64], ListOf(Integer(1), 1), "channels of each conv + "
                                  "ReLU + max-pool 2 stage"),
    "model.kernel_size": Option(5, Integer(1), "conv kernel size ('same' padding)"),
    "model.fc_units": Option(1024, Integer(1), "units of the hidden fully connected layer"),
    "model.dropout": Option(0.5, Number(0, 1, high_open=True), "dropout before the output "
                            "layer"),
    "train.epsilon": EPSILON,
    "train.reg_lambda": REG_LAMBDA,
    "train.log_every": LOG_EVERY.but(default=100, doc="steps between training rows"),
    "train.optimizer": OPTIMIZER,
    "train.momentum": MOMENTUM,
    **OPTIMIZER_KEYS,
    "train.epochs": EPOCHS.but(doc="passes over the training images"),
    "train.batch_size": BATCH_SIZE.but(doc="images per step"),
    "train.eval_every": Option(500, Integer(1), "steps between validation/test evaluations "
                               "(also at every epoch end)"),
    **LR_DECAY_KEYS,
    **EARLY_STOPPING_KEYS,
    "train.stats_every": Option(100, Integer(0), "steps between layer statistics (0: none)"),
    "train.precision": Option("float32", OneOf(("float32", "bfloat16")), "bfloat16: "
                              "mixed-precision forward pass (fast on CPUs with AMX / "
                              "avx512_bf16 and on recent GPUs)"),
    "train.device": Option("auto", OneOf(("auto", "cpu", "cuda")), "auto: cuda when "
                           "available, else cpu"),
    "train.tensorboard": Option(True, Boolean(), "write TensorBoard event files to tb/"),
}
# fmt: on


class DCNKind(Kind):
    def check_config(self, cfg: dict[str, Any]) -> None:
        check_optimizer(cfg["train"])
        check_early_stopping(cfg, cfg["data"]["val_size"] > 0, "set data.val_size above 0")
        name = cfg["data"]["name"]
        if not CATALOG[name].own_test and cfg["data"].get("test_size") == 0:
            raise ConfigError(
                f"data.test_size must be > 0 for {name} with model.kind dcn "
                "(the DCN reports test accuracy)"
            )

    def describe(self, cfg: dict[str, Any]) -> str:
        model = cfg["model"]
        return (
            f"a PyTorch DCN (conv channels {model['conv_channels']}, fc {model['fc_units']}) "
            f"trained with {cfg['train']['optimizer']}"
        )

    def memory(self, cfg: dict[str, Any], cache: dict[str, Any]) -> list[Need]:
        """Estimated from the network and the images' number and size: digits' are known,
        an IDX set's come from its files' headers — read, and checked against the format and
        each other, once per data set in ``cache``, so that a bad file stops a sweep before
        it starts."""
        from nnlab.models.dcn.memory import needs

        data = cfg["data"]
        key = json.dumps(["images", data["name"], data.get("root"), data.get("download")])
        if key not in cache:
            cache[key] = image_extent(data)
        return needs(cfg, cache[key])

    @contextmanager
    def limit_threads(self, cfg: dict[str, Any], threads: int) -> Iterator[None]:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def resources(self, cfg: dict[str, Any]) -> dict[str, float]:
        return {"gpus": 1} if cfg["train"]["device"] == "cuda" else {}

    def numeric_libraries(self) -> tuple[str, ...]:
        return ("numpy", "scikit-learn", "torch")


KIND = DCNKind(
    "dcn",
    SCHEMA,
    "nnlab.models.dcn.trainer:DCNTrainer",
    "PyTorch convolutional network on MNIST-format images",
)
