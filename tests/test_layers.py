"""The architecture holds (docs/design.md, 'Layers'): import-linter's contracts in
pyproject.toml — the layers, and no import cycle inside any package — checked over every
import, those inside functions included; no top-level module beyond the CLI, the experiment
entry point and the errors; no module (Python or the report's JavaScript) over 500 lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"
TOP_LEVEL = {"__init__.py", "__main__.py", "experiment.py", "errors.py"}  # and the cli package
MOST_LINES = 500


def lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the nnlab package under ``root``, with the contracts of its
    pyproject.toml, as a child process whose first import path is ``root``."""
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layers_and_the_acyclic_packages_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path):
    shutil.copytree(
        ROOT / "nnlab", tmp_path / "nnlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    files = tmp_path / "nnlab" / "common" / "files.py"
    files.write_text(
        files.read_text() + "\n\ndef _upward():\n    from nnlab.sweeps import driver\n\n"
        "    return driver\n"
    )
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nnlab.common is not allowed to import nnlab.sweeps" in result.stdout
    assert "nnlab.common.files -> nnlab.sweeps.driver" in result.stdout


def test_a_cycle_between_two_modules_of_a_package_is_found(tmp_path):
    shutil.copytree(
        ROOT / "nnlab", tmp_path / "nnlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    state = tmp_path / "nnlab" / "sweeps" / "state.py"
    state.write_text(state.read_text() + "\n\ndef _back():\n    from nnlab.sweeps import driver\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No cycles are allowed in nnlab.sweeps" in result.stdout


def test_only_the_cli_the_experiment_and_the_errors_are_top_level_modules():
    top = {p.name for p in (ROOT / "nnlab").glob("*.py")}
    assert top == TOP_LEVEL


def test_no_module_is_over_500_lines():
    """Python modules and the report page's scripts (nnlab/**/*.js) alike."""
    files = [*(ROOT / "nnlab").rglob("*.py"), *(ROOT / "nnlab").rglob("*.js")]
    assert any(p.suffix == ".js" for p in files)
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if (n := len(p.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}
