"""Fuzzing: arbitrary YAML documents and -s strings through the CLI give a run or a one-line
`nnlab: error:` with exit 2 — never a traceback. NNLAB_FUZZ_EXAMPLES sets how many."""

import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nnlab.cli import main
from nnlab.config.resolve import known_keys

EXAMPLES = int(os.environ.get("NNLAB_FUZZ_EXAMPLES", "200"))
KEYS = [*known_keys(), "bogus", "train.learning_rate", "model", "data", "train", "train.lr_decay"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["tanh", "relu", "moons", "digits", "dcn", "mlp", "xavier"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nest(flat: dict) -> dict:
    out: dict = {}
    for dotted, value in flat.items():
        *sections, leaf = dotted.split(".")
        node = out
        for s in sections:
            nxt = node.get(s)
            if not isinstance(nxt, dict):
                nxt = node[s] = {}
            node = nxt
        node[leaf] = value
    return out


DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6).map(
    lambda d: yaml.safe_dump(_nest(d))
) | st.text(max_size=60)
OVERRIDES = st.lists(
    st.text(max_size=24)
    | st.tuples(st.sampled_from(KEYS), SCALARS).map(
        lambda kv: f"{kv[0]}={yaml.safe_dump(kv[1], default_flow_style=True).strip()}"
    ),
    max_size=3,
)


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    else:  # pragma: no cover - main always exits
        code = None
    return code, capsys.readouterr().err


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=DOCUMENTS, overrides=OVERRIDES)
@example(document="model:\n  activation: relu\n", overrides=["train.epsilon=0.1"])  # a run
@example(document="data: {name: moons}\n", overrides=["model.layers=[2,0]"])  # an error
def test_any_yaml_and_overrides_give_a_run_or_a_one_line_error(document, overrides, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(document, encoding="utf-8")
        args = ["train", str(path), "-q", "--runs-dir", str(Path(tmp) / "runs")]
        for item in overrides:
            args += ["-s", item]
        # keep any valid MLP run short (for a DCN these keys are themselves an error)
        args += ["-s", "train.iterations=3", "-s", "train.log_every=1"]
        code, err = _run_cli(args, capsys)
        assert code in (0, 1, 2), (code, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), err
            assert not (Path(tmp) / "runs").exists() or not any((Path(tmp) / "runs").iterdir())
        else:
            assert len(list((Path(tmp) / "runs").iterdir())) == 1
