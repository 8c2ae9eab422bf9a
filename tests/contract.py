"""The run-folder and sweep-folder contracts of docs/run-folder.md, as a test helper.

``problems(*folders)`` says what each folder lacks or gets wrong, one string per problem; an
empty list means every folder keeps its contract. A folder is a run folder, a sweep folder (it
has ``state.json``) or a runs folder holding run and sweep folders, each then checked in turn.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

from nnlab.common.status import RunStatus, texts

STATUSES = texts(RunStatus)
METRIC_COLUMNS = ("step", "train_loss")
ACCURACIES = ("train_acc", "val_acc", "test_acc")
SUMMARY_KEYS = ("status", "final", "best", "n_params", "train_seconds")
SWEEP_FILES = ("sweep.yaml", "summary.csv", "summary.md")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ATTEMPT = re.compile(r"attempt-\d+")


def problems(*folders: Path | str) -> list[str]:
    """Every problem of every folder, each prefixed with the folder it was found in."""
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            found.append(f"{folder}: not a folder")
            continue
        inner = [folder] if _is_run_or_sweep(folder) else _runs_in(folder)
        if not inner:
            found.append(f"{folder}: no meta.json or state.json, nor run or sweep folders inside")
        for each in inner:
            check = sweep_problems if _is_sweep(each) else run_problems
            found += [f"{each}: {p}" for p in check(each)]
    return found


def run_problems(run: Path) -> list[str]:
    """What the run folder ``run`` lacks: its files, its status, its metrics and, once
    completed, its summary, model and plots."""
    found = []
    if not (run / "config.yaml").is_file():
        found.append("no config.yaml")
    meta, meta_problem = _json_object(run / "meta.json")
    found += meta_problem
    if meta is not None and meta.get("status") not in STATUSES:
        found.append(f"meta.json status {meta.get('status')!r} is not one of {', '.join(STATUSES)}")
    completed = meta is not None and meta.get("status") == RunStatus.COMPLETED
    # a run stopped before its first row (interrupted at once) has the header only
    found += _metrics_problems(run / "metrics.csv", need_rows=completed)
    if completed:
        found += _completed_problems(run)
    return found


def sweep_problems(sweep: Path) -> list[str]:
    """What the sweep folder ``sweep`` lacks: its own files, and every run folder under
    ``jobs/<id>/attempt-<k>/`` checked as a run."""
    found = [f"no {name}" for name in SWEEP_FILES if not (sweep / name).is_file()]
    found += _json_object(sweep / "state.json")[1]
    attempts = sorted(p for p in sweep.glob("jobs/*/*") if p.is_dir() and ATTEMPT.fullmatch(p.name))
    if not attempts:
        found.append("no run folder under jobs/<id>/attempt-<k>/")
    for run in attempts:
        where = run.relative_to(sweep).as_posix()
        found += [f"{where}: {p}" for p in run_problems(run)]
    return found


def _is_sweep(folder: Path) -> bool:
    return (folder / "state.json").exists()


def _is_run_or_sweep(folder: Path) -> bool:
    return _is_sweep(folder) or (folder / "meta.json").exists()


def _runs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _is_run_or_sweep(p))


def _json_object(path: Path) -> tuple[dict | None, list[str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, [f"no {path.name}"]
    except (OSError, ValueError) as exc:
        return None, [f"{path.name} does not parse: {exc}"]
    if not isinstance(data, dict):
        return None, [f"{path.name} is not a JSON object"]
    return data, []


def _metrics_problems(path: Path, need_rows: bool) -> list[str]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except FileNotFoundError:
        return ["no metrics.csv"]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [f"metrics.csv does not parse: {exc}"]
    found = [f"metrics.csv has no column {c}" for c in METRIC_COLUMNS if c not in columns]
    if need_rows and not rows:
        found.append("metrics.csv has no rows")
    for name in ACCURACIES:
        if name in columns:
            bad = [r[name] for r in rows if r[name] and not _is_fraction(r[name])]
            if bad:
                found.append(f"metrics.csv {name} {bad[0]} is not a fraction in [0, 1]")
    return found


def _completed_problems(run: Path) -> list[str]:
    summary, found = _json_object(run / "summary.json")
    if summary is not None:
        found += [f"summary.json has no key {k}" for k in SUMMARY_KEYS if k not in summary]
        for part in ("final", "best"):
            values = summary.get(part)
            for name in ACCURACIES:
                value = values.get(name) if isinstance(values, dict) else None
                if value is not None and not _is_fraction(value):
                    found.append(f"summary.json {part}.{name} {value} is not a fraction in [0, 1]")
    if not any((run / name).is_file() for name in ("model.npz", "model.pt")):
        found.append("no model.npz or model.pt")
    plots = sorted((run / "plots").glob("*.png"))
    if not plots:
        found.append("no plots/*.png")
    for plot in plots:
        with open(plot, "rb") as f:
            if f.read(len(PNG_MAGIC)) != PNG_MAGIC:
                found.append(f"plots/{plot.name} is not a PNG file")
    return found


def _is_fraction(value: object) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and 0.0 <= number <= 1.0
