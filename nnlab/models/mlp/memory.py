"""What an MLP run needs in memory, from its config and the sizes of its splits, before
anything is allocated (docs/reliability.md, 'Resource bounds'). Plain arithmetic on the buffers
the trainer allocates: the engine's (:mod:`~nnlab.models.mlp.engine`), evaluation's, the
data's, the metric rows'; estimates, a little above what a run takes, never below by much.
"""

from __future__ import annotations

import math
from typing import Any

from nnlab.data.catalog import size_key
from nnlab.data.tabular import Shape
from nnlab.models.bounds import Need
from nnlab.models.mlp.math import PREDICT_CHUNK_BYTES

ROW_BYTES = 1000  # a metric row kept for the figures: a dict of about ten floats
GRID_POINTS = 401 * 401  # the decision-boundary grid: at most 401 cells along a side
# per parameter, beyond θ and its gradient: the L2 term's scratch, and the update's buffers
UPDATE_BUFFERS = {"gd": 1, "sgd": 1, "adam": 4}  # sgd with momentum: + v and a scratch


def _metric_rows(cfg: dict[str, Any], shape: Shape) -> int:
    """Rows a run logs (and keeps for its figures)."""
    train = cfg["train"]
    if train["optimizer"] == "gd":
        return train["iterations"] // train["log_every"] + 2
    steps = math.ceil(max(shape.train, 1) / train["batch_size"])
    return train["epochs"] * (steps // train["log_every"] + 1)


def needs(cfg: dict[str, Any], shape: Shape) -> list[Need]:
    """Parameters with gradients and optimizer state; a step's buffers (the whole training
    split under gd); evaluating the largest split; the data as loaded, split and scaled;
    the metric rows; the decision-boundary grid (2-D data)."""
    layers, train = cfg["model"]["layers"], cfg["train"]
    size = 4 if train["dtype"] == "float32" else 8
    params = sum(a * b + b for a, b in zip(layers[:-1], layers[1:], strict=True))
    buffers = UPDATE_BUFFERS[train["optimizer"]] + 2 * (train["momentum"] > 0)
    hidden, outputs = sum(layers[1:-1]), layers[-1]
    gd = train["optimizer"] == "gd"
    rows = shape.train if gd else min(train["batch_size"], shape.train)
    examples = size_key(cfg["data"])
    rows_key = examples if gd else "train.batch_size"
    log_keys = ("train.log_every", "train.iterations" if gd else "train.epochs")
    out = [
        Need(
            ("model.layers",),
            "the parameters with their gradients and optimizer state",
            params * (8 + size * (2 + buffers)),  # drawn in float64, then the engine's copy
        ),
        Need(
            ("model.layers", rows_key),
            f"a step's buffers ({rows:,} examples)",
            rows * (layers[0] + 3 * hidden + 3 * outputs) * size,
        ),
        Need(
            ("model.layers", examples),
            f"evaluating a split ({shape.largest_split:,} examples)",
            shape.largest_split * 2 * (hidden + outputs) * size,
        ),
        Need((examples,), "the data", shape.total * shape.features * (1 + 16 + size)),
        Need(log_keys, "the metric rows", _metric_rows(cfg, shape) * ROW_BYTES),
    ]
    if shape.reading:
        out.append(Need((examples,), "the buffers reading the file", shape.reading))
    if shape.features == 2:
        grid = GRID_POINTS * 32 + PREDICT_CHUNK_BYTES  # points, classes; one chunk's layers
        out.append(Need(("model.layers",), "the decision-boundary grid", grid))
    return out
