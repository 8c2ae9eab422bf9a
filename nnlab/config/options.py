"""Experiment configs: options, YAML loading, dotted overrides and validation.

A config's schema is the common keys below plus the keys its model kind declares
(:class:`nnlab.models.Kind`); together they are the single source of truth for every key, its
default, its type and what is allowed (docs/configs.md, 'Rules'). Everything is validated
before any work starts, and every error names the dotted key, what was given and what is
allowed.
"""

from __future__ import annotations

import copy
import difflib
import os
import pickle
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from nnlab.common.yamlread import clip, parse_yaml, read_yaml_file, shown
from nnlab.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """One config key: its default, its type, the values allowed and what it means.

    type is one of "str", "int", "float", "bool", "int_list", "size" (a fraction in [0, 1) or
    a whole count), "column" (a name or an integer index), "column_list" (a list of those).
    Bounds are inclusive unless the matching ``*_open`` flag is set. A ``data.*`` key with
    ``data_sets`` applies to those data sets only: it is checked when given, and left out of
    the resolved config of any other data set. A model kind lists the options it reads in
    its schema (:class:`nnlab.models.Kind`); an option several kinds share is one object
    here, stated once, and :meth:`but` gives a kind its own default or words.
    """

    default: Any
    type: str
    doc: str
    choices: tuple = ()
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    nullable: bool = False
    min_len: int = 0
    data_sets: tuple = ()  # the data.name values the key applies to; (): all of them

    def but(self, **changes: Any) -> Option:
        return replace(self, **changes)

    def default_value(self) -> Any:
        return copy.deepcopy(self.default)


# Keys every kind has.
# fmt: off
COMMON: dict[str, Option] = {
    "name": Option(None, "str", "run name, used in the run folder's name; default: the file's stem",
                   nullable=True),
    "seed": Option(0, "int", "drives data generation, splits, initialisation, shuffling, dropout",
                   low=0, high=2**32 - 1),
    "model.kind": Option("mlp", "str", "mlp: NumPy MLP; dcn: PyTorch convolutional network"),
    "train.threads": Option(None, "int", "CPU threads (PyTorch's and the BLAS's); they change "
                            "the last bits of the numbers. null: the usable cores shared among "
                            "the runs that run at once (all of them for nnlab train); "
                            "config.yaml records the count used", low=1, high=4096,
                            nullable=True),
}

# Options several kinds share, each stated once (the data sets' own: nnlab.data.catalog).
EPSILON = Option(0.01, "float", "learning rate", low=0, low_open=True)
REG_LAMBDA = Option(0.01, "float", "L2 penalty (mlp) / weight decay (dcn)", low=0)
LOG_EVERY = Option(1000, "int", "iterations between metric rows", low=1)
OPTIMIZER = Option("sgd", "str", "optimizer", choices=("sgd", "adam"))
MOMENTUM = Option(0.9, "float", "SGD momentum", low=0, high=1, high_open=True)
EPOCHS = Option(2, "int", "passes over the training set", low=1)
BATCH_SIZE = Option(50, "int", "examples per step", low=1)

# Keys that every trainer with these features reads the same way.
OPTIMIZER_KEYS = {
    "train.nesterov": Option(False, "bool", "Nesterov momentum (sgd; needs momentum > 0)"),
    "train.beta1": Option(0.9, "float", "Adam's decay rate of the mean gradient", low=0, high=1,
                          high_open=True),
    "train.beta2": Option(0.999, "float", "Adam's decay rate of the squared gradient", low=0,
                          high=1, high_open=True),
    "train.adam_eps": Option(1e-8, "float", "Adam's epsilon (added to the root of the second "
                             "moment; not the learning rate)", low=0, low_open=True),
}
LR_DECAYS = ("none", "step", "exponential", "cosine")
LR_DECAY_KEYS = {
    "train.lr_decay.kind": Option("none", "str", "learning-rate schedule, stepped per epoch",
                                  choices=LR_DECAYS),
    "train.lr_decay.gamma": Option(0.9, "float", "decay factor (step, exponential)", low=0,
                                   low_open=True, high=1),
    "train.lr_decay.step_size": Option(1, "int", "epochs between decays (step)", low=1),
}
EARLY_STOPPING_KEYS = {
    "train.early_stopping.metric": Option(None, "str", "validation metric to watch; null: no "
                                          "early stopping", choices=("val_loss", "val_acc"),
                                          nullable=True),
    "train.early_stopping.patience": Option(5, "int", "evaluations without improvement "
                                            "before the run stops", low=1),
    "train.early_stopping.min_delta": Option(0.0, "float", "smallest change that counts as an "
                                             "improvement", low=0),
    "train.early_stopping.mode": Option("auto", "str", "auto: min for a loss, max for an "
                                        "accuracy", choices=("auto", "min", "max")),
}
# fmt: on

# Names people reach for that mean one of ours; used for "did you mean ...?" hints.
ALIASES = {
    "learning_rate": "epsilon",
    "lr": "epsilon",
    "eta": "epsilon",
    "alpha": "epsilon",
    "step_size": "epsilon",
    "weight_decay": "reg_lambda",
    "l2": "reg_lambda",
    "lambda": "reg_lambda",
    "reg": "reg_lambda",
    "regularization": "reg_lambda",
    "l2_lambda": "reg_lambda",
    "epochs": "iterations",
    "n_iter": "iterations",
    "max_iter": "iterations",
    "steps": "iterations",
    "num_iterations": "iterations",
    "iters": "iterations",
    "hidden_layers": "layers",
    "sizes": "layers",
    "architecture": "layers",
    "shape": "layers",
    "activation_function": "activation",
    "nonlinearity": "activation",
    "dataset": "name",
    "random_state": "seed",
    "random_seed": "seed",
    "print_every": "log_every",
    "log_interval": "log_every",
}


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.epsilon=0.005", ...]`` into ``{"train.epsilon": 0.005, ...}``.

    Values are parsed as YAML scalars or lists, so ``model.layers=[2,5,2]`` is a list.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"override {shown(item)} is not of the form KEY=VALUE (e.g. -s train.epsilon=0.005)"
            )
        out[key] = parse_yaml(value, f"override {clip(key)}") if value.strip() else None
    return out


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of the raw nested config with dotted-key overrides set."""
    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = out
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"override {clip(dotted)}: {clip(where)} is {shown(child)}, "
                    "not a section of keys"
                )
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def schema_of(kind: str) -> dict[str, Option]:
    """Every key a config of this model kind has, in the order config.yaml lists them:
    name, seed, the data keys, model.kind, the other model keys, the training keys."""
    from nnlab.models import get_kind, kinds

    own = get_kind(kind).schema
    out = {k: COMMON[k] for k in ("name", "seed")}
    out.update((k, o) for k, o in own.items() if k.startswith("data."))
    out["model.kind"] = COMMON["model.kind"].but(choices=tuple(kinds()))
    out.update((k, o) for k, o in own.items() if not k.startswith("data."))
    out["train.threads"] = COMMON["train.threads"]
    return out


def _all_schemas() -> dict[str, dict[str, Option]]:
    from nnlab.models import kinds

    return {name: schema_of(name) for name in kinds()}


def _owners(schemas: Mapping[str, Mapping[str, Option]]) -> dict[str, list[str]]:
    """Every key of the given schemas -> the kinds that have it."""
    out: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        for key in schema:
            out.setdefault(key, []).append(name)
    return out


def known_keys() -> list[str]:
    """The dotted keys some kind's config may hold."""
    return list(_owners(_all_schemas()))


def suggest(key: str) -> str:
    """A " (did you mean X?)" hint for an unknown dotted key, or ""."""
    keys = known_keys()
    section, _, leaf = key.rpartition(".")
    leaf_l = leaf.lower()
    candidates = []
    if leaf_l in ALIASES:
        target = ALIASES[leaf_l]
        candidates = [k for k in keys if k.rsplit(".", 1)[-1] == target]
        same = [k for k in candidates if k.startswith(section + ".")] if section else []
        candidates = same or candidates
    if not candidates:
        candidates = [k for k in keys if k.rsplit(".", 1)[-1] == leaf_l]
    if not candidates:
        candidates = difflib.get_close_matches(key.lower(), keys, n=1, cutoff=0.6)
    if not candidates:
        leaves = {k.rsplit(".", 1)[-1]: k for k in keys}
        close = difflib.get_close_matches(leaf_l, list(leaves), n=1, cutoff=0.75)
        candidates = [leaves[c] for c in close]
    return f" (did you mean {candidates[0]}?)" if candidates else ""


def describe(opt: Option) -> str:
    """What an option allows, in words: 'a number > 0', 'one of sigmoid, tanh, relu'."""
    if opt.choices:
        return "one of " + ", ".join(map(str, opt.choices)) + (" (or null)" if opt.nullable else "")
    noun = {
        "str": "a non-empty string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "int_list": f"a list of at least {opt.min_len} integers",
        "size": "a fraction in [0, 1) or an integer count of examples",
        "column": "a column name or a 0-based column index (negative: from the end)",
        "column_list": "a list of column names or 0-based column indices",
    }[opt.type]
    bounds = []
    if opt.low is not None:
        bounds.append(f"{'>' if opt.low_open else '>='} {opt.low}")
    if opt.high is not None:
        bounds.append(f"{'<' if opt.high_open else '<='} {opt.high}")
    if bounds:
        noun += (" with every entry " if opt.type == "int_list" else " ") + " and ".join(bounds)
    if opt.nullable:
        noun += " (or null)"
    return noun


# A config's values are JSON's: YAML reads them into these Python types, and a number with no
# fractional part is an integer (100.0 is 100), as JSON Schema says; floats are finite.
LARGEST = sys.float_info.max
_COLUMN = {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]}


def _bounded(opt: Option, out: dict[str, Any], finite: bool = False) -> dict[str, Any]:
    low, high = opt.low, opt.high
    if finite:  # no number outside the floats' range (JSON has no infinity)
        low, high = (-LARGEST if low is None else low), (LARGEST if high is None else high)
    if low is not None:
        out["exclusiveMinimum" if opt.low_open else "minimum"] = low
    if high is not None:
        out["exclusiveMaximum" if opt.high_open else "maximum"] = high
    return out


def value_schema(opt: Option) -> dict[str, Any]:
    """The JSON Schema of one option's values (null included when it is nullable): what
    `nnlab schema` writes for the key and what :func:`check_value` checks the value against,
    so that an editor and nnlab accept the same values by construction."""
    if opt.choices:
        out = {"enum": list(opt.choices)}
    elif opt.type in ("str", "bool"):
        out = {"type": "string", "minLength": 1} if opt.type == "str" else {"type": "boolean"}
    elif opt.type in ("int", "float"):
        out = _bounded(opt, {"type": "integer" if opt.type == "int" else "number"},
                       finite=opt.type == "float")  # fmt: skip
    elif opt.type == "int_list":
        out = {"type": "array", "items": _bounded(opt, {"type": "integer"}),
               "minItems": opt.min_len}  # fmt: skip
    elif opt.type == "size":
        fraction = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
        out = {"anyOf": [{"type": "integer", "minimum": 0}, fraction]}
    elif opt.type == "column":
        out = copy.deepcopy(_COLUMN)
    elif opt.type == "column_list":
        out = {"type": "array", "items": copy.deepcopy(_COLUMN), "minItems": 1}
    else:
        raise ValueError(f"no JSON Schema for option type {opt.type!r}")
    return {"anyOf": [out, {"type": "null"}]} if opt.nullable else out


_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: _is_int(v) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: _is_int(v) or isinstance(v, float),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
}
_BOUNDS = {
    "minimum": lambda v, b: v >= b,
    "exclusiveMinimum": lambda v, b: v > b,
    "maximum": lambda v, b: v <= b,
    "exclusiveMaximum": lambda v, b: v < b,
}


def _same(a: Any, b: Any) -> bool:
    """JSON's equality: true is not 1, 1.0 is 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _TYPES["number"](a) and _TYPES["number"](b):
        return a == b
    return type(a) is type(b) and a == b


def conforms(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether a value meets a JSON Schema of the keywords :func:`value_schema` writes, read
    as the JSON Schema specification reads them (a keyword it does not know is an error, never
    a pass). NaN, which JSON cannot hold, fails every bound."""
    unknown = set(schema) - {"anyOf", "enum", "type", "minLength", "minItems", "items", *_BOUNDS}
    if unknown:
        raise ValueError(f"conforms does not read {sorted(unknown)}")
    if "anyOf" in schema:
        return any(conforms(value, s) for s in schema["anyOf"])
    if "enum" in schema:
        return any(_same(value, c) for c in schema["enum"])
    if not _TYPES[schema["type"]](value):
        return False
    if schema["type"] in ("integer", "number"):
        return all(ok(value, schema[k]) for k, ok in _BOUNDS.items() if k in schema)
    if schema["type"] == "string":
        return len(value) >= schema.get("minLength", 0)
    if schema["type"] == "array":
        return len(value) >= schema.get("minItems", 0) and all(
            conforms(v, schema["items"]) for v in value
        )
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _normal(opt: Option, value: Any) -> Any:
    """A conforming value in the type the trainers read: a whole number written 100.0 as the
    int 100, a count given to a float key as a float; a size's fraction stays a float."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, list):
        return [_normal(opt, v) for v in value]
    if opt.type == "float" or (opt.type == "size" and isinstance(value, float) and value < 1):
        return float(value)
    return int(value)


def check_value(key: str, opt: Option, value: Any, for_kind: str = "") -> Any:
    """Validate one value against its option's JSON Schema (:func:`value_schema`); return it
    normalised (:func:`_normal`). ``for_kind`` names the model kind in the message when the
    choices depend on it."""
    if conforms(value, value_schema(opt)):
        return copy.deepcopy(_normal(opt, value))
    if opt.choices and isinstance(value, str) and value:
        close = difflib.get_close_matches(value, [str(c) for c in opt.choices], n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        where = f" for model.kind {for_kind}" if for_kind else ""
        raise ConfigError(f"{key} must be {describe(opt)}{where}; got {shown(value)}{hint}")
    raise ConfigError(f"{key} must be {describe(opt)}; got {shown(value)}")


def _flatten(raw: dict[str, Any], sections: set[str], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_decay": {"kind": "step"}}}`` -> ``{"train.lr_decay.kind": "step"}``,
    refusing sections that are not mappings (keys are checked against the kind later)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if dotted in sections:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted} must be a section of keys, got {shown(value)}")
            flat.update(_flatten(value, sections, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"train": {"epsilon": 0.1}}`` -> ``{"train.epsilon":
    0.1}`` (no validation; for comparing and labelling configs)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *sections, leaf = dotted.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return out


def _sections(keys: Iterable[str]) -> set[str]:
    """Every dotted prefix that names a section of keys: data, model, train, train.lr_decay."""
    return {".".join(k.split(".")[:i]) for k in keys for i in range(1, k.count(".") + 1)}


def check_keys(raw: Any) -> tuple[str, dict[str, Any]]:
    """The half of :func:`resolve` that the JSON Schema states too (nnlab.config.schema): the config
    is a mapping, each section a mapping (or null), every key known to its model kind and
    every value what its option allows. Returns the kind and the config as dotted keys, each
    key's value checked and normalised or its default."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    from nnlab.models import check_loadable

    schemas = _all_schemas()
    owners = _owners(schemas)
    given = _flatten(raw, _sections(owners))
    any_kind = next(iter(schemas.values()))["model.kind"]
    given_kind = given.get("model.kind", any_kind.default)
    if isinstance(given_kind, str):
        check_loadable(given_kind)
    kind = check_value("model.kind", any_kind, given_kind)
    schema = schemas[kind]
    for key in given:
        if key not in owners:
            raise ConfigError(f"unknown key {clip(key)}{suggest(key)}")
        if key not in schema:
            raise ConfigError(
                f"{key} applies only to model.kind {' or '.join(owners[key])}, "
                f"and this config's model.kind is {kind}"
            )
    flat = {}
    for key, opt in schema.items():
        varies = len({schemas[k][key].choices for k in owners[key]}) > 1
        value = given[key] if key in given else opt.default_value()
        flat[key] = check_value(key, opt, value, kind if varies else "")
    return kind, flat


def resolve(raw: Any, default_name: str = "run") -> dict[str, Any]:
    """Validate a raw nested config and fill in every default.

    Returns the fully resolved nested dict ``{"name", "seed", "data": {...}, ...}`` holding the
    keys of its model kind — the form that is saved as config.yaml and that the trainers
    read. Each key is checked on its own first (:func:`check_keys`), then the rules between
    keys (the data set's test split, the kind's ``check_config``).
    """
    # resolution sits above the data sets and the kinds (both import this module's options)
    from nnlab.data.catalog import CATALOG, default_test_size
    from nnlab.models import get_kind

    kind, flat = check_keys(raw)
    schema = schema_of(kind)
    if flat["name"] is None:
        flat["name"] = default_name
    if "data.test_size" in flat:
        data_name, test_size = flat["data.name"], flat["data.test_size"]
        if data_name in CATALOG and CATALOG[data_name].own_test:
            if test_size is not None:
                raise ConfigError(
                    f"data.test_size does not apply to {data_name}, which has its own test "
                    "files; leave it out (or null)"
                )
        elif test_size is None:
            flat["data.test_size"] = default_test_size(data_name)
    cfg = _nest(flat)
    get_kind(kind).check_config(cfg)
    return applicable(cfg, schema)


def applicable(cfg: dict[str, Any], schema: Mapping[str, Option]) -> dict[str, Any]:
    """``cfg`` without the keys that do not apply to its data set (an Option's
    ``data_sets``): a breast-cancer run's config holds no ``data.noise``."""
    data = cfg.get("data", {})
    for key, opt in schema.items():
        if opt.data_sets and data.get("name") not in opt.data_sets:
            data.pop(key.removeprefix("data."), None)
    return cfg


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


PATH_KEYS = (("data", "path"),)  # file names in a config: relative to the config file
# Keys from which resolve derives others — the schema (model.kind), data.test_size's default
# (data.name), the name's default, absolute file names: a variant setting one is resolved whole.
DERIVING_KEYS = frozenset(
    {"name", "model.kind", "data.name", "data.test_size", *(f"{s}.{k}" for s, k in PATH_KEYS)}
)


def _raw_config(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None,
) -> tuple[dict[str, Any], str]:
    """The raw nested config with its overrides applied and its file names made absolute,
    and the name it defaults to: everything :func:`resolve` then validates."""
    if isinstance(source, Mapping):
        raw, default_name = copy.deepcopy(dict(source)), "run"
    else:
        raw, default_name = read_yaml_file(source), Path(source).stem
        _anchor_paths(raw, Path(source).parent)
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
        raw = apply_overrides(raw, overrides)
    _anchor_paths(raw, Path.cwd())
    return raw, default_name


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load, override and validate a config.

    ``source`` is a YAML file path or an already-parsed mapping. ``overrides`` is a mapping of
    dotted keys to values, or a list of ``"key=value"`` strings as given to ``-s``.
    """
    return resolve(*_raw_config(source, overrides))


class BaseConfig:
    """A config read and validated once, from which variants that override a few keys are
    resolved cheaply: a sweep's jobs, thousands of which must not each re-read the file and
    re-validate every key. ``variant(overrides)`` is ``load_config(source, {**overrides of
    the base, **overrides})``, checking only the keys the variant sets — unless it sets a
    key others are derived from (:data:`DERIVING_KEYS`) or one its kind lacks, which is
    resolved in full (with resolve's error)."""

    def __init__(
        self,
        source: str | Path | Mapping[str, Any],
        overrides: Mapping[str, Any] | Iterable[str] | None = None,
    ):
        self._raw, self._default_name = _raw_config(source, overrides)
        self.config = resolve(copy.deepcopy(self._raw), self._default_name)
        self._frozen = pickle.dumps(self.config)
        self._kind = self.config["model"]["kind"]
        schemas = _all_schemas()
        self._schema = schemas[self._kind]
        owners = _owners(schemas)
        self._for_kind = {  # keys whose choices depend on the kind name it in their errors
            key: self._kind if len({schemas[k][key].choices for k in owners[key]}) > 1 else ""
            for key in self._schema
        }

    def variant(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The resolved config with ``overrides`` (dotted keys) applied."""
        if DERIVING_KEYS.intersection(overrides) or not set(overrides) <= set(self._schema):
            raw = apply_overrides(self._raw, overrides)
            _anchor_paths(raw, Path.cwd())
            return resolve(raw, self._default_name)
        cfg = pickle.loads(self._frozen)  # noqa: S301 - our own bytes: a fresh copy, fast
        for key, opt in self._schema.items():  # in schema order, as resolve reports them
            if key in overrides:
                *sections, leaf = key.split(".")
                node = cfg
                for section in sections:
                    node = node[section]
                node[leaf] = check_value(key, opt, overrides[key], self._for_kind[key])
        from nnlab.models import get_kind

        get_kind(self._kind).check_config(cfg)
        return applicable(cfg, self._schema)


def anchor_overrides(overrides: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Dotted overrides with relative file names made absolute against ``base`` (a sweep
    file's folder, for the values its grid and variants give)."""
    out = dict(overrides)
    for section, key in PATH_KEYS:
        value = out.get(f"{section}.{key}")
        if isinstance(value, str) and value:
            out[f"{section}.{key}"] = _absolute(value, base)
    return out


def _absolute(path: str, base: Path) -> str:
    """``path`` made absolute against ``base`` (if relative) and normalised: no "configs/../"."""
    return os.path.abspath(base / Path(path).expanduser())


def _anchor_paths(raw: Any, base: Path) -> None:
    """Make relative file names absolute: those a config file gives against its folder, those
    given as overrides or in a mapping against the working directory — so config.yaml
    repeats the run from anywhere."""
    for section, key in PATH_KEYS:
        node = raw.get(section) if isinstance(raw, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str) and node[key]:
            node[key] = _absolute(node[key], base)


class _FlowListDumper(yaml.SafeDumper):
    """Dumps lists inline (``layers: [2, 3, 2]``) and mappings in block style."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The YAML text of a resolved config, keys in schema order."""
    return yaml.dump(dict(cfg), Dumper=_FlowListDumper, sort_keys=False)


def reference_markdown(names: tuple[str, ...] = ("mlp", "dcn")) -> str:
    """The config reference table of docs/configs.md for nnlab's own kinds, generated from their
    schemas: a row per key; where the kinds differ, each kind's default, values or words."""

    def show(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

    def per_kind(texts: dict[str, str], wrap=lambda t: t, sep: str = "; ") -> str:
        if len(set(texts.values())) == 1:
            return wrap(next(iter(texts.values())))
        return sep.join(f"{k}: {wrap(t)}" for k, t in texts.items())

    schemas = {name: schema_of(name) for name in names}
    keys = list(dict.fromkeys(k for s in schemas.values() for k in s))
    order = ["name", "seed", "data.", "model.", "train."]
    keys.sort(key=lambda k: next(i for i, p in enumerate(order) if k.startswith(p)))
    lines = ["| key | models | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key in keys:
        opts = {name: s[key] for name, s in schemas.items() if key in s}
        defaults = {name: show(o.default) for name, o in opts.items()}
        if len(set(defaults.values())) == 1:
            default = f"`{next(iter(defaults.values()))}`"
        else:
            default = " / ".join(f"`{d}` ({k})" for k, d in defaults.items())
        allowed = per_kind({name: describe(o) for name, o in opts.items()})
        doc = per_kind({name: o.doc for name, o in opts.items()})
        lines.append(f"| `{key}` | {', '.join(opts)} | {default} | {allowed} | {doc} |")
    return "\n".join(lines) + "\n"
