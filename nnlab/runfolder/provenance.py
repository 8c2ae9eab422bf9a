"""Which code produced a run: the git commit, branch and dirty flag of the repository holding
the config (docs/run-folder.md, 'Run folder'), and the uncommitted diff beside it when dirty.

Git is asked with a short timeout; no git, no repository or a git that fails means no record
(never an error: provenance describes a run, it must not stop one).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

DIFF_FILE = "git.diff"
DIFF_LIMIT = 5_000_000  # bytes of diff kept; a larger one is cut, and says so
TIMEOUT = 10.0  # seconds per git command


def git_bytes(where: Path, *args: str) -> bytes | None:
    """``git -C WHERE ARGS``'s output, or None where git fails, is missing or takes too long."""
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git(where: Path, *args: str) -> str | None:
    out = git_bytes(where, *args)
    return None if out is None else out.decode("utf-8", "replace")


def git_state(where: Path) -> tuple[dict[str, Any] | None, str]:
    """The repository holding ``where`` (a folder): ``{"repo", "commit", "branch", "dirty"}``
    and, when tracked files differ from the commit, their diff (else ""). None outside a
    repository. Untracked files do not make it dirty (a new config file is usual)."""
    where = where if where.is_dir() else where.parent
    top = _git(where, "rev-parse", "--show-toplevel")
    if top is None:
        return None, ""
    commit = _git(where, "rev-parse", "--verify", "--quiet", "HEAD")
    branch = _git(where, "symbolic-ref", "--short", "--quiet", "HEAD")
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status and status.strip())
    diff = (_git(where, "diff", "--no-color", "--no-ext-diff", "HEAD") or "") if dirty else ""
    if len(diff) > DIFF_LIMIT:
        diff = diff[:DIFF_LIMIT] + f"\n[nnlab: diff cut at {DIFF_LIMIT:,} bytes]\n"
    state = {
        "repo": top.strip(),
        "commit": commit.strip() if commit else None,  # None: no commit yet
        "branch": branch.strip() if branch else None,  # None: a detached HEAD
        "dirty": dirty,
    }
    return state, diff


def code_label(git: dict[str, Any] | None) -> str:
    """A short name for the code a run came from: 'a1b2c3d4', 'a1b2c3d4 + diff', 'no git'."""
    if not isinstance(git, dict) or not git.get("commit"):
        return "no git"
    return str(git["commit"])[:8] + (" + diff" if git.get("dirty") else "")
