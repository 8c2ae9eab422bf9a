"""Config loading, overrides and validation (library level; the CLI tests cover exit codes)."""

import re

import pytest

from nnlab.common.yamlread import parse_yaml
from nnlab.config.overrides import flatten
from nnlab.config.resolve import (
    BaseConfig,
    all_schemas,
    dump_config,
    load_config,
    schema_of,
    suggest,
)
from nnlab.config.schema import reference_markdown
from nnlab.data.catalog import IDX, names
from nnlab.errors import ConfigError
from tests.conftest import CONFIGS, ROOT


@pytest.mark.parametrize("kind", ["mlp", "dcn"])
def test_empty_config_gets_every_default_of_its_kind(kind):
    cfg = load_config({"model": {"kind": kind}})
    schema = schema_of(kind)
    name = cfg["data"]["name"]
    applies = {k: o for k, o in schema.items() if not o.data_sets or name in o.data_sets}
    assert flatten(cfg).keys() == applies.keys()  # its kind's keys, no other, in schema order
    for dotted, opt in applies.items():
        *sections, leaf = dotted.split(".")
        node = cfg
        for section in sections:
            node = node.get(section, {})
        if dotted == "name":
            assert node[leaf] == "run"
        elif dotted == "model.kind":
            assert node[leaf] == kind
        elif dotted == "data.test_size":
            assert node[leaf] == (0.0 if kind == "mlp" else 0.2)  # moons / digits
        else:
            assert node[leaf] == opt.default, dotted


@pytest.mark.parametrize(
    ("kind", "data", "present", "absent"),
    [
        ("mlp", "moons", {"n_samples", "noise", "test_size"}, {"path", "target", "root"}),
        ("mlp", "blobs", {"n_samples"}, {"noise", "path"}),
        (
            "mlp",
            "breast_cancer",
            {"test_size", "standardize"},
            {"n_samples", "noise", "path", "target", "features", "header", "root", "download"},
        ),
        ("mlp", "fashion_mnist", {"root", "download"}, {"test_size", "n_samples", "noise"}),
        ("mlp", "csv", {"path", "target", "features", "header"}, {"n_samples", "root"}),
        ("dcn", "digits", {"test_size", "val_size"}, {"root", "download"}),
        ("dcn", "mnist", {"root", "download"}, {"test_size"}),
    ],
)
def test_a_resolved_config_keeps_only_the_keys_of_its_kind_and_data_set(
    kind, data, present, absent, tmp_path
):
    given: dict = {"model": {"kind": kind}, "data": {"name": data}}
    if data == "csv":
        given["data"]["path"] = str(tmp_path / "table.csv")
    cfg = load_config(given)
    assert present <= cfg["data"].keys() and not absent & cfg["data"].keys()
    assert load_config(cfg) == cfg  # what a run folder saves reads back the same
    # a key that does not apply is checked, then left out, by sweeps' variants too
    if "noise" in absent and kind == "mlp" and data != "csv":
        assert "noise" not in load_config(given, {"data.noise": 0.3})["data"]
        assert "noise" not in BaseConfig(given).variant({"data.noise": 0.3})["data"]
        with pytest.raises(ConfigError, match="data.noise"):
            load_config(given, {"data.noise": -1})


def test_keys_of_the_other_kind_are_refused():
    with pytest.raises(ConfigError, match="train.eval_every applies only to model.kind dcn"):
        load_config({"train": {"eval_every": 10}})
    with pytest.raises(ConfigError, match="model.layers applies only to model.kind mlp"):
        load_config({"model": {"kind": "dcn", "layers": [2, 2]}})
    with pytest.raises(
        ConfigError,
        match="data.name must be one of digits, mnist, fashion_mnist "
        "for model.kind dcn; got 'moons'",
    ):
        load_config({"model": {"kind": "dcn"}, "data": {"name": "moons"}})


def test_nested_lr_decay_section_and_dotted_override():
    cfg = load_config(
        {"model": {"kind": "dcn"}, "train": {"lr_decay": {"kind": "step"}}},
        ["train.lr_decay.gamma=0.5"],
    )
    assert cfg["train"]["lr_decay"] == {"kind": "step", "gamma": 0.5, "step_size": 1}
    with pytest.raises(ConfigError, match="unknown key train.lr_decay.rate"):
        load_config({"model": {"kind": "dcn"}}, ["train.lr_decay.rate=1"])


def test_idx_data_sets_have_their_own_test_files():
    cfg = load_config({"model": {"kind": "dcn"}, "data": {"name": "fashion_mnist"}})
    assert "test_size" not in cfg["data"]  # it does not apply: their test files are the test
    with pytest.raises(ConfigError, match="data.test_size does not apply to mnist"):
        load_config({"model": {"kind": "dcn"}, "data": {"name": "mnist", "test_size": 0.1}})


def test_name_defaults_to_file_stem_and_breast_cancer_holds_out_20_percent(tmp_path):
    path = tmp_path / "my_exp.yaml"
    path.write_text("data:\n  name: breast_cancer\n")
    cfg = load_config(path)
    assert cfg["name"] == "my_exp"
    assert cfg["data"]["test_size"] == 0.2


def test_overrides_as_strings_are_parsed_as_yaml():
    cfg = load_config(
        {},
        [
            "model.layers=[2,5,5,2]",
            "train.epsilon=5e-3",
            "model.activation=relu",
            "data.standardize=true",
            "seed=3",
        ],
    )
    assert cfg["model"]["layers"] == [2, 5, 5, 2]
    assert cfg["train"]["epsilon"] == 0.005
    assert cfg["model"]["activation"] == "relu"
    assert cfg["data"]["standardize"] is True
    assert cfg["seed"] == 3


def test_integer_given_for_a_float_is_accepted_as_float():
    cfg = load_config({"train": {"epsilon": 1}})
    assert cfg["train"]["epsilon"] == 1.0 and isinstance(cfg["train"]["epsilon"], float)


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"train": {"learning_rate": 0.1}},
            "unknown key train.learning_rate (did you mean train.epsilon?)",
        ),
        ({"train": {"weight_decay": 0.1}}, "did you mean train.reg_lambda?"),
        ({"model": {"activaton": "tanh"}}, "did you mean model.activation?"),
        ({"model": {"epsilon": 0.1}}, "did you mean train.epsilon?"),
        ({"sead": 1}, "unknown key sead (did you mean seed?)"),
        ({"train": {"iterations": True}}, "train.iterations must be an integer >= 1; got True"),
        ({"train": {"iterations": "100"}}, "train.iterations must be an integer"),
        ({"train": {"epsilon": -0.1}}, "train.epsilon must be a number > 0; got -0.1"),
        ({"train": {"epsilon": float("nan")}}, "train.epsilon must be a number > 0"),
        ({"model": {"layers": [2]}}, "model.layers must be a list of at least 2 integers"),
        ({"model": {"layers": "2,3,2"}}, "model.layers must be a list"),
        (
            {"model": {"activation": "rleu"}},
            "one of sigmoid, tanh, relu; got 'rleu' (did you mean relu?)",
        ),
        (
            {"data": {"test_size": 1.0}},
            "data.test_size must be a number >= 0 and < 1 (or null); got 1.0",
        ),
        ({"data": []}, "data must be a section of keys"),
    ],
)
def test_invalid_configs_name_the_key_and_what_is_allowed(raw, message):
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: [1\n", "malformed YAML at line 2, column 1"),
        ("a: b: c\n", "malformed YAML at line 1, column 5"),
        (
            "x: !!python/object/apply:os.system [echo]\n",
            "YAML tag '!!python/object/apply:os.system'",
        ),
        ("x: !custom 3\n", "YAML tag '!custom' is not allowed"),
    ],
)
def test_yaml_problems(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_yaml(text, "f.yaml")


def test_override_must_have_an_equals_sign():
    with pytest.raises(ConfigError, match="'train.epsilon' is not of the form KEY=VALUE"):
        load_config({}, ["train.epsilon"])


def test_dumped_config_loads_back_identically(tmp_path):
    cfg = load_config(CONFIGS / "breast_cancer_relu.yaml", ["model.layers=[30, 7, 2]"])
    path = tmp_path / "again.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    assert "layers: [30, 7, 2]" in path.read_text()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_are_valid_and_fit_their_data(path):
    cfg = load_config(path)
    if cfg["model"]["kind"] == "mlp" and cfg["data"]["name"] in names(source=IDX):
        # not bundled (the tests must pass without them): 28x28 images of 10 classes
        assert cfg["model"]["layers"][0] == 784 and cfg["model"]["layers"][-1] == 10
    elif cfg["model"]["kind"] == "mlp":
        from nnlab.data.tabular import check_fits, load_data

        check_fits(cfg, load_data(cfg))
    elif cfg["data"]["name"] == "digits":  # the IDX sets are not bundled; digits always is
        from nnlab.data.images import load_images
        from nnlab.models.dcn.network import check_image_size

        check_image_size(load_images(cfg).image_size, cfg["model"]["conv_channels"])


def test_docs_config_reference_is_generated_from_the_schema():
    reference = (ROOT / "docs" / "configs.md").read_text()
    assert reference_markdown() in reference, (
        "docs/configs.md's config reference is stale; regenerate it with "
        "`python -c 'from nnlab.config.schema import reference_markdown as r; print(r())'`"
    )


def test_every_alias_names_a_real_key_and_a_real_leaf_name_wins_over_an_alias():
    """Aliases are declared on the options they point to: each one, given in its option's
    section, suggests that option; none is the leaf name of a real key (which would win, so
    that model.epochs suggests train.epochs, not the MLP's train.iterations)."""
    schemas = all_schemas()
    leaves = {k.rsplit(".", 1)[-1] for schema in schemas.values() for k in schema}
    for kind, schema in schemas.items():
        for key, opt in schema.items():
            section = key.rpartition(".")[0]
            for alias in opt.aliases:
                assert alias not in leaves, (kind, key, alias)
                given = f"{section}.{alias}" if section else alias
                assert suggest(given) == f" (did you mean {key}?)", (kind, key, alias)
    assert suggest("model.epochs") == " (did you mean train.epochs?)"
    assert suggest("train.step_size") == " (did you mean train.lr_decay.step_size?)"
    assert suggest("model.lr") == " (did you mean train.epsilon?)"
