"""`nnlab schema`: the config's JSON Schema, generated from the one schema, agrees with what
nnlab itself accepts, and every shipped config carries it and validates against it."""

import json

import jsonschema
import pytest
import yaml

from nnlab.config import load_config
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
