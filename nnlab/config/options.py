"""Config options: every key's default, what it allows and what it means, below the kinds.

A config's schema is the common keys below plus the keys its model kind declares
(:class:`nnlab.models.Kind`), each an :class:`Option` whose values are stated once in the
constraint vocabulary (:mod:`nnlab.common.constraints`): the one source of truth for every key,
what the loader accepts (:func:`check_value`) and what the JSON Schema says
(:mod:`nnlab.config.schema`). Loading and resolving a config against its kind is
:mod:`nnlab.config.resolve`'s; dotted overrides are :mod:`nnlab.config.overrides`'.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from nnlab.common.constraints import (
    AnyOf,
    Boolean,
    Constraint,
    Integer,
    ListOf,
    Nullable,
    Number,
    OneOf,
    Text,
    require,
)
from nnlab.common.yamlread import shown
from nnlab.errors import ConfigError

# The values of keys of more than one scalar type.
NAME = Text(min_len=1)  # a config's strings are never empty
SIZE = AnyOf(
    Number(0, 1, high_open=True, keep_type=True),  # a fraction stays a float, a count an int
    Integer(0),
    words="a fraction in [0, 1) or an integer count of examples",
)
COLUMN = AnyOf(
    Integer(), NAME, words="a column name or a 0-based column index (negative: from the end)"
)
COLUMNS = ListOf(COLUMN, 1, words="a list of column names or 0-based column indices")


@dataclass(frozen=True)
class Option:
    """One config key: its default, the values it allows (a constraint), what it means, and
    the other names people give it (``aliases``, leaf names that "did you mean" points here).

    A ``data.*`` key with ``data_sets`` applies to those data sets only: it is checked when
    given, and left out of the resolved config of any other data set. A model kind lists the
    options it reads in its schema (:class:`nnlab.models.Kind`); an option several kinds
    share is one object here, stated once, and :meth:`but` gives a kind its own default or
    words.
    """

    default: Any
    allowed: Constraint
    doc: str
    data_sets: tuple = ()  # the data.name values the key applies to; (): all of them
    aliases: tuple = ()

    def but(self, **changes: Any) -> Option:
        return replace(self, **changes)

    def default_value(self) -> Any:
        return copy.deepcopy(self.default)

    @property
    def choices(self) -> tuple:
        """The values of a key that takes one of a list (null aside); () otherwise."""
        allowed = self.allowed.inner if isinstance(self.allowed, Nullable) else self.allowed
        return allowed.choices if isinstance(allowed, OneOf) else ()


# Keys every kind has.
# fmt: off
COMMON: dict[str, Option] = {
    "name": Option(None, Nullable(NAME), "run name, used in the run folder's name; default: "
                   "the file's stem"),
    "seed": Option(0, Integer(0, 2**32 - 1), "drives data generation, splits, initialisation, "
                   "shuffling, dropout", aliases=("random_state", "random_seed")),
    "model.kind": Option("mlp", NAME, "mlp: NumPy MLP; dcn: PyTorch convolutional network"),
    "train.threads": Option(None, Nullable(Integer(1, 4096)), "CPU threads (PyTorch's and the "
                            "BLAS's); they change the last bits of the numbers. null: the "
                            "usable cores shared among the runs that run at once (all of them "
                            "for nnlab train); config.yaml records the count used"),
}

# Options several kinds share, each stated once (the data sets' own: nnlab.data.catalog).
EPSILON = Option(0.01, Number(0, low_open=True), "learning rate",
                 aliases=("learning_rate", "lr", "eta", "alpha"))
REG_LAMBDA = Option(0.01, Number(0), "L2 penalty (mlp) / weight decay (dcn)",
                    aliases=("weight_decay", "l2", "lambda", "reg", "regularization",
                             "l2_lambda"))
LOG_EVERY = Option(1000, Integer(1), "iterations between metric rows",
                   aliases=("print_every", "log_interval"))
OPTIMIZER = Option("sgd", OneOf(("sgd", "adam")), "optimizer")
MOMENTUM = Option(0.9, Number(0, 1, high_open=True), "SGD momentum")
EPOCHS = Option(2, Integer(1), "passes over the training set")
BATCH_SIZE = Option(50, Integer(1), "examples per step")

# Keys that every trainer with these features reads the same way.
OPTIMIZER_KEYS = {
    "train.nesterov": Option(False, Boolean(), "Nesterov momentum (sgd; needs momentum > 0)"),
    "train.beta1": Option(0.9, Number(0, 1, high_open=True), "Adam's decay rate of the mean "
                          "gradient"),
    "train.beta2": Option(0.999, Number(0, 1, high_open=True), "Adam's decay rate of the "
                          "squared gradient"),
    "train.adam_eps": Option(1e-8, Number(0, low_open=True), "Adam's epsilon (added to the "
                             "root of the second moment; not the learning rate)"),
}
LR_DECAYS = ("none", "step", "exponential", "cosine")
LR_DECAY_KEYS = {
    "train.lr_decay.kind": Option("none", OneOf(LR_DECAYS), "learning-rate schedule, stepped "
                                  "per epoch"),
    "train.lr_decay.gamma": Option(0.9, Number(0, 1, low_open=True), "decay factor (step, "
                                   "exponential)"),
    "train.lr_decay.step_size": Option(1, Integer(1), "epochs between decays (step)"),
}
EARLY_STOPPING_KEYS = {
    "train.early_stopping.metric": Option(None, Nullable(OneOf(("val_loss", "val_acc"))),
                                          "validation metric to watch; null: no early "
                                          "stopping"),
    "train.early_stopping.patience": Option(5, Integer(1), "evaluations without improvement "
                                            "before the run stops"),
    "train.early_stopping.min_delta": Option(0.0, Number(0), "smallest change that counts as "
                                             "an improvement"),
    "train.early_stopping.mode": Option("auto", OneOf(("auto", "min", "max")), "auto: min for "
                                        "a loss, max for an accuracy"),
}
# fmt: on


def check_value(key: str, opt: Option, value: Any, for_kind: str = "") -> Any:
    """Validate one value against its option's constraint, which is also what the JSON
    Schema states (nnlab.config.schema); return it normalised (a whole number written 100.0
    as the int 100, a count given to a float key as a float). ``for_kind`` names the model
    kind in the message when the choices depend on it."""
    refused = not opt.allowed.is_satisfied_by(value)
    if refused and opt.choices and isinstance(value, str) and value:
        close = difflib.get_close_matches(value, [str(c) for c in opt.choices], n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        where = f" for model.kind {for_kind}" if for_kind else ""
        raise ConfigError(f"{key} must be {opt.allowed}{where}; got {shown(value)}{hint}")
    return copy.deepcopy(require(value, opt.allowed, key))


def check_optimizer(train: Mapping[str, Any]) -> None:
    """Rules between the optimizer keys that no single key can state."""
    if train.get("nesterov") and (train["optimizer"] != "sgd" or not train["momentum"]):
        raise ConfigError(
            "train.nesterov needs optimizer sgd with momentum > 0; this config has optimizer "
            f"{train['optimizer']} and momentum {train['momentum']}"
        )


def check_early_stopping(cfg: Mapping[str, Any], has_validation: bool, how: str) -> None:
    """Early stopping watches the validation split: refuse it where there is none; ``how``
    says how to get one."""
    metric = cfg["train"]["early_stopping"]["metric"]
    if metric is not None and not has_validation:
        raise ConfigError(
            f"train.early_stopping.metric is {metric} but this config has no validation split "
            f"(model selection never looks at the test split); {how}"
        )
