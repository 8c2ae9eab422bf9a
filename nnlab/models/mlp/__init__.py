"""The NumPy multilayer perceptron with hand-derived backpropagation.

- :mod:`~nnlab.models.mlp.math`: the equations (forward, loss, backprop, init), pure functions;
- :mod:`~nnlab.models.mlp.engine`: the same arithmetic as a fast, allocation-free plan, on the
  whole training set or on mini-batches;
- :mod:`~nnlab.models.mlp.optim`: the update rules (gd, sgd with momentum, adam);
- :mod:`~nnlab.data.tabular`: the data sets of :mod:`~nnlab.data.catalog` as tables
  (scikit-learn's sets, MNIST-format images flattened, the user's own files), split and scaled;
- :mod:`~nnlab.models.mlp.trainer`: the trainer (full-batch or mini-batch, with a schedule and
  early stopping) and its figures;
- :mod:`~nnlab.models.mlp.gradcheck`: backprop against finite differences.

This module declares the kind and its config keys only, so validating a config imports no
NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnlab.common.constraints import Boolean, Integer, ListOf, Nullable, Number, OneOf
from nnlab.config.options import (
    BATCH_SIZE,
    COLUMN,
    COLUMNS,
    EARLY_STOPPING_KEYS,
    EPOCHS,
    EPSILON,
    LOG_EVERY,
    LR_DECAY_KEYS,
    MOMENTUM,
    NAME,
    OPTIMIZER,
    OPTIMIZER_KEYS,
    REG_LAMBDA,
    SIZE,
    Option,
    check_early_stopping,
    check_optimizer,
)
from nnlab.data.catalog import DOWNLOAD, MLP, ROOT, TEST_SIZE, names
from nnlab.errors import ConfigError
from nnlab.models.base import Kind

if TYPE_CHECKING:
    from nnlab.models.bounds import Need

FILES = names(key="path")  # the user's own files
ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("classic", "xavier", "he")
OPTIMIZERS = ("gd", "sgd", "adam")
LOG_SCHEDULES = ("linear", "log")

# fmt: off
SCHEMA = {
    "data.name": Option("moons", OneOf(names(MLP)), f"data set; {' / '.join(FILES)}: your own "
                        "file (data.path)", aliases=("dataset",)),
    "data.n_samples": Option(200, Integer(2), f"number of points "
                             f"({', '.join(names(key='n_samples'))})",
                             data_sets=names(key="n_samples")),
    "data.noise": Option(0.2, Number(0), f"noise of {' / '.join(names(key='noise'))}",
                         data_sets=names(key="noise")),
    "data.test_size": TEST_SIZE.but(data_sets=names(MLP, own_test=False)),
    "data.val_size": Option(0, SIZE, "validation examples carved from the training split "
                            "(stratified, seeded): a fraction or a count; 0: none"),
    "data.standardize": Option(False, Boolean(), "z-score features with statistics of the "
                               "training split (images: else scaled to [0, 1])"),
    "data.path": Option(None, Nullable(NAME), f"{' / '.join(FILES)} file (relative to the "
                        "config file)", data_sets=FILES),
    "data.target": Option(-1, COLUMN, "csv: the label column, by name or index",
                          data_sets=names(key="target")),
    "data.features": Option(None, Nullable(COLUMNS), "csv: the feature columns; null: all but "
                            "the target", data_sets=names(key="features")),
    "data.header": Option(None, Nullable(Boolean()), "csv: whether the first row names the "
                          "columns; null: detect", data_sets=names(key="header")),
    "data.root": ROOT,
    "data.download": DOWNLOAD,
    "model.layers": Option([2, 3, 2], ListOf(Integer(1), 2), "layer sizes: input, hidden..., "
                           "output", aliases=("hidden_layers", "sizes", "architecture",
                                              "shape")),
    "model.activation": Option("tanh", OneOf(ACTIVATIONS), "hidden-layer activation",
                               aliases=("activation_function", "nonlinearity")),
    "model.init": Option("classic", OneOf(INITS), "classic randn/sqrt(fan_in), xavier (Glorot "
                         "normal), he; biases zero"),
    "train.optimizer": OPTIMIZER.but(default="gd", allowed=OneOf(OPTIMIZERS),
                                     doc="gd: full-batch gradient descent; sgd, adam: "
                                     "mini-batches"),
    "train.epsilon": EPSILON,
    "train.reg_lambda": REG_LAMBDA,
    "train.momentum": MOMENTUM.but(default=0.0),
    **OPTIMIZER_KEYS,
    "train.iterations": Option(20000, Integer(1), "full-batch gradient-descent steps (gd)",
                               aliases=("n_iter", "max_iter", "steps", "num_iterations",
                                        "iters")),
    "train.epochs": EPOCHS.but(default=10, doc="passes over the training set (sgd, adam)"),
    "train.batch_size": BATCH_SIZE.but(default=32, doc="examples per step (sgd, adam)"),
    "train.log_every": LOG_EVERY.but(doc="steps between metric rows"),
    "train.log_schedule": Option("linear", OneOf(LOG_SCHEDULES), "linear: a row every "
                                 "log_every steps; log (gd): also rows at steps 1, 2, 3, 5, "
                                 "7, 10, 20, …, extra evaluations that leave the weights and "
                                 "the other rows as they are"),
    **LR_DECAY_KEYS,
    **EARLY_STOPPING_KEYS,
    "train.dtype": Option("float64", OneOf(("float64", "float32")), "floating-point type of "
                          "the parameters and data"),
}
# fmt: on

FILE_KEYS = ("data.path", "data.target", "data.features", "data.header")


class MLPKind(Kind):
    def describe(self, cfg: dict[str, Any]) -> str:
        model = cfg["model"]
        return f"a NumPy MLP {model['layers']} with {model['activation']} hidden units"

    def check_config(self, cfg: dict[str, Any]) -> None:
        data, train = cfg["data"], cfg["train"]
        name = data["name"]
        if name in FILES and data.get("path") is None:
            raise ConfigError(f"data.name {name} reads your own file: set data.path to it")
        if name not in FILES and data.get("path") is not None:
            raise ConfigError(
                f"data.path applies to data.name {' or '.join(FILES)}; this config's data.name "
                f"is {name}"
            )
        for key in FILE_KEYS[1:]:
            section, leaf = key.split(".")
            readers = names(key=leaf)
            if name not in readers and data.get(leaf, SCHEMA[key].default) != SCHEMA[key].default:
                raise ConfigError(
                    f"{key} applies to data.name {' or '.join(readers)} only, not {name}"
                )
        if train["momentum"] and train["optimizer"] != "sgd":
            adam = " (Adam's momentum is train.beta1)" if train["optimizer"] == "adam" else ""
            raise ConfigError(
                "train.momentum applies to optimizer sgd; this config's optimizer is "
                f"{train['optimizer']}{adam}"
            )
        if train["log_schedule"] != "linear" and train["optimizer"] != "gd":
            raise ConfigError(
                f"train.log_schedule {train['log_schedule']} applies to optimizer gd; this "
                f"config's optimizer is {train['optimizer']} (its rows are means over the "
                "batches since the previous row: use a smaller train.log_every)"
            )
        check_optimizer(train)
        check_early_stopping(cfg, data["val_size"] > 0, "set data.val_size (e.g. 0.1)")

    def memory(self, cfg: dict[str, Any], cache: dict[str, Any]) -> list[Need]:
        """Estimated from the layers, the optimizer and the sizes of the splits, which come
        from the config or the headers of the data's files (each distinct data set's once
        per sweep, in ``cache``)."""
        from nnlab.data.tabular import data_shape
        from nnlab.models.mlp.memory import needs

        key = repr(("shape", cfg["data"]))  # the data section's keys in schema order
        if key not in cache:
            cache[key] = data_shape(cfg)
        return needs(cfg, cache[key])

    def precheck(self, cfg: dict[str, Any], cache: dict[str, Any]) -> None:
        """Layer sizes against the data, so that a wrong size stops a sweep before it starts.
        Each distinct data set is loaded once per sweep and only its outline kept in ``cache``
        (its features and classes, no examples): a sweep over many seeds holds one data set at
        a time, as a run does."""
        from nnlab.data.tabular import check_fits, load_data, outline

        key = repr((cfg["data"], cfg["seed"]))  # the data section's keys in schema order
        if key not in cache:
            cache[key] = outline(load_data(cfg))
        layers = cfg["model"]["layers"]
        fits = repr((key, layers[0], layers[-1]))  # all check_fits reads
        if fits not in cache:
            check_fits(cfg, cache[key])
            cache[fits] = True


KIND = MLPKind("mlp", SCHEMA, "nnlab.models.mlp.trainer:MLPTrainer", "NumPy MLP, backprop by hand")
