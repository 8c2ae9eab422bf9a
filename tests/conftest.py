"""Test helpers: running the real CLI in a child process, the shipped configs, the run and
sweep contracts."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import contract

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@contextlib.contextmanager
def child_process(
    argv: list, *, cwd: Path | str | None = None, setup: Callable[[], None] | None = None
) -> Iterator[subprocess.Popen]:
    """Start ARGV with its output captured as text, in a session of its own; on the way out,
    whatever happened, SIGKILL its whole process group so that no run goes on training.

    The child gets SIGINT at its default: a test started from a script's background job
    inherits SIGINT ignored, and a Python child that starts with SIGINT ignored installs no
    KeyboardInterrupt handler, so Ctrl-C would never reach it. ``setup`` runs in the child
    before exec too (to set a resource limit, say)."""

    def before_exec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if setup is not None:
            setup()

    proc = subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        preexec_fn=before_exec,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()


def nnlab_process(*args, **kwargs) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """``python -m nnlab ARGS`` as a :func:`child_process`: signal it, wait for it, read it."""
    return child_process([sys.executable, "-m", "nnlab", *args], **kwargs)


def run_child(argv: list, *, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ARGV as a :func:`child_process` to its end, capturing its output."""
    with child_process(argv, **kwargs) as proc:
        out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def nnlab(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m nnlab ARGS`` as a user would, capturing its output."""
    return run_child([sys.executable, "-m", "nnlab", *args], **kwargs)


def run_dir_of(result: subprocess.CompletedProcess, cwd: Path) -> Path:
    """The run folder a `nnlab train` printed as the last line of stdout."""
    lines = result.stdout.strip().splitlines()
    assert lines, f"no stdout; stderr was:\n{result.stderr}"
    path = Path(lines[-1])
    return path if path.is_absolute() else cwd / path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_run(*folders: Path) -> None:
    """Assert the run, sweep or runs folders keep the contracts of docs/run-folder.md."""
    problems = contract.problems(*folders)
    assert not problems, "\n".join(problems)


@pytest.fixture
def moons_small() -> dict:
    """A quick moons config as a mapping (2,000 iterations)."""
    return {
        "name": "moons_small",
        "data": {"name": "moons"},
        "model": {"layers": [2, 3, 2], "activation": "tanh"},
        "train": {"iterations": 2000, "log_every": 200},
    }


def write_idx(path: Path, array) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz), by the format's
    definition: two zero bytes, type 0x08, the number of dimensions, big-endian sizes, data."""
    import gzip
    import struct

    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def small_mnist(folder: Path, n_train: int = 300, n_test: int = 100, gz: bool = False) -> Path:
    """MNIST-format IDX files of real handwritten digits (scikit-learn's 8x8 digits scaled x3
    and padded to 28x28), written by the tests themselves."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3))) * (255 / 16)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).round().astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", images[:n_train])
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", labels[:n_train])
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", images[n_train : n_train + n_test])
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", labels[n_train : n_train + n_test])
    return folder


def interrupt_after_rows(
    args: list, runs_dir: Path, rows: int, sig: int, timeout: float = 120
) -> tuple[int, str, str]:
    """Start ``nnlab ARGS``, wait until its metrics.csv under runs_dir holds ``rows`` rows,
    send ``sig``; return (exit code, stdout, stderr)."""
    with nnlab_process(*args) as proc:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            metrics = list(Path(runs_dir).glob("*/metrics.csv"))
            if metrics and len(read_csv(metrics[0])) >= rows:
                break
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err
