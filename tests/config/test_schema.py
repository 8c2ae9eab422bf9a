"""`nnlab schema`: the config's JSON Schema, generated from the one schema, agrees with what
nnlab itself accepts, and every shipped config carries it and validates against it."""

import copy
import json
import math
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlab.common.constraints import Boolean, Integer, ListOf, Number, OneOf, Text
from nnlab.config.options import Option
from nnlab.config.resolve import check_keys, load_config, resolve, schema_of
from nnlab.config.schema import json_schema
from nnlab.errors import NnlabError
from tests.conftest import CONFIGS, nnlab

LINE = "# yaml-language-server: $schema=nnlab.schema.json"


@pytest.fixture(scope="module")
def printed() -> dict:
    result = nnlab("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _valid(schema: dict, cfg: dict) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(cfg)


def test_every_shipped_config_carries_the_schema_and_validates_against_it(printed):
    shipped = sorted(CONFIGS.glob("*.yaml"))
    assert len(shipped) >= 15
    for path in shipped:
        text = path.read_text()
        assert text.splitlines()[0] == LINE, path
        errors = list(jsonschema.Draft202012Validator(printed).iter_errors(yaml.safe_load(text)))
        assert not errors, (path, [e.message for e in errors])


def test_the_shipped_schema_file_is_what_nnlab_schema_prints(printed):
    assert json.loads((CONFIGS / "nnlab.schema.json").read_text()) == printed, (
        "configs/nnlab.schema.json is stale: regenerate it with "
        "`nnlab schema > configs/nnlab.schema.json`"
    )


MLP = {"data": {"name": "moons"}, "model": {"kind": "mlp", "layers": [2, 3, 2]}}
DCN = {"data": {"name": "digits"}, "model": {"kind": "dcn"}}
# (base, dotted key, value): each is checked both ways, by nnlab and by the schema
CASES = {
    "a good learning rate": (MLP, "train.epsilon", 0.05),
    "a learning rate of 0": (MLP, "train.epsilon", 0),
    "a learning rate as text": (MLP, "train.epsilon", "fast"),
    "an unknown activation": (MLP, "model.activation", "rleu"),
    "an unknown top-level key": (MLP, "epochs", 3),
    "an unknown nested key": (MLP, "train.lr", 0.1),
    "an unknown data set": (MLP, "data.name", "cifar"),
    "a layer of 0 units": (MLP, "model.layers", [2, 0, 2]),
    "a fractional validation split": (MLP, "data.val_size", 0.2),
    "a validation count": (MLP, "data.val_size", 20),
    "a validation fraction above 1": (MLP, "data.val_size", 1.5),
    "a null test size": (MLP, "data.test_size", None),
    "a negative seed": (MLP, "seed", -1),
    "a DCN key in an MLP config": (MLP, "model.fc_units", 64),
    "a good dropout": (DCN, "model.dropout", 0.25),
    "a dropout of 1": (DCN, "model.dropout", 1.0),
    "an MLP key in a DCN config": (DCN, "model.activation", "tanh"),
    "a DCN optimizer": (DCN, "train.optimizer", "adam"),
    "an unknown DCN optimizer": (DCN, "train.optimizer", "lbfgs"),
    "a learning-rate decay": (DCN, "train.lr_decay.kind", "cosine"),
    "an unknown decay": (DCN, "train.lr_decay.kind", "linear"),
    "a bool as a count": (DCN, "train.epochs", True),
}


def _with(base: dict, key: str, value) -> dict:
    cfg = json.loads(json.dumps(base))
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return cfg


@pytest.mark.parametrize("case", CASES)
def test_the_schema_accepts_exactly_what_nnlab_accepts(case, printed):
    base, key, value = CASES[case]
    cfg = _with(base, key, value)
    try:
        load_config(cfg)
        accepted = True
    except NnlabError:
        accepted = False
    assert _valid(printed, cfg) == accepted, (case, accepted)


def test_one_kind_schema_refuses_the_other_kind_and_defaults_are_the_schema_defaults():
    result = nnlab("schema", "--kind", "mlp")
    assert result.returncode == 0, result.stderr
    mlp = json.loads(result.stdout)
    assert _valid(mlp, MLP) and not _valid(mlp, DCN)
    train = mlp["properties"]["train"]["properties"]
    resolved = load_config(MLP)["train"]
    assert train["epsilon"]["default"] == resolved["epsilon"]
    assert train["iterations"]["default"] == resolved["iterations"]
    assert "learning rate" in train["epsilon"]["description"]
    bad = nnlab("schema", "--kind", "rnn")
    assert bad.returncode == 2
    assert "'rnn' is not a model kind; allowed: mlp, dcn" in bad.stderr


# The property: for every config, the JSON Schema's verdict is nnlab's. Configs are generated
# from the Options themselves — for every key of either kind, values of its type and of every
# other type, on and past its bounds, whole numbers written as floats, empty strings, nulls —
# with unknown keys, the other kind's keys and sections that are null or not sections.
# Values are JSON's (NaN, which JSON cannot hold, is left out); rules between keys (Nesterov
# needs momentum, ...) are nnlab's alone, so the schema is compared with check_keys, the half
# of load_config it states, and whatever load_config accepts the schema accepts.
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(json_schema())
KINDS = ("mlp", "dcn")
JUNK = st.sampled_from(
    [None, True, False, "", "x", "tanh", 0, 1, -1, 2, 0.5, 1.0, 2.0, 100.0, -3.0, 1e300,
     2**40, 2**1100, float("inf"), float("-inf"), [], [1], [2, 3, 2], ["a"], {}, {"a": 1}]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-5, 5),
    st.integers(-50, 50).map(float),  # whole numbers written as floats
    st.floats(allow_nan=False),
    st.floats(-2, 2, allow_nan=False),
)


def _parts(allowed) -> list:
    """The constraints an option's values are made of: a nullable's inner, an alternative's
    options, a list's items."""
    inner = [getattr(allowed, "inner", None), getattr(allowed, "item", None)]
    inner += list(getattr(allowed, "options", ()))
    return [allowed] + [p for c in inner if c is not None for p in _parts(c)]


def _near(opt: Option) -> st.SearchStrategy:
    """Numbers on and beside the option's bounds, as ints and as floats."""
    bounds = [(getattr(c, "low", None), getattr(c, "high", None)) for c in _parts(opt.allowed)]
    edges = [b for pair in bounds for b in pair if b is not None]
    around = [e + d for e in edges for d in (-1, -1e-9, 0, 1e-9, 1)]
    return st.sampled_from(around or [0]).flatmap(
        lambda x: st.sampled_from([x, float(x), int(x) if math.isfinite(x) else x])
    )


def _values(opt: Option) -> st.SearchStrategy:
    """Values for one option: of its own types (valid or not) and of any other."""
    items = st.one_of(NUMBERS, _near(opt), st.text(max_size=3), JUNK)
    of_type = {
        Text: st.text(max_size=3),
        Boolean: st.booleans(),
        Integer: st.one_of(NUMBERS, _near(opt), st.floats(-0.5, 1.5, allow_nan=False)),
        Number: st.one_of(NUMBERS, _near(opt), st.floats(-0.5, 1.5, allow_nan=False)),
        ListOf: st.lists(st.one_of(_near(opt), st.integers(-3, 300), items), max_size=4),
    }
    parts = _parts(opt.allowed)
    own = [of_type[type(c)] for c in parts if type(c) in of_type]
    choices = [st.sampled_from(c.choices) for c in parts if isinstance(c, OneOf)] * 2
    return st.one_of(*choices, *own, *own, JUNK)


def _set(cfg: dict, key: str, value) -> None:
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


@st.composite
def configs(draw) -> object:
    if draw(st.integers(0, 40)) == 0:
        return draw(st.sampled_from([None, [], "moons", 3]))  # not a mapping (or empty)
    kind = draw(st.sampled_from(KINDS))
    keys = {k: o for name in KINDS for k, o in schema_of(name).items()}
    own = list(schema_of(kind))
    others = sorted(set(keys) - set(own))  # keys of the other kind
    cfg: dict = {}
    given = draw(st.lists(st.sampled_from(own), max_size=6, unique=True))
    for key in given:
        _set(cfg, key, draw(_values(keys[key])))
    kind_is = draw(st.sampled_from(["left out", "stated", "stated", "stated", "any value"]))
    if kind_is == "stated" or (kind_is == "left out" and kind != "mlp"):
        _set(cfg, "model.kind", kind)
    elif kind_is == "any value":
        _set(cfg, "model.kind", draw(_values(keys["model.kind"])))
    extra = draw(st.sampled_from(["none"] * 6 + ["other kind", "unknown", "section"]))
    if extra == "other kind":
        _set(cfg, draw(st.sampled_from(others)), draw(_values(keys[draw(st.sampled_from(others))])))
    elif extra == "unknown":
        where = draw(st.sampled_from(["", "data.", "model.", "train.", "train.lr_decay."]))
        _set(cfg, where + draw(st.sampled_from(["lr", "epochs", "x", "kind2"])), draw(JUNK))
    elif extra == "section":
        section = draw(st.sampled_from(["data", "model", "train", "train.lr_decay",
                                        "train.early_stopping"]))  # fmt: skip
        _set(cfg, section, draw(st.sampled_from([None, 5, "x", [], [1], {}, True])))
    return cfg


def _nnlab_accepts(check, cfg) -> bool:
    try:
        check(copy.deepcopy(cfg))
    except NnlabError:
        return False
    return True


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs())
def test_the_schema_and_the_loader_agree_on_every_generated_config(cfg):
    schema_says = SCHEMA_VALIDATOR.is_valid(cfg)
    keys_say = _nnlab_accepts(check_keys, cfg)
    assert schema_says == keys_say, (cfg, schema_says, keys_say)
    if _nnlab_accepts(resolve, cfg):  # load_config of a mapping
        assert schema_says, cfg


@pytest.mark.slow
def test_a_whole_number_written_as_a_float_and_an_empty_name_are_judged_alike(tmp_path):
    """Through the CLI: what `nnlab schema` prints and what `nnlab train` does agree on the
    reviewer's two cases, the integer key given 100.0 (both take it, as 100) and the empty
    name (both refuse it)."""
    schema = json.loads(nnlab("schema").stdout)
    whole = {**MLP, "train": {"iterations": 20.0, "log_every": 10.0}}
    empty = {**MLP, "name": ""}
    for cfg, ok in ((whole, True), (empty, False)):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        result = nnlab("train", path, "--runs-dir", tmp_path / "runs")
        assert _valid(schema, cfg) is ok, cfg
        assert (result.returncode == 0) is ok, result.stderr
        if ok:
            run = Path(result.stdout.strip().splitlines()[-1])
            saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
            assert saved["iterations"] == 20 and isinstance(saved["iterations"], int)
        else:
            refused = "name must be a non-empty string (or null); got ''"
            assert refused in result.stderr, result.stderr
