"""`nnlab compare`: what differs between runs, and what it changed.

The config keys whose values differ (only those; for runs of different kinds, only the keys
they share), then each final and best metric side by side, every run after the first with its
difference to the first. Runs are run folders, or a sweep's job folders (their last attempt).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.metrics import COUNTERS, is_accuracy
from nnlab.common.tables import csv_text, grid, json_text
from nnlab.config.overrides import flatten
from nnlab.errors import NnlabError
from nnlab.runfolder.provenance import DIFF_FILE, code_label
from nnlab.runfolder.runs import load_run, run_folder
from nnlab.runfolder.types import Summary
from nnlab.sweeps.folder import load_sweep_folder
from nnlab.sweeps.summary import finished_jobs

NO_GIT = "no git"  # nnlab.runfolder.provenance.code_label of a run outside a repository
NOT_RECORDED = "not recorded"  # a run without an environment in meta.json (an older run)
_MISSING = "\0missing"  # a key a run lacks, as a value that differs from every other


def resolve(path: Path) -> Path:
    """A run folder: the folder itself, or a sweep job's last attempt."""
    if (path / "state.json").is_file() and not (path / "meta.json").exists():
        raise NnlabError(
            f"{path}: not a run folder or a sweep job folder (no meta.json) (a sweep folder: "
            "compare its jobs with --group-by KEY)"
        )
    return run_folder(path)


@dataclass
class Comparison:
    names: list[str]  # each run's folder name (a job's: job/attempt-k)
    config: dict[str, list[Any]]  # dotted key -> each run's value, only keys that differ
    final: dict[str, list[float | None]] = field(default_factory=dict)
    best: dict[str, list[float | None]] = field(default_factory=dict)
    code: list[str] = field(default_factory=list)  # each run's code: commit (+ diff)
    # dotted environment key -> each run's value, only keys that differ among the runs that
    # record one (meta.json "environment"); environment_recorded: which runs do
    environment: dict[str, list[Any]] = field(default_factory=dict)
    environment_recorded: list[bool] = field(default_factory=list)

    @property
    def same_code(self) -> bool | None:
        """True or False when every run records its commit; None when one does not (no git:
        nothing says whether their code is the same)."""
        if NO_GIT in self.code:
            return None
        return len(set(self.code)) <= 1

    def sections(self) -> list[tuple[str, dict[str, list]]]:
        return [
            ("config", self.config),
            ("environment", self.environment),
            ("final", self.final),
            ("best", self.best),
        ]


def run_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.name.startswith("attempt-") else path.name


def _metrics(summaries: list[Summary | None], part: str) -> dict[str, list[float | None]]:
    """Each metric every run has in summary.json's ``part`` (final or best)."""
    parts = [s.to_json().get(part) if s else None for s in summaries]
    rows = [p if isinstance(p, dict) else {} for p in parts]
    shared = [k for k in rows[0] if k not in COUNTERS and all(k in r for r in rows[1:])]

    def number(value: Any) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok and math.isfinite(value) else None

    return {k: [number(r[k]) for r in rows] for k in shared}


def code_of(run) -> str:
    """The code a run came from: its commit, and a hash of its uncommitted diff if any."""
    label = code_label(run.meta.git)
    diff = run.path / DIFF_FILE
    if label.endswith("+ diff") and diff.is_file():
        label += " " + hashlib.sha1(diff.read_bytes()).hexdigest()[:6]
    return label


def differing(flats: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The keys (in order) whose values are not all the same; a missing one is a value."""
    seen = [{json.dumps(f.get(k, _MISSING), sort_keys=True) for f in flats} for k in keys]
    return [k for k, values in zip(keys, seen, strict=True) if len(values) > 1]


def flat_config(run) -> dict[str, Any]:
    return {k: v for k, v in flatten(run.config).items() if k != "name"}


def environments(runs) -> tuple[dict[str, list[Any]], list[bool]]:
    """The environment keys (dotted) whose values differ among the runs that record one, each
    run's value (None where a run records none or lacks the key); and which runs record one."""
    envs = [r.meta.environment for r in runs]
    flats = [flatten(e) if isinstance(e, dict) else None for e in envs]
    recorded = [f is not None for f in flats]
    known = [f for f in flats if f is not None]
    differ = differing(known, list(dict.fromkeys(k for f in known for k in f)))
    return {k: [f.get(k) if f is not None else None for f in flats] for k in differ}, recorded


def load_runs(paths: list[Path]) -> list:
    """The runs of run folders, sweep job folders (their last attempt) and sweep folders (their
    finished jobs), in order."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if (path / "state.json").is_file():
            sweep, state = load_sweep_folder(path)
            folders += [folder for _, folder in finished_jobs(path, sweep, state)]
        else:
            folders.append(resolve(path))
    unique = dict.fromkeys(f.resolve() for f in folders)  # a run named twice counts once
    return [load_run(folder) for folder in unique]


def compare_runs(paths: list[Path]) -> Comparison:
    runs = [load_run(resolve(Path(p))) for p in paths]
    flats = [flat_config(r) for r in runs]
    shared = [k for k in flats[0] if all(k in f for f in flats[1:])]
    differ = differing(flats, shared)
    summaries = [r.summary for r in runs]
    environment, recorded = environments(runs)
    return Comparison(
        [run_name(r.path) for r in runs],
        {k: [f[k] for f in flats] for k in differ},
        _metrics(summaries, "final"),
        _metrics(summaries, "best"),
        [code_of(r) for r in runs],
        environment,
        recorded,
    )


def _number(metric: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.2%}" if is_accuracy(metric) else f"{value:.4g}"


def _delta(metric: str, value: float | None, first: float | None) -> str:
    if value is None or first is None or not math.isfinite(value - first):
        return ""
    if is_accuracy(metric):
        return f" ({(value - first) * 100:+.2f} pt)"
    return f" ({value - first:+.4g})"


def value_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _cells(section: str, key: str, values: list, recorded: list[bool]) -> list[str]:
    if section == "config":
        return [value_text(v) for v in values]
    if section == "environment":
        return [
            NOT_RECORDED if not ok else "—" if v is None else value_text(v)
            for v, ok in zip(values, recorded, strict=True)
        ]
    return [_number(key, values[0])] + [
        _number(key, v) + _delta(key, v, values[0]) for v in values[1:]
    ]


def _rows(c: Comparison) -> list[list[str]]:
    rows = []
    for section, entries in c.sections():
        for key, values in entries.items():
            label = key if section == "config" else f"{section} {key}"
            rows.append([label, *_cells(section, key, values, c.environment_recorded)])
    return rows


def _environment_rows(c: Comparison) -> list[list[str]]:
    """The line that says whether the runs record their environment, or that it is the same."""
    recorded = c.environment_recorded
    if all(recorded) and not c.environment:
        return [["(environment)", *["same" for _ in c.names]]]
    if all(recorded):
        return []
    return [["(environment)", *["recorded" if ok else NOT_RECORDED for ok in recorded]]]


def _code_row(c: Comparison) -> list[list[str]]:
    """The code the runs came from, when it differs or is not known."""
    if c.same_code is True:
        return []
    if all(code == NO_GIT for code in c.code):
        return [["code", *c.code]]  # nothing recorded: no claim either way
    label = "code (differs!)" if c.same_code is False else "code (not all recorded)"
    return [[label, *c.code]]


def render(c: Comparison, fmt: str) -> str:
    header = ["", *c.names]
    if fmt == "json":
        return json_text(
            {
                "runs": c.names,
                **dict(c.sections()),
                "environment_recorded": c.environment_recorded,
                "code": c.code,
                "same_code": c.same_code,
            }
        )
    if fmt == "csv":
        lines = [["section", "key", *c.names]]
        for section, entries in c.sections():
            lines += [[section, key, *values] for key, values in entries.items()]
        lines.append(["code", "commit", *c.code])
        return csv_text([*lines, ["environment", "recorded", *c.environment_recorded]])
    rows = _rows(c)
    at = len(c.config)
    rows[at:at] = _environment_rows(c)  # after the config, before the metrics
    if not c.config:
        rows.insert(0, ["(config)", *["same" for _ in c.names]])
    # a difference in results may come from the code, not the config
    rows[0:0] = _code_row(c)
    return grid(header, rows, fmt)
