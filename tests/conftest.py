"""Shared helpers: running the real CLI in a subprocess, the shipped configs, check-run."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
CHECK_RUN = ROOT.parent / "shared" / "check-run"


def nnlab(
    *args: str, cwd: Path | str | None = None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``python -m nnlab ARGS`` as a user would, capturing its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nnlab", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


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
    """Assert the folders pass ../shared/check-run, the contract checker of DESIGN.md."""
    if not CHECK_RUN.exists():
        pytest.skip(f"{CHECK_RUN} is not present in this checkout")
    result = subprocess.run(
        [sys.executable, str(CHECK_RUN), *map(str, folders)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def moons_small() -> dict:
    """A quick moons config as a mapping (2,000 iterations)."""
    return {
        "name": "moons_small",
        "data": {"name": "moons"},
        "model": {"layers": [2, 3, 2], "activation": "tanh"},
        "train": {"iterations": 2000, "log_every": 200},
    }
