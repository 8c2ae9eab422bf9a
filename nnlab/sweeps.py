"""Sweeps: a grid of variants of one base config, run in parallel, resumable, tabulated.

A sweep file names a base config and the dotted keys that vary (``grid``: a cartesian product;
``variants``: explicit override sets; ``seeds``: repeat every point). Every job's config is
expanded and validated before the first job starts. Each job is a normal run folder made by the
same code as ``nnlab train``, under ``jobs/<id>/attempt-<k>/``; ``state.json`` records every
job's status and attempts, written atomically at each change, so a sweep killed at any moment
resumes where it stopped.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import itertools
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from nnlab.config import SCHEMA, flatten, load_config, parse_overrides, read_yaml_file, suggest
from nnlab.errors import ConfigError, NnlabError
from nnlab.executors import Executor, LocalExecutor, Outcome, Task
from nnlab.runs import (
    atomic_write_json,
    atomic_write_text,
    create_run_dir,
    load_run,
    read_metrics,
)

SWEEP_KEYS = ("name", "base", "grid", "variants", "seeds", "table")
DONE = ("completed", "diverged")  # results: never run again
JOB_STATUSES = ("pending", "running", "completed", "failed", "diverged", "interrupted")
METRIC_LABELS = {
    "test_acc": "Test accuracy (%)", "train_acc": "Train accuracy (%)",
    "val_acc": "Validation accuracy (%)", "test_loss": "Test loss", "train_loss": "Train loss",
    "val_loss": "Validation loss",
}  # fmt: skip
PRETTY = {"relu": "ReLU", "sgd": "SGD", "adam": "Adam"}


@dataclass
class Job:
    id: str
    overrides: dict[str, Any]  # the dotted keys this job sets (grid, variant, seed)
    config: dict[str, Any]  # fully resolved


@dataclass
class SweepSpec:
    """A sweep file, expanded: its base config and every job, all validated."""

    name: str
    base_path: Path
    base_overrides: dict[str, Any]
    grid: dict[str, list]
    variants: list[dict[str, Any]]
    seeds: list[int] | None
    tables: list[dict[str, str]]
    base_config: dict[str, Any]  # the resolved base config, -s overrides included
    jobs: list[Job] = field(default_factory=list)

    @property
    def varying(self) -> list[str]:
        """The dotted keys that differ between jobs, in the order they were declared."""
        keys = list(self.grid)
        for variant in self.variants:
            keys += [k for k in variant if k not in keys]
        if self.seeds:
            keys.append("seed")
        return keys

    def resolved(self) -> dict[str, Any]:
        """What sweep.yaml records: enough to compare a later start with this one."""
        return {
            "sweep": {
                "name": self.name,
                "base": str(self.base_path),
                "overrides": self.base_overrides,
                "grid": self.grid,
                "variants": self.variants,
                "seeds": self.seeds,
                "table": self.tables,
            },
            "base_config": self.base_config,
            "jobs": {job.id: job.overrides for job in self.jobs},
        }


# -- expanding a sweep file ------------------------------------------------------------------


def _fmt_value(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(_fmt_value(v) for v in value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def job_id(overrides: Mapping[str, Any]) -> str:
    """A stable, readable folder name from a job's overrides, e.g.
    ``activation=tanh,layers=2-3-3-2,seed=0``; keys are shortened to their last part unless
    two would collide, unsafe characters become ``_``, and long names end in a hash."""
    leaves = [k.rsplit(".", 1)[-1] for k in overrides]
    parts = []
    for key, value in overrides.items():
        leaf = key.rsplit(".", 1)[-1]
        parts.append(f"{leaf if leaves.count(leaf) == 1 else key}={_fmt_value(value)}")
    text = ",".join(parts) or "base"
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text).strip(".")
    if len(safe) > 100 or safe != text:
        digest = hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
        safe = f"{safe[:90]}-{digest}"
    return safe


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or (key not in SCHEMA):
        raise ConfigError(f"{where}: unknown key {key}{suggest(str(key))}")
    return key


def load_sweep(
    path: str | Path, overrides: Iterable[str] | Mapping[str, Any] | None = None
) -> SweepSpec:
    """Read, expand and validate a sweep file (``-s`` overrides apply to the base config)."""
    path = Path(path)
    raw = read_yaml_file(path)
    if not isinstance(raw, dict) or set(raw) != {"sweep"} or not isinstance(raw["sweep"], dict):
        raise ConfigError(f"{path}: a sweep file holds one mapping under the key 'sweep:'")
    spec = raw["sweep"]
    for key in spec:
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
            hint = f" (did you mean sweep.{close[0]}?)" if close else ""
            raise ConfigError(
                f"{path}: unknown key sweep.{key}{hint}; allowed: " + ", ".join(SWEEP_KEYS)
            )
    if not isinstance(spec.get("base"), str):
        raise ConfigError(
            f"{path}: sweep.base must name the base config file (relative to the sweep file)"
        )
    base_path = (path.parent / spec["base"]).resolve()
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides or [])
    for key in overrides:
        _check_key(key, "-s")

    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: sweep.grid must map dotted keys to lists of values")
    for key, values in grid.items():
        _check_key(key, f"{path}: sweep.grid")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: sweep.grid.{key} must be a non-empty list of values")
    variants = spec.get("variants") or [{}]
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise ConfigError(f"{path}: sweep.variants must be a list of mappings of dotted keys")
    for variant in variants:
        for key in variant:
            _check_key(key, f"{path}: sweep.variants")
    seeds = spec.get("seeds")
    if seeds is not None and (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and s >= 0 for s in seeds)
    ):
        raise ConfigError(f"{path}: sweep.seeds must be a non-empty list of integers >= 0")

    name = spec.get("name") or path.stem
    if not isinstance(name, str):
        raise ConfigError(f"{path}: sweep.name must be a string")
    tables = spec.get("table") or []
    tables = [tables] if isinstance(tables, dict) else tables
    base_cfg = load_config(base_path, overrides)
    sweep = SweepSpec(
        name, base_path, dict(overrides), grid, [v for v in variants if v], seeds, [], base_cfg
    )
    for values in itertools.product(*grid.values()):
        for variant in variants:
            for seed in seeds or [None]:
                job_over = dict(zip(grid, values, strict=True)) | variant
                if seed is not None:
                    job_over["seed"] = seed
                try:
                    cfg = load_config(base_path, {**overrides, **job_over})
                except NnlabError as exc:
                    raise ConfigError(f"job {job_id(job_over)}: {exc}") from None
                sweep.jobs.append(Job(job_id(job_over), job_over, cfg))
    ids = [j.id for j in sweep.jobs]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ConfigError(f"{path}: several jobs have the same overrides: {', '.join(dupes)}")
    sweep.tables = [_check_table(t, sweep, base_cfg, path) for t in tables]
    _check_data(sweep)
    return sweep


def _check_table(table: Any, sweep: SweepSpec, base_cfg: dict, path: Path) -> dict[str, str]:
    if (
        not isinstance(table, dict)
        or not {"rows", "cols"} <= set(table)
        or not set(table) <= {"rows", "cols", "value"}
    ):
        raise ConfigError(
            f"{path}: each sweep.table needs rows and cols (dotted keys that "
            "vary) and may name a value (a metric, e.g. test_acc)"
        )
    for axis in ("rows", "cols"):
        _check_key(table[axis], f"{path}: sweep.table.{axis}")
    has_test = bool(base_cfg["data"].get("test_size")) or base_cfg["data"]["name"] in (
        "mnist",
        "fashion_mnist",
    )
    value = table.get("value") or ("test_acc" if has_test else "train_acc")
    if value not in METRIC_LABELS:
        raise ConfigError(
            f"{path}: sweep.table.value {value!r} is not a metric; allowed: "
            + ", ".join(METRIC_LABELS)
        )
    return {"rows": table["rows"], "cols": table["cols"], "value": value}


def _check_data(sweep: SweepSpec) -> None:
    """MLP jobs: layer sizes against their data (cheap), so a wrong size stops the sweep
    before it starts. DCN data is checked by each job as it starts."""
    from nnlab.data import check_fits, load_data

    seen = {}
    for job in sweep.jobs:
        cfg = job.config
        if cfg["model"]["kind"] != "mlp":
            continue
        key = json.dumps([cfg["data"], cfg["seed"]], sort_keys=True)
        if key not in seen:
            seen[key] = load_data(cfg)
        try:
            check_fits(cfg, seen[key])
        except NnlabError as exc:
            raise ConfigError(f"job {job.id}: {exc}") from None


# -- state ---------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class SweepState:
    """state.json: per job its overrides, status, attempts, run folder, error and final
    metrics; rewritten atomically at every change."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data

    @classmethod
    def new(cls, folder: Path, sweep: SweepSpec) -> SweepState:
        jobs = {
            j.id: {
                "overrides": j.overrides,
                "status": "pending",
                "attempts": 0,
                "run": None,
                "error": None,
                "final": {},
            }
            for j in sweep.jobs
        }
        state = cls(
            folder / "state.json",
            {
                "name": sweep.name,
                "created": _now(),
                "updated": _now(),
                "status": "running",
                "jobs": jobs,
            },
        )
        state.save()
        return state

    @classmethod
    def load(cls, folder: Path) -> SweepState:
        try:
            data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NnlabError(f"{folder} is not a sweep folder (no state.json)") from None
        except (OSError, ValueError) as exc:
            raise NnlabError(f"{folder / 'state.json'}: cannot be read: {exc}") from None
        return cls(folder / "state.json", data)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.data["jobs"]

    def update(self, job: str, **fields: Any) -> None:
        self.jobs[job].update(fields)
        self.save()

    def save(self) -> None:
        self.data["updated"] = _now()
        atomic_write_json(self.path, self.data)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(JOB_STATUSES, 0)
        for job in self.jobs.values():
            out[job["status"]] += 1
        return out


# -- running -------------------------------------------------------------------------------


@dataclass
class Sweep:
    """A sweep folder and what happened in it."""

    path: Path
    state: dict[str, Any]
    tables: list[str] = field(default_factory=list)  # markdown, one per table

    @property
    def failed(self) -> dict[str, str]:
        return {
            k: j.get("error") or ""
            for k, j in self.state["jobs"].items()
            if j["status"] == "failed"
        }


class SweepInterrupted(KeyboardInterrupt):
    def __init__(self, sweep: Sweep):
        super().__init__(f"sweep interrupted: {sweep.path}")
        self.sweep = sweep


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    if old.get("base_config") != new.get("base_config"):
        a, b = flatten(old.get("base_config", {})), flatten(new.get("base_config", {}))
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        changes.append(
            "the base config changed: "
            + ", ".join(f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:6])
        )
    old_jobs, new_jobs = old.get("jobs", {}), new.get("jobs", {})
    added, removed = sorted(set(new_jobs) - set(old_jobs)), sorted(set(old_jobs) - set(new_jobs))
    if added:
        changes.append(f"{len(added)} new jobs ({', '.join(added[:3])}...)")
    if removed:
        changes.append(f"{len(removed)} jobs gone ({', '.join(removed[:3])}...)")
    if old.get("sweep", {}).get("table") != new.get("sweep", {}).get("table"):
        changes.append("the tables changed")
    return changes


def _adopt_finished_attempt(folder: Path, job: dict[str, Any]) -> None:
    """A job marked running when the sweep died may have finished on its own: take its result
    from the attempt's folder instead of running it again."""
    if job["status"] != "running" or not job.get("run"):
        return
    try:
        run = load_run(folder / job["run"])
    except NnlabError:
        job["status"] = "interrupted"
        return
    if run.status in DONE:
        job.update(status=run.status, error=run.error, final=run.summary.get("final", {}))
    else:
        job.update(status="interrupted", error="the sweep process stopped during this job")


def run_sweep(
    sweep_file: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    runs_dir: str | Path = "runs",
    jobs: int | None = None,
    executor: Executor | str = "local",
    resume: str | Path | None = None,
    force: bool = False,
    fail_fast: bool = False,
    retries: int = 0,
    progress: Callable[..., None] | None = None,
    on_job: Callable[[str, dict[str, Any]], None] | None = None,
    address: str | None = None,
    cpus_per_job: int = 1,
) -> Sweep:
    """Run (or resume) a sweep and write its tables and figures.

    Returns the Sweep; raises :class:`SweepInterrupted` on Ctrl-C after marking running jobs
    interrupted. ``progress(done, total, desc=..., unit="job", postfix=...)`` follows the jobs;
    ``on_job(job_id, state_entry)`` is called as each attempt ends. ``executor`` is "local",
    "ray" (``address`` names the cluster; each job asks for ``cpus_per_job`` CPUs) or an
    :class:`~nnlab.executors.Executor`; it is set up before the sweep folder is touched, so
    a cluster that cannot be reached leaves no job marked running.
    """
    if resume is not None:
        folder = Path(resume)
        saved = _read_saved_sweep(folder)
        if sweep_file is None:
            sweep_file = saved["sweep"]["file"]
            overrides = overrides or saved["sweep"]["overrides"]
        sweep = load_sweep(sweep_file, overrides)
        new = sweep.resolved()
        changes = _describe_change(saved, new)
        if changes and not force:
            raise NnlabError(
                f"{folder}: the sweep changed since it started ("
                + "; ".join(changes)
                + "); use --force to resume anyway"
            )
        executor = make_executor(executor, jobs, address, cpus_per_job)
        state = SweepState.load(folder)
        for job in sweep.jobs:
            if job.id not in state.jobs:
                state.jobs[job.id] = {
                    "overrides": job.overrides,
                    "status": "pending",
                    "attempts": 0,
                    "run": None,
                    "error": None,
                    "final": {},
                }
            _adopt_finished_attempt(folder, state.jobs[job.id])
        state.data["status"] = "running"
        state.save()
    else:
        sweep = load_sweep(sweep_file, overrides)
        executor = make_executor(executor, jobs, address, cpus_per_job)
        folder = create_run_dir(runs_dir, sweep.name, kind="sweep")
        record = sweep.resolved()
        record["sweep"]["file"] = str(Path(sweep_file).resolve())
        atomic_write_text(folder / "sweep.yaml", yaml.safe_dump(record, sort_keys=False))
        (folder / "jobs").mkdir()
        state = SweepState.new(folder, sweep)

    todo = [j for j in sweep.jobs if state.jobs[j.id]["status"] not in DONE]
    interrupted = _drive(sweep, state, folder, todo, executor, fail_fast, retries, progress, on_job)
    counts = state.counts()
    state.data["status"] = (
        "interrupted" if interrupted else "failed" if counts["failed"] else "completed"
    )
    state.save()
    result = Sweep(folder, state.data, write_summary(folder, sweep, state))
    if interrupted:
        raise SweepInterrupted(result)
    return result


def make_executor(
    executor: Executor | str, jobs: int | None, address: str | None, cpus_per_job: int
) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor == "ray":
        from nnlab.ray_executor import RayExecutor

        return RayExecutor(address, cpus_per_job, jobs)
    if address is not None:
        raise NnlabError("--address names a Ray cluster: use it with --executor ray")
    return LocalExecutor(jobs)


sweep = run_sweep  # the public name: nnlab.sweep("configs/sweeps/x.yaml", jobs=2)


def load_sweep_folder(folder: Path) -> tuple[SweepSpec, SweepState]:
    """A sweep folder read back from its sweep.yaml and state.json alone (the sweep file and
    its base config may have moved or changed since)."""
    saved = _read_saved_sweep(folder)
    state = SweepState.load(folder)
    try:
        spec, base = saved["sweep"], saved["base_config"]
        sweep = SweepSpec(
            spec["name"],
            Path(spec["base"]),
            spec["overrides"],
            spec["grid"],
            spec["variants"],
            spec["seeds"],
            spec["table"],
            base,
        )
        sweep.jobs = [Job(k, v, load_config(base, v)) for k, v in saved["jobs"].items()]
    except (KeyError, TypeError, AttributeError) as exc:
        raise NnlabError(
            f"{folder / 'sweep.yaml'}: not a sweep record nnlab wrote ({exc})"
        ) from None
    return sweep, state


def _read_saved_sweep(folder: Path) -> dict[str, Any]:
    try:
        saved = yaml.safe_load((folder / "sweep.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NnlabError(f"{folder} is not a sweep folder (no sweep.yaml)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise NnlabError(f"{folder / 'sweep.yaml'}: cannot be read: {exc}") from None
    return saved


def _drive(
    sweep: SweepSpec,
    state: SweepState,
    folder: Path,
    todo: list[Job],
    executor: Executor,
    fail_fast: bool,
    retries: int,
    progress,
    on_job,
) -> bool:
    """Feed jobs to the executor and record every outcome; True if interrupted."""
    by_id = {j.id: j for j in sweep.jobs}
    queue = list(todo)
    tries: dict[str, int] = {}
    running: set[str] = set()
    total = len(sweep.jobs)
    stop = False

    def report() -> None:
        if progress is not None:
            c = state.counts()
            done = c["completed"] + c["diverged"] + c["failed"]
            progress(
                done,
                total,
                desc="jobs",
                unit="job",
                postfix=f"{c['completed']} done, {c['failed']} failed, "
                f"{c['diverged']} diverged, {len(running)} running",
            )

    def start(job: Job) -> None:
        entry = state.jobs[job.id]
        attempt = entry["attempts"] + 1
        run_rel = f"jobs/{job.id}/attempt-{attempt}"
        state.update(job.id, status="running", attempts=attempt, run=run_rel, error=None)
        tries[job.id] = tries.get(job.id, 0) + 1
        running.add(job.id)
        executor.submit(Task(job.id, attempt, job.config, str(folder / run_rel)))

    def finish(outcome: Outcome) -> None:
        nonlocal stop
        running.discard(outcome.job_id)
        entry = state.jobs[outcome.job_id]
        made = entry["run"] and (folder / entry["run"]).is_dir()  # bad data fails before
        state.update(
            outcome.job_id,
            node=outcome.node,
            status=outcome.status,
            error=outcome.error,
            final=outcome.summary.get("final", {}),
            run=entry["run"] if made else None,
        )
        if on_job is not None:
            on_job(outcome.job_id, state.jobs[outcome.job_id])
        if outcome.status == "failed":
            if tries[outcome.job_id] <= retries:
                queue.append(by_id[outcome.job_id])
            elif fail_fast:
                stop = True

    report()
    try:
        while (queue and not stop) or running:
            while queue and not stop and len(running) < executor.slots:
                start(queue.pop(0))
            for outcome in executor.wait(timeout=0.5):
                finish(outcome)
            report()
            if stop and running:
                for outcome in executor.shutdown(cancel=True):
                    finish(outcome)
                for job_id in list(running):
                    state.update(job_id, status="interrupted", error="stopped by --fail-fast")
                    running.discard(job_id)
        for outcome in executor.shutdown():
            finish(outcome)
        return False
    except KeyboardInterrupt:
        for outcome in executor.shutdown(cancel=True):
            finish(outcome)
        for job_id in list(running):
            state.update(job_id, status="interrupted", error="interrupted by the user")
        return True


# -- summary -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, str):
        return PRETTY.get(value, value[:1].upper() + value[1:])
    return json.dumps(value) if isinstance(value, list | bool) or value is None else str(value)


def config_value(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def pivot(
    state: dict[str, Any], sweep: SweepSpec, table: dict[str, str]
) -> tuple[list, list, dict[tuple, list[float]], dict[tuple, int]]:
    """Row values, column values, per cell the metric of every completed job in it, and per
    cell the number of diverged jobs (kept out of the numbers: their last finite row is not
    a result to average)."""
    rows_key, cols_key, value = table["rows"], table["cols"], table["value"]
    rows: dict[str, Any] = {}  # serialised value -> value, in order of first appearance
    cols: dict[str, Any] = {}
    cells, diverged = {}, {}
    for job in sweep.jobs:
        r, c = config_value(job.config, rows_key), config_value(job.config, cols_key)
        rk, ck = json.dumps(r), json.dumps(c)
        rows.setdefault(rk, r)
        cols.setdefault(ck, c)
        entry = state["jobs"][job.id]
        metric = entry.get("final", {}).get(value)
        if entry["status"] == "completed" and metric is not None:
            cells.setdefault((rk, ck), []).append(metric)
        elif entry["status"] == "diverged":
            diverged[(rk, ck)] = diverged.get((rk, ck), 0) + 1
    return list(rows.values()), list(cols.values()), cells, diverged


@dataclass
class Table:
    """A pivot table ready to render: cells are (text, is_best) pairs."""

    title: str
    header: list[str]
    rows: list[list[tuple[str, bool]]]
    note: str

    def markdown(self) -> str:
        def md(text: str, best: bool = False) -> str:
            text = text.replace("|", "\\|")
            return f"**{text}**" if best else text

        lines = [
            self.title,
            "",
            "| " + " | ".join(md(h) for h in self.header) + " |",
            "|---" * len(self.header) + "|",
        ]
        lines += ["| " + " | ".join(md(t, b) for t, b in row) + " |" for row in self.rows]
        return "\n".join([*lines, "", self.note]) + "\n"


def pivot_table(state: dict[str, Any], sweep: SweepSpec, table: dict[str, str]) -> Table:
    """One pivot table: mean (± std when a cell holds several jobs), the best cell marked."""
    rows, cols, cells, diverged = pivot(state, sweep, table)
    value = table["value"]
    percent = value.endswith("_acc")
    means = {k: statistics.mean(v) for k, v in cells.items()}
    best = (max if percent else min)(means.values()) if means else None

    def cell(r: Any, c: Any) -> tuple[str, bool]:
        key = (json.dumps(r), json.dumps(c))
        vals = cells.get(key)
        note = f" ({diverged[key]} diverged)" if key in diverged else ""
        if not vals:
            return "—" + note, False
        scale = 100 if percent else 1
        mean = statistics.mean(vals)
        text = f"{mean * scale:.2f}" if percent else f"{mean:.4f}"
        if len(vals) > 1:
            sd = statistics.stdev(vals) * scale
            text += f" ± {sd:.2f}" if percent else f" ± {sd:.4f}"
        return text + note, mean == best

    many = any(len(v) > 1 for v in cells.values())
    spread = "mean ± std over the completed jobs in each cell; " if many else ""
    return Table(
        f"{table['rows']} (rows) × {table['cols']} (columns)",
        [METRIC_LABELS[value], *(_show(c) for c in cols)],
        [[(_show(r), False), *(cell(r, c) for c in cols)] for r in rows],
        f"{spread}best cell in bold; — : no completed job; diverged jobs are counted beside "
        "the cell, not averaged.",
    )


def table_markdown(state: dict[str, Any], sweep: SweepSpec, table: dict[str, str]) -> str:
    return pivot_table(state, sweep, table).markdown()


def write_summary(folder: Path, sweep: SweepSpec, state: SweepState) -> list[str]:
    """summary.csv, summary.md and the comparison figures; returns the tables."""
    entries = state.jobs
    metric_keys: list[str] = []
    for e in entries.values():
        metric_keys += [k for k in e.get("final", {}) if k not in metric_keys]
    with open(folder / "summary.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["job", *sweep.varying, "status", "attempts", "run", "error", *metric_keys])
        for job in sweep.jobs:
            e = entries[job.id]
            w.writerow(
                [
                    job.id,
                    *(
                        json.dumps(job.overrides[k])
                        if isinstance(job.overrides.get(k), list)
                        else job.overrides.get(k, "")
                        for k in sweep.varying
                    ),
                    e["status"],
                    e["attempts"],
                    e["run"] or "",
                    e.get("error") or "",
                    *(e.get("final", {}).get(k, "") for k in metric_keys),
                ]
            )
    tables = [table_markdown(state.data, sweep, t) for t in sweep.tables]
    counts = state.counts()
    lines = [
        f"# Sweep {sweep.name}",
        "",
        f"Base config: `{sweep.base_path.name}`; varying: "
        + ", ".join(f"`{k}`" for k in sweep.varying)
        + f"; {len(sweep.jobs)} jobs: "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v),
        "",
    ]
    for t in tables:
        lines += [t, ""]
    failed = {k: e for k, e in entries.items() if e["status"] == "failed"}
    if failed:
        lines += (
            ["## Failed jobs", ""]
            + [f"- `{k}`: {e.get('error')}" for k, e in failed.items()]
            + [""]
        )
    atomic_write_text(folder / "summary.md", "\n".join(lines))
    try:
        comparison_plots(folder, sweep, state.data)
    except Exception as exc:  # figures are extras: never lose the tables over them
        state.data["plot_error"] = f"{type(exc).__name__}: {exc}"
        state.save()
    return tables


def _finished(folder: Path, state: dict, sweep: SweepSpec):
    for job in sweep.jobs:
        e = state["jobs"][job.id]
        if e["status"] in DONE and e.get("run"):
            yield job, folder / e["run"]


def comparison_plots(
    folder: Path, sweep: SweepSpec, state: dict[str, Any], out: Path | None = None, ext: str = "png"
) -> list[Path]:
    """Overlaid curves of every finished job and, for 2-D data, a grid of decision
    boundaries laid out like the first table."""
    from nnlab import plots

    done = list(_finished(folder, state, sweep))
    if not done:
        return []
    out = out or folder / "plots"
    runs = [(_label(job.overrides), read_metrics(path / "metrics.csv")) for job, path in done]
    made = [
        plots.overlaid_curves(
            runs,
            ["test_loss", "val_loss", "train_loss"],
            out / f"loss.{ext}",
            f"Loss — sweep {sweep.name}",
        ),
        plots.overlaid_curves(
            runs,
            ["test_acc", "val_acc", "train_acc"],
            out / f"accuracy.{ext}",
            f"Accuracy — sweep {sweep.name}",
        ),
    ]
    first = done[0][0].config
    if first["model"]["kind"] == "mlp" and first["model"]["layers"][0] == 2:
        made.append(_boundary_grid(done, sweep, state, out / f"decision_boundaries.{ext}"))
    return [p for p in made if p is not None]


def _label(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={_fmt_value(v)}" for k, v in overrides.items())


def _boundary_grid(done: list, sweep: SweepSpec, state: dict[str, Any], path: Path) -> Path:
    from nnlab import plots
    from nnlab.experiment import MLPJob

    first_seed = sweep.seeds[0] if sweep.seeds else None
    done = [(j, p) for j, p in done if first_seed is None or j.overrides.get("seed") == first_seed]
    if sweep.tables:
        t = sweep.tables[0]

        def at(job: Job, axis: str) -> str:
            return json.dumps(config_value(job.config, t[axis]))

        rows = list(dict.fromkeys(at(j, "rows") for j in sweep.jobs))
        cols = list(dict.fromkeys(at(j, "cols") for j in sweep.jobs))
        place = {j.id: (rows.index(at(j, "rows")), cols.index(at(j, "cols"))) for j, _ in done}
        shape = (len(rows), len(cols))
    else:
        ncols = min(4, len(done))
        place = {j.id: divmod(i, ncols) for i, (j, _) in enumerate(done)}
        shape = (math.ceil(len(done) / ncols), ncols)
    panels = []
    for job, run_path in done:
        trained = MLPJob(job.config)
        trained.load_model(run_path)
        loss = state["jobs"][job.id].get("final", {}).get("train_loss", float("nan"))
        title = (
            f"{job.config['model']['layers']} {job.config['model']['activation']}\nloss {loss:.4f}"
        )
        panels.append((place[job.id], trained.model.predict, trained.data, title))
    return plots.decision_boundary_grid(
        panels, shape, path, f"Decision boundaries — sweep {sweep.name}"
    )


def sweep_summary_text(sweep: Sweep) -> str:
    """What the CLI prints at the end: the tables, then failed jobs with their errors."""
    parts = list(sweep.tables)
    for job, error in sweep.failed.items():
        parts.append(f"failed: {job}: {error}")
    return "\n".join(parts)
