"""A run's fingerprint: one hash of everything that determines its numbers (docs/run-folder.md,
'Fingerprint'; docs/sweeps.md, 'Reusing runs'). Two runs with one fingerprint log the same
metrics, so a sweep (or ``nnlab train --reuse``) takes a completed run's folder instead of
training it again (nnlab.runfolder.memo).

What goes in, each part built on what meta.json already records (one source of truth):

- **config**: the resolved config (config.yaml) without :data:`IGNORED_KEYS` — the run's
  ``name``, which only names its folder, figures and listing;
- **code**: the git commit of the checkout nnlab is imported from and a SHA-256 of its
  uncommitted changes inside the package folder (``git diff HEAD`` and untracked files);
  without a git checkout, a SHA-256 of the package's source files (``*.py``, ``*.js``);
- **data**: a SHA-256 of each data file the config reads (a CSV or NPZ table's
  ``data.path``, an IDX set's four files); scikit-learn's bundled and generated sets are
  covered by its version;
- **versions**: Python's and the numeric libraries' the kind computes with
  (:meth:`nnlab.models.Kind.numeric_libraries`: NumPy and scikit-learn; PyTorch for the DCN);
- **environment**: meta.json's ``environment`` (threads, device, precision, BLAS library and
  kernel, PyTorch's flags for a kind that uses it, CPU, kernel variables) less its
  ``libraries`` (the versions above stand for them) and each BLAS pool's thread count (which
  depends on whether the pool was loaded before the run's limit, not on the run).

``NNLAB_CODE_DIR`` names another folder to fingerprint as the code (tests point it at a
temporary git repository to stand for a changed diff); unset, it is nnlab's own package.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import nnlab
from nnlab.data.catalog import CATALOG, FILE, IDX
from nnlab.models import kind_of
from nnlab.runfolder.provenance import git_bytes as _git

IGNORED_KEYS = ("name",)  # config keys that cannot change a run's numbers
CODE_DIR_VARIABLE = "NNLAB_CODE_DIR"
SOURCE_SUFFIXES = (".py", ".js")  # the package's source files, hashed without git
_HASHED: dict[tuple[str, int, int, int], str] = {}  # file identity -> its SHA-256


def _sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, remembered per (path, inode, size, mtime) in this
    process so that a sweep's worker hashes a large IDX file once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def code_dir() -> Path:
    """The folder whose code is fingerprinted: ``NNLAB_CODE_DIR`` when set, else the nnlab
    package being run."""
    return Path(os.environ.get(CODE_DIR_VARIABLE) or Path(nnlab.__file__).parent).resolve()


def code_identity(where: Path | None = None) -> dict[str, Any]:
    """``{"commit", "changes"}`` (the SHA-256 of the package folder's uncommitted diff and
    untracked files; "" when clean) in a git checkout that tracks the folder, else
    ``{"source": SHA-256 of its source files}``."""
    where = where or code_dir()
    commit = _git(where, "rev-parse", "--verify", "--quiet", "HEAD")
    tracked = _git(where, "ls-files", "-z", "--", ".") if commit else None
    if commit and tracked:
        diff = _git(where, "diff", "--no-color", "--no-ext-diff", "--binary", "HEAD", "--", ".")
        untracked = _git(where, "ls-files", "-z", "--others", "--exclude-standard", "--", ".")
        if diff is not None and untracked is not None:
            digest = hashlib.sha256(diff)
            for name in sorted(n for n in untracked.decode().split("\0") if n):
                path = where / name
                if path.is_file():
                    digest.update(b"\0" + name.encode() + b"\0" + _sha256_file(path).encode())
            changed = bool(diff) or any(untracked.split(b"\0"))
            changes = digest.hexdigest() if changed else ""
            return {"commit": commit.decode().strip(), "changes": changes}
    digest = hashlib.sha256()
    for path in sorted(p for p in where.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()):
        rel = path.relative_to(where).as_posix()
        digest.update(rel.encode() + b"\0" + _sha256_file(path).encode() + b"\0")
    return {"source": digest.hexdigest()}


def data_files(cfg: Mapping[str, Any]) -> list[Path]:
    """The files a config's data set is read from: a table's ``data.path``, an IDX set's
    image and label files (none for scikit-learn's sets, or IDX files not found)."""
    data = cfg["data"]
    entry = CATALOG.get(data["name"])
    if entry is None:
        return []
    if entry.source == FILE:
        return [Path(data["path"])]
    if entry.source == IDX:
        from nnlab.data.idx import locate_idx_files  # NumPy: only for an IDX set

        root = data.get("root") or ("data" if data.get("download") else None)
        found = locate_idx_files(data["name"], root) or {}
        return [p for split in sorted(found) for p in found[split]]
    return []


def data_identity(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Each data file the config reads (absolute path) -> its SHA-256."""
    return {str(p.resolve()): _sha256_file(p) for p in data_files(cfg) if p.is_file()}


def library_versions(cfg: Mapping[str, Any]) -> dict[str, str | None]:
    """Python's version and those of the libraries the config's kind computes with."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in kind_of(cfg).numeric_libraries():
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def fingerprint(cfg: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint of a run of ``cfg`` (resolved, its threads set) in the environment
    ``env`` (:func:`nnlab.runfolder.environment.record`'s): ``{"sha256", "code", "data"}``
    — the hash and the two parts meta.json does not already hold."""
    config = {k: v for k, v in cfg.items() if k not in IGNORED_KEYS}
    numerics = {k: v for k, v in env.items() if k != "libraries"}
    # a BLAS pool's own count says whether it was loaded before the limit was applied (the
    # process's history), not what this run computes on: train.threads stands for it
    numerics["blas"] = [{k: v for k, v in b.items() if k != "threads"} for b in env.get("blas", [])]
    if "torch" not in kind_of(cfg).numeric_libraries():
        numerics.pop("torch", None)  # imported by an earlier job of the worker: not this one's
    code, data = code_identity(), data_identity(cfg)
    parts = {
        "config": config,
        "code": code,
        "data": data,
        "versions": library_versions(cfg),
        "environment": numerics,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=repr)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "code": code, "data": data}
