"""`nnlab compare`: what differs between runs, and what it changed.

The config keys whose values differ (only those; for runs of different kinds, only the keys
they share), then each final and best metric side by side, every run after the first with its
difference to the first. Runs are run folders, or a sweep's job folders (their last attempt).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.config import flatten
from nnlab.metrics import COUNTERS, is_accuracy
from nnlab.runs import run_folder as resolve  # a run folder, or a sweep job's last attempt

FORMATS = ("table", "md", "csv", "json")


@dataclass
class Comparison:
    names: list[str]  # each run's folder name (a job's: job/attempt-k)
    config: dict[str, list[Any]]  # dotted key -> each run's value, only keys that differ
    final: dict[str, list[float | None]] = field(default_factory=dict)
    best: dict[str, list[float | None]] = field(default_factory=dict)
    code: list[str] = field(default_factory=list)  # each run's code: commit (+ diff)

    @property
    def same_code(self) -> bool:
        return len(set(self.code)) <= 1

    def sections(self) -> list[tuple[str, dict[str, list]]]:
        return [("config", self.config), ("final", self.final), ("best", self.best)]


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.name.startswith("attempt-") else path.name


def _metrics(summaries: list[dict[str, Any]], part: str) -> dict[str, list[float | None]]:
    """Each metric every run has in summary.json's ``part`` (final or best)."""
    rows = [s.get(part) if isinstance(s.get(part), dict) else {} for s in summaries]
    shared = [k for k in rows[0] if k not in COUNTERS and all(k in r for r in rows[1:])]

    def number(value: Any) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok and math.isfinite(value) else None

    return {k: [number(r[k]) for r in rows] for k in shared}


def _code(run) -> str:
    """The code a run came from: its commit, and a hash of its uncommitted diff if any."""
    from nnlab.provenance import DIFF_FILE, code_label

    label = code_label(run.meta.get("git"))
    diff = run.path / DIFF_FILE
    if label.endswith("+ diff") and diff.is_file():
        label += " " + hashlib.sha1(diff.read_bytes()).hexdigest()[:6]
    return label


def compare_runs(paths: list[Path]) -> Comparison:
    from nnlab.runs import load_run

    runs = [load_run(resolve(Path(p))) for p in paths]
    flats = [{k: v for k, v in flatten(r.config).items() if k != "name"} for r in runs]
    shared = [k for k in flats[0] if all(k in f for f in flats[1:])]
    differ = [k for k in shared if len({json.dumps(f[k], sort_keys=True) for f in flats}) > 1]
    summaries = [r.summary for r in runs]
    return Comparison(
        [_name(r.path) for r in runs],
        {k: [f[k] for f in flats] for k in differ},
        _metrics(summaries, "final"),
        _metrics(summaries, "best"),
        [_code(r) for r in runs],
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


def _cells(section: str, key: str, values: list) -> list[str]:
    if section == "config":
        return [json.dumps(v) if isinstance(v, list | dict) else str(v) for v in values]
    return [_number(key, values[0])] + [
        _number(key, v) + _delta(key, v, values[0]) for v in values[1:]
    ]


def _rows(c: Comparison) -> list[list[str]]:
    rows = []
    for section, entries in c.sections():
        for key, values in entries.items():
            label = key if section == "config" else f"{section} {key}"
            rows.append([label, *_cells(section, key, values)])
    return rows


def render(c: Comparison, fmt: str) -> str:
    header = ["", *c.names]
    if fmt == "json":
        sections = dict(c.sections())
        return json.dumps(
            {"runs": c.names, **sections, "code": c.code, "same_code": c.same_code},
            indent=2,
            allow_nan=False,
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["section", "key", *c.names])
        for section, entries in c.sections():
            for key, values in entries.items():
                writer.writerow([section, key, *["" if v is None else v for v in values]])
        writer.writerow(["code", "commit", *c.code])
        return buffer.getvalue().rstrip("\n")
    rows = _rows(c)
    if not c.config:
        rows.insert(0, ["(config)", *["same" for _ in c.names]])
    if not c.same_code:  # a difference in results may come from the code, not the config
        rows.insert(0, ["code (differs!)", *c.code])
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )
