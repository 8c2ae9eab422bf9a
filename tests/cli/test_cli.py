"""The real `nnlab` command: bad input, help, gradcheck."""

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from nnlab import cli
from tests.conftest import CONFIGS, nnlab, run_child

MOONS = str(CONFIGS / "moons_tanh.yaml")

BAD_INPUTS = {
    "missing file": (["train", "nope.yaml"], "config file 'nope.yaml' not found"),
    "malformed yaml": (
        ["train", "{bad}"],
        "malformed YAML at line 3, column 16: mapping values are not allowed here",
    ),
    "object tag": (["train", "{tag}"], "YAML tag '!!python/object:os.system' is not allowed"),
    "unknown key": (
        ["train", MOONS, "-s", "train.learning_rate=0.1"],
        "unknown key train.learning_rate (did you mean train.epsilon?)",
    ),
    "wrong type": (
        ["train", MOONS, "-s", "train.iterations=many"],
        "train.iterations must be an integer >= 1; got 'many'",
    ),
    "epsilon <= 0": (
        ["train", MOONS, "-s", "train.epsilon=0"],
        "train.epsilon must be a number > 0",
    ),
    "reg_lambda < 0": (
        ["train", MOONS, "-s", "train.reg_lambda=-0.1"],
        "train.reg_lambda must be a number >= 0; got -0.1",
    ),
    "iterations < 1": (
        ["train", MOONS, "-s", "train.iterations=0"],
        "train.iterations must be an integer >= 1; got 0",
    ),
    "one layer size": (
        ["train", MOONS, "-s", "model.layers=[2]"],
        "model.layers must be a list of at least 2 integers",
    ),
    "size < 1": (["train", MOONS, "-s", "model.layers=[2,0,2]"], "every entry >= 1; got [2, 0, 2]"),
    "input size": (
        ["train", MOONS, "-s", "data.name=breast_cancer"],
        "model.layers[0] is 2 but data set 'breast_cancer' has 30 features",
    ),
    "output size": (
        ["train", MOONS, "-s", "data.name=blobs"],
        "model.layers[-1] is 2 but data set 'blobs' has 3 classes",
    ),
    "activation": (
        ["train", MOONS, "-s", "model.activation=rleu"],
        "model.activation must be one of sigmoid, tanh, relu; got 'rleu'",
    ),
    "init": (
        ["train", MOONS, "-s", "model.init=glorot"],
        "model.init must be one of classic, xavier, he for model.kind mlp; got 'glorot'",
    ),
    "data set": (
        ["train", MOONS, "-s", "data.name=iris"],
        "data.name must be one of moons, circles, blobs, breast_cancer, digits, mnist, "
        "fashion_mnist, csv, npz for model.kind mlp; got 'iris'",
    ),
    "override without =": (
        ["train", MOONS, "-s", "train.epsilon"],
        "override 'train.epsilon' is not of the form KEY=VALUE",
    ),
    "object tag in override": (
        ["train", MOONS, "-s", "name=!!python/object/apply:os.system [ls]"],
        "YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
    "config is a list": (["train", "{listy}"], "a config must be a mapping of keys, got list"),
    "missing argument": (["train"], "Missing argument 'CONFIG'"),
    "unknown command": (["trian"], "No such command 'trian'"),
    "gradcheck unknown key": (
        ["gradcheck", MOONS, "-s", "model.hidden=3"],
        "unknown key model.hidden",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(case, tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  epsilon: 0.1\n  iterations: 5: 6\n")
    (tmp_path / "tag.yaml").write_text("name: !!python/object:os.system x\n")
    (tmp_path / "listy.yaml").write_text("- 1\n- 2\n")
    args, message = BAD_INPUTS[case]
    args = [
        a.format(
            bad=tmp_path / "bad.yaml", tag=tmp_path / "tag.yaml", listy=tmp_path / "listy.yaml"
        )
        for a in args
    ]
    result = nnlab(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_help_is_fast_and_imports_no_heavy_library():
    code = (
        "import sys, time; t = time.perf_counter(); from nnlab.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'numpy', 'sklearn', 'matplotlib') if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t)"
    )
    out = run_child([sys.executable, "-c", code], timeout=60)
    assert out.returncode == 0, out.stderr
    heavy, seconds = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert heavy == "[]"
    assert "train" in out.stdout and "gradcheck" in out.stdout


@pytest.mark.slow
def test_gradcheck_passes_for_every_shipped_moons_config():
    for path in sorted(CONFIGS.glob("moons*.yaml")):
        result = nnlab("gradcheck", path)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        names = [line.split()[0] for line in lines[1:-1]]
        depth = len(path.read_text().split("layers: [")[1].split(",")) - 1
        assert names == [f"{p}{i}" for i in range(1, depth + 1) for p in "Wb"]
        assert all(line.endswith("ok") for line in lines[1:-1])


def test_gradcheck_fails_with_exit_1_when_backprop_is_wrong(monkeypatch, capsys):
    import nnlab.models.mlp.gradcheck as gradcheck
    from nnlab.models.mlp.math import backprop

    def wrong(*args):
        dW, db = backprop(*args)
        dW[0] = dW[0] * 1.001
        return dW, db

    monkeypatch.setattr(gradcheck, "backprop", wrong)
    with pytest.raises(SystemExit) as exc:
        cli.main(["gradcheck", MOONS])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "W1" in out and "FAIL" in out and "b1" in out


def test_ci_runs_the_readme_test_command_and_the_quickstart_trains_moons_tanh():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("nnlab train configs/moons_tanh.yaml")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci


MOONS_QUICK = ["-s", "train.iterations=6000", "-s", "train.log_every=2000"]


@pytest.mark.slow
def test_stderr_that_is_not_a_terminal_gets_plain_metric_rows_and_no_bar_frames(tmp_path):
    result = nnlab("train", CONFIGS / "moons_tanh.yaml", *MOONS_QUICK, "--runs-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "it/s" not in result.stderr, repr(result.stderr)
    rows = result.stderr.splitlines()
    assert len(rows) == 4 and all(r.startswith("step ") for r in rows), rows  # 0, 2000, 4000, end


@pytest.mark.slow
def test_a_terminal_still_gets_the_progress_bar_with_rate_and_eta(tmp_path):
    """stderr a pseudo-terminal: the bar is drawn (its frames end in \\r), with its rate."""
    main, tty = pty.openpty()
    fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    argv = [sys.executable, "-m", "nnlab", "train", CONFIGS / "moons_tanh.yaml", "--runs-dir",
            tmp_path, "-s", "train.iterations=60000", "-s", "train.log_every=20000"]  # fmt: skip
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=tty)
    os.close(tty)
    seen = b""
    try:
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(main, 65536):
                seen += chunk
        assert proc.wait(timeout=300) == 0
    finally:
        os.close(main)
        proc.kill()
        proc.communicate()
    text = seen.decode(errors="replace")
    assert "\r" in text and "it/s" in text and "<" in text, text  # elapsed<remaining, rate
    assert text.count("train_loss") == 4, text  # the rows are printed above the bar
