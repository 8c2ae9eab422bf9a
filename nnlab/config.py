"""Experiment configs: the schema, YAML loading, dotted overrides and validation.

The schema below is the single source of truth for every key, its default, its type and what
is allowed. Everything is validated before any work starts, and every error names the dotted
key, what was given and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnlab.errors import ConfigError

KINDS = ("mlp", "dcn")
DATASETS = {
    "mlp": ("moons", "circles", "blobs", "breast_cancer", "digits"),
    "dcn": ("digits", "mnist", "fashion_mnist"),
}
IDX_DATASETS = ("mnist", "fashion_mnist")  # come with their own test set
# Held-out fraction when `data.test_size` is null; IDX sets use their own test files instead.
DEFAULT_TEST_SIZE = {"breast_cancer": 0.2, "digits": 0.2}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
LR_DECAYS = ("none", "step", "exponential", "cosine")


@dataclass(frozen=True)
class ByKind:
    """A default or a set of choices that differs between model kinds."""

    mlp: Any
    dcn: Any


@dataclass(frozen=True)
class Option:
    """One config key: its default, its type, the values allowed and the model kinds it serves.

    kind is one of "str", "int", "float", "bool", "int_list". Bounds are inclusive unless the
    matching ``*_open`` flag is set. ``default`` and ``choices`` may be :class:`ByKind`.
    """

    default: Any
    type: str
    doc: str
    choices: tuple | ByKind = ()
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    nullable: bool = False
    min_len: int = 0
    kinds: tuple[str, ...] = KINDS

    def default_for(self, kind: str) -> Any:
        value = getattr(self.default, kind) if isinstance(self.default, ByKind) else self.default
        return copy.deepcopy(value)

    def choices_for(self, kind: str) -> tuple:
        return getattr(self.choices, kind) if isinstance(self.choices, ByKind) else self.choices


MLP, DCN = ("mlp",), ("dcn",)

# fmt: off
SCHEMA: dict[str, Option] = {
    "name": Option(None, "str", "run name, used in the run folder's name; default: the file's stem",
                   nullable=True),
    "seed": Option(0, "int", "drives data generation, splits, initialisation, shuffling, dropout",
                   low=0, high=2**32 - 1),
    "data.name": Option(ByKind("moons", "digits"), "str", "data set",
                        choices=ByKind(DATASETS["mlp"], DATASETS["dcn"])),
    "data.n_samples": Option(200, "int", "number of points (moons, circles, blobs)", low=2,
                             kinds=MLP),
    "data.noise": Option(0.2, "float", "noise of moons / circles", low=0, kinds=MLP),
    "data.test_size": Option(None, "float", "fraction held out for testing; null: 0.2 for "
                             "breast_cancer and digits, else 0 (mnist sets: their test files)",
                             low=0, high=1, high_open=True, nullable=True),
    "data.standardize": Option(False, "bool",
                               "z-score features with statistics of the training split", kinds=MLP),
    "data.val_size": Option(5000, "int", "validation images carved from the training images "
                            "(at most 10% of them)", low=0, kinds=DCN),
    "data.root": Option(None, "str", "folder holding the IDX files (flat or <root>/MNIST/raw/)",
                        nullable=True, kinds=DCN),
    "data.download": Option(False, "bool", "let torchvision download mnist / fashion_mnist",
                            kinds=DCN),
    "model.kind": Option("mlp", "str", "mlp: NumPy MLP; dcn: PyTorch convolutional network",
                         choices=KINDS),
    "model.layers": Option([2, 3, 2], "int_list", "layer sizes: input, hidden..., output",
                           low=1, min_len=2, kinds=MLP),
    "model.activation": Option("tanh", "str", "hidden-layer activation", choices=ACTIVATIONS,
                               kinds=MLP),
    "model.init": Option(ByKind("classic", "default"), "str",
                         "mlp: classic randn/sqrt(fan_in), xavier (Glorot normal), he; "
                         "dcn: default (PyTorch's), xavier (Glorot uniform), he; biases zero",
                         choices=ByKind(("classic", "xavier", "he"), ("default", "xavier", "he"))),
    "model.conv_channels": Option([32, 64], "int_list", "channels of each conv + ReLU + "
                                  "max-pool 2 stage", low=1, min_len=1, kinds=DCN),
    "model.kernel_size": Option(5, "int", "conv kernel size ('same' padding)", low=1, kinds=DCN),
    "model.fc_units": Option(1024, "int", "units of the hidden fully connected layer", low=1,
                             kinds=DCN),
    "model.dropout": Option(0.5, "float", "dropout before the output layer", low=0, high=1,
                            high_open=True, kinds=DCN),
    "train.epsilon": Option(0.01, "float", "learning rate", low=0, low_open=True),
    "train.reg_lambda": Option(0.01, "float", "L2 penalty (mlp) / weight decay (dcn)", low=0),
    "train.iterations": Option(20000, "int", "full-batch gradient-descent steps", low=1,
                               kinds=MLP),
    "train.log_every": Option(ByKind(1000, 100), "int", "mlp: iterations between metric rows; "
                              "dcn: steps between training rows", low=1),
    "train.optimizer": Option("sgd", "str", "optimizer", choices=("sgd", "adam"), kinds=DCN),
    "train.momentum": Option(0.9, "float", "SGD momentum", low=0, high=1, high_open=True,
                             kinds=DCN),
    "train.epochs": Option(2, "int", "passes over the training images", low=1, kinds=DCN),
    "train.batch_size": Option(50, "int", "images per step", low=1, kinds=DCN),
    "train.eval_every": Option(500, "int", "steps between validation/test evaluations (also "
                               "at every epoch end)", low=1, kinds=DCN),
    "train.lr_decay.kind": Option("none", "str", "learning-rate schedule, stepped per epoch",
                                  choices=LR_DECAYS, kinds=DCN),
    "train.lr_decay.gamma": Option(0.9, "float", "decay factor (step, exponential)", low=0,
                                   low_open=True, high=1, kinds=DCN),
    "train.lr_decay.step_size": Option(1, "int", "epochs between decays (step)", low=1,
                                       kinds=DCN),
    "train.stats_every": Option(100, "int", "steps between layer statistics (0: none)", low=0,
                                kinds=DCN),
    "train.precision": Option("float32", "str", "bfloat16: mixed-precision forward pass (fast "
                              "on CPUs with AMX / avx512_bf16 and on recent GPUs)",
                              choices=("float32", "bfloat16"), kinds=DCN),
    "train.device": Option("auto", "str", "auto: cuda when available, else cpu",
                           choices=("auto", "cpu", "cuda"), kinds=DCN),
    "train.tensorboard": Option(True, "bool", "write TensorBoard event files to tb/", kinds=DCN),
}
# fmt: on

# Every dotted prefix that names a section of keys: data, model, train, train.lr_decay.
SECTIONS = tuple(
    dict.fromkeys(".".join(k.split(".")[:i]) for k in SCHEMA for i in range(1, k.count(".") + 1))
)

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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses every tag outside plain YAML, with a message that says so."""


def _refuse_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConfigError(
        f"YAML tag {tag!r} is not allowed (line {node.start_mark.line + 1}): "
        "nnlab reads plain YAML only, no tags that construct objects"
    )


# YAML 1.1 reads `1e-3` (no dot) as a string; read it as the float everyone means.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)
_StrictLoader.add_multi_constructor("", _refuse_tag)  # every tag SafeLoader does not know


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text safely; ``where`` names the source in error messages."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - strict safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "cannot parse"
        raise ConfigError(f"{where}: malformed YAML{at}: {problem}") from None
    except yaml.YAMLError as exc:  # e.g. a control character: its message spans lines
        raise ConfigError(f"{where}: malformed YAML: {' '.join(str(exc).split())}") from None


def read_yaml_file(path: str | Path) -> Any:
    """Read and parse a YAML file, turning every file problem into a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_yaml(text, str(path))


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
                f"override {item!r} is not of the form KEY=VALUE (e.g. -s train.epsilon=0.005)"
            )
        out[key] = parse_yaml(value, f"override {key}") if value.strip() else None
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
                raise ConfigError(f"override {dotted}: {where} is {child!r}, not a section of keys")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def suggest(key: str) -> str:
    """A " (did you mean X?)" hint for an unknown dotted key, or ""."""
    section, _, leaf = key.rpartition(".")
    leaf_l = leaf.lower()
    candidates = []
    if leaf_l in ALIASES:
        target = ALIASES[leaf_l]
        candidates = [k for k in SCHEMA if k.rsplit(".", 1)[-1] == target]
        same = [k for k in candidates if k.startswith(section + ".")] if section else []
        candidates = same or candidates
    if not candidates:
        candidates = [k for k in SCHEMA if k.rsplit(".", 1)[-1] == leaf_l]
    if not candidates:
        candidates = difflib.get_close_matches(key.lower(), list(SCHEMA), n=1, cutoff=0.6)
    if not candidates:
        leaves = {k.rsplit(".", 1)[-1]: k for k in SCHEMA}
        close = difflib.get_close_matches(leaf_l, list(leaves), n=1, cutoff=0.75)
        candidates = [leaves[c] for c in close]
    return f" (did you mean {candidates[0]}?)" if candidates else ""


def _describe(opt: Option, kind: str) -> str:
    """What an option allows, in words: 'a number > 0', 'one of sigmoid, tanh, relu'."""
    if opt.choices_for(kind):
        return "one of " + ", ".join(map(str, opt.choices_for(kind)))
    noun = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "int_list": f"a list of at least {opt.min_len} integers",
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


def _in_bounds(opt: Option, x: float) -> bool:
    if opt.low is not None and (x <= opt.low if opt.low_open else x < opt.low):
        return False
    return not (opt.high is not None and (x >= opt.high if opt.high_open else x > opt.high))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_value(key: str, value: Any, kind: str = "mlp") -> Any:
    """Validate one value against the schema; return it normalised (ints become floats...)."""
    opt = SCHEMA[key]
    if value is None and opt.nullable:
        return None
    ok = False
    if opt.type == "str":
        ok = isinstance(value, str) and value != ""
    elif opt.type == "bool":
        ok = isinstance(value, bool)
    elif opt.type == "int":
        ok = _is_int(value) and _in_bounds(opt, value)
    elif opt.type == "float":
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
        ok = ok and _in_bounds(opt, value)
        value = float(value) if ok else value
    elif opt.type == "int_list":
        ok = (
            isinstance(value, list)
            and len(value) >= opt.min_len
            and all(_is_int(v) and _in_bounds(opt, v) for v in value)
        )
    choices = opt.choices_for(kind)
    if ok and choices and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        for_kind = f" for model.kind {kind}" if isinstance(opt.choices, ByKind) else ""
        raise ConfigError(f"{key} must be {_describe(opt, kind)}{for_kind}; got {value!r}{hint}")
    if not ok:
        raise ConfigError(f"{key} must be {_describe(opt, kind)}; got {value!r}")
    return copy.deepcopy(value)


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_decay": {"kind": "step"}}}`` -> ``{"train.lr_decay.kind": "step"}``,
    refusing unknown keys and sections that are not mappings."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if dotted in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted} must be a section of keys, got {value!r}")
            flat.update(_flatten(value, dotted + "."))
        elif dotted in SCHEMA:
            flat[dotted] = value
        else:
            raise ConfigError(f"unknown key {dotted}{suggest(dotted)}")
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


def resolve(raw: Any, default_name: str = "run") -> dict[str, Any]:
    """Validate a raw nested config and fill in every default.

    Returns the fully resolved nested dict ``{"name", "seed", "data": {...}, ...}`` holding the
    keys that serve its model kind — the form that is saved as config.yaml and that the
    trainers read.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    given = _flatten(raw)
    kind = check_value("model.kind", given.get("model.kind", SCHEMA["model.kind"].default))
    for key in given:
        if kind not in SCHEMA[key].kinds:
            raise ConfigError(
                f"{key} applies only to model.kind {' or '.join(SCHEMA[key].kinds)}, "
                f"and this config's model.kind is {kind}"
            )
    flat = {
        key: check_value(key, given[key] if key in given else opt.default_for(kind), kind)
        for key, opt in SCHEMA.items()
        if kind in opt.kinds
    }
    if flat["name"] is None:
        flat["name"] = default_name
    data_name, test_size = flat["data.name"], flat["data.test_size"]
    if data_name in IDX_DATASETS:
        if test_size is not None:
            raise ConfigError(
                f"data.test_size does not apply to {data_name}, which has its own test files; "
                "leave it out (or null)"
            )
    elif test_size is None:
        flat["data.test_size"] = DEFAULT_TEST_SIZE.get(data_name, 0.0)
    return _nest(flat)


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load, override and validate a config.

    ``source`` is a YAML file path or an already-parsed mapping. ``overrides`` is a mapping of
    dotted keys to values, or a list of ``"key=value"`` strings as given to ``-s``.
    """
    if isinstance(source, Mapping):
        raw, default_name = copy.deepcopy(dict(source)), "run"
    else:
        raw, default_name = read_yaml_file(source), Path(source).stem
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
        raw = apply_overrides(raw, overrides)
    return resolve(raw, default_name)


class _FlowListDumper(yaml.SafeDumper):
    """Dumps lists inline (``layers: [2, 3, 2]``) and mappings in block style."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The YAML text of a resolved config, keys in schema order."""
    return yaml.dump(dict(cfg), Dumper=_FlowListDumper, sort_keys=False)


def reference_markdown() -> str:
    """The README's config reference table, generated from the schema."""

    def show(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

    lines = ["| key | models | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key, opt in SCHEMA.items():
        if isinstance(opt.default, ByKind):
            default = " / ".join(f"`{show(opt.default_for(k))}` ({k})" for k in KINDS)
        else:
            default = f"`{show(opt.default)}`"
        if isinstance(opt.choices, ByKind):
            allowed = "; ".join(f"{k}: {_describe(opt, k)}" for k in KINDS)
        else:
            allowed = _describe(opt, opt.kinds[0])
        lines.append(f"| `{key}` | {', '.join(opt.kinds)} | {default} | {allowed} | {opt.doc} |")
    return "\n".join(lines) + "\n"
