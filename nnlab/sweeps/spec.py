"""A sweep file, read, expanded into jobs and validated (docs/sweeps.md, 'Sweep files').

A sweep file names a base config and the dotted keys that vary (``grid``: a cartesian product;
``variants``: explicit override sets; ``seeds``: repeat every point). Every job's config is
expanded and validated, and checked by its model kind (:meth:`nnlab.models.Kind.precheck`),
before the first job starts, so that one bad job stops the sweep before its folder is made.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.constraints import (
    ANYTHING,
    Fields,
    Integer,
    ListOf,
    Nullable,
    OneOf,
    Text,
    mapping,
    refuse_unknown_keys,
    require,
)
from nnlab.common.metrics import LABELS
from nnlab.common.yamlread import clip, read_yaml_file, shown
from nnlab.config.overrides import anchor_overrides, parse_overrides
from nnlab.config.resolve import BaseConfig, known_keys, suggest
from nnlab.data.catalog import has_test_split
from nnlab.errors import ConfigError, NnlabError
from nnlab.models import check_memory, kind_of
from nnlab.sweeps.search.space import SearchSpec, parse_search

SAMPLERS = "random, tpe or nsga2"  # the methods that search

SWEEP_KEYS = OneOf(
    ("name", "base", "grid", "variants", "seeds", "table", "search", "params", "pruner")
)
# What the entries of ``sweep:`` allow (dotted keys are checked against the kinds' options).
SWEEP = mapping()
BASE = Text(1, words="the name of the base config file (relative to the sweep file)")
GRID = mapping("a mapping of dotted keys to lists of values")
GRID_VALUES = ListOf(min_len=1, words="a non-empty list of values")
VARIANTS = ListOf(mapping(), words="a list of mappings of dotted keys")
SEEDS = Nullable(ListOf(Integer(0, exact=True), 1, words="a non-empty list of integers >= 0"))
NAME = Text(words="a string")
TABLE = Fields(
    "a mapping: rows and cols (dotted keys that vary), and value (a metric, e.g. test_acc)",
    {"rows": ANYTHING, "cols": ANYTHING, "value": ANYTHING},
    ("rows", "cols"),
    closed=True,
)
METRIC = OneOf(LABELS)
# The most jobs one sweep may have: every job is a line of sweep.yaml and an entry of
# state.json (rewritten as jobs change) and a resolved config in memory; counted before the
# grid is expanded, so that a mistyped grid is refused at once instead of filling memory.
MAX_JOBS = 100_000
SHOWN_DUPLICATES = 5  # job ids an error lists (the rest are counted): one line stays readable


@dataclass
class Job:
    """One point of a sweep ("job" in state.json and in ``jobs/<id>/``)."""

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
    search: SearchSpec | None = None  # a search: Optuna asks for the jobs as the sweep runs

    @property
    def varying(self) -> list[str]:
        """The dotted keys that differ between jobs, in the order they were declared."""
        keys = list(self.grid) + (list(self.search.params) if self.search else [])
        for variant in self.variants:
            keys += [k for k in variant if k not in keys]
        if self.seeds or (self.search and self.search.confirm):
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
                **({"search": self.search.to_json()} if self.search else {}),
            },
            "base_config": self.base_config,
            "jobs": {job.id: job.overrides for job in self.jobs},
        }


def format_value(value: Any, exact: bool = False) -> str:
    """A value as a job id or a label shows it: lists joined by '-', 0.001 as 0.001. Floats
    show 6 significant digits (%g); ``exact`` shows those that %g would round in full
    (0.1000001), so that values alike to 6 digits still read apart."""
    if isinstance(value, list):
        return "-".join(format_value(v, exact) for v in value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        short = f"{value:g}"
        return repr(value) if exact and float(short) != value else short
    return str(value)


def job_id(overrides: Mapping[str, Any], exact: bool = False) -> str:
    """A stable, readable folder name from a job's overrides, e.g.
    ``activation=tanh,layers=2-3-3-2,seed=0``; keys are shortened to their last part unless
    two would collide, unsafe characters become ``_``, and long names end in a hash.
    ``exact`` writes floats in full where %g would round them (see :func:`job_ids`).

    The folder names are a contract (resume finds its jobs by them): never change this rule.
    """
    leaves = [k.rsplit(".", 1)[-1] for k in overrides]
    parts = []
    for key, value in overrides.items():
        leaf = key.rsplit(".", 1)[-1]
        parts.append(f"{leaf if leaves.count(leaf) == 1 else key}={format_value(value, exact)}")
    text = ",".join(parts) or "base"
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text).strip(".")
    if len(safe) > 100 or safe != text:
        safe = f"{safe[:90]}-{_digest(overrides)}"
    return safe


def job_ids(overrides: list[Mapping[str, Any]]) -> list[str]:
    """Every job's id: :func:`job_id`, except where two jobs' ids would be one because %g
    rounds their different values alike (0.1 and 0.1000001): those jobs get exact ids (and
    a hash, should even those be alike: 1 and "1" for a column). So ordinary values keep
    the ids they always had, and distinct values never share a folder."""
    ids = [job_id(o) for o in overrides]
    for k in _shared(ids):
        ids[k] = job_id(overrides[k], exact=True)
    for k in _shared(ids):
        ids[k] = f"{ids[k]}-{_digest(overrides[k])}"
    return ids


def _shared(ids: list[str]) -> list[int]:
    """The positions of the ids that several jobs have."""
    counts = Counter(ids)
    return [k for k, i in enumerate(ids) if counts[i] > 1]


def _digest(overrides: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or key not in known_keys():
        raise ConfigError(f"{where}: unknown key {clip(str(key))}{suggest(str(key))}")
    return key


def load_sweep(
    path: str | Path, overrides: Iterable[str] | Mapping[str, Any] | None = None
) -> SweepSpec:
    """Read, expand and validate a sweep file (``-s`` overrides apply to the base config)."""
    path = Path(path)
    raw = read_yaml_file(path, what="sweep file")
    if (
        not isinstance(raw, dict)
        or set(raw) != {"sweep"}
        or not SWEEP.is_satisfied_by(raw["sweep"])
    ):
        raise ConfigError(f"{path}: a sweep file holds one mapping under the key 'sweep:'")
    spec = raw["sweep"]
    refuse_unknown_keys(spec, SWEEP_KEYS, str(path), prefix="sweep.")
    require(spec.get("base"), BASE, f"{path}: sweep.base")
    base_path = (path.parent / spec["base"]).resolve()
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides or [])
    for key in overrides:
        _check_key(key, "-s")
    # file names given with -s are relative to the working directory: recorded absolute, so
    # that a resume from another folder reads the same files
    overrides = anchor_overrides(overrides, Path.cwd())

    grid = require(spec.get("grid") or {}, GRID, f"{path}: sweep.grid")
    for key, values in grid.items():
        _check_key(key, f"{path}: sweep.grid")
        require(values, GRID_VALUES, f"{path}: sweep.grid.{key}")
    variants = require(spec.get("variants") or [{}], VARIANTS, f"{path}: sweep.variants")
    for variant in variants:
        for key in variant:
            _check_key(key, f"{path}: sweep.variants")
    seeds = require(spec.get("seeds"), SEEDS, f"{path}: sweep.seeds")
    name = require(spec.get("name") or path.stem, NAME, f"{path}: sweep.name")
    tables = spec.get("table") or []
    tables = [tables] if isinstance(tables, dict) else tables
    base = BaseConfig(base_path, overrides)
    base_cfg = base.config
    sweep = SweepSpec(
        name, base_path, dict(overrides), grid, [v for v in variants if v], seeds, [], base_cfg
    )
    search = spec.get("search")
    if isinstance(search, dict) and search.get("method") == "grid" and "confirm" in search:
        raise ConfigError(
            f"{path}: sweep.search.confirm re-runs a search's best trials: it needs method "
            "random or tpe (a grid repeats its points with sweep.seeds)"
        )
    if isinstance(search, dict) and search.get("method") == "grid" and "objectives" in search:
        raise ConfigError(
            f"{path}: sweep.search.objectives needs a sampler that searches several objectives "
            "at once: method nsga2, tpe or random, not grid (a grid runs every point; its "
            "tables compare them)"
        )
    if search is not None and (search or {}).get("method") != "grid":
        if grid or sweep.variants:
            raise ConfigError(
                f"{path}: a search varies the keys of sweep.params; leave out sweep.grid "
                "and sweep.variants (or use search.method: grid)"
            )
        if spec.get("table"):
            raise ConfigError(
                f"{path}: sweep.table makes pivot tables of a grid; a search ranks its trials "
                "in summary.md instead (leave sweep.table out)"
            )
        sweep.search = parse_search(
            search, spec.get("params"), path, base_cfg, _check_key, spec.get("pruner")
        )
        if seeds and "seed" in sweep.search.params:
            raise ConfigError(
                f"{path}: seed is both searched (sweep.params.seed) and repeated "
                "(sweep.seeds): the seeds would replace the trial's seed; keep one of them"
            )
        trials = sweep.search.trials
        _check_job_count(path, [(f"sweep.search.trials {trials:,}", trials)], seeds)
        check_memory(base_cfg)
        kind_of(base_cfg).precheck(base_cfg, {})
        return sweep
    if spec.get("pruner") is not None:
        raise ConfigError(
            f"{path}: sweep.pruner needs sweep.search with method random, tpe or nsga2"
        )
    if spec.get("params") is not None:
        raise ConfigError(
            f"{path}: sweep.params needs sweep.search with method random, tpe or nsga2"
        )
    grid_sizes = [(f"{key} {len(values):,} values", len(values)) for key, values in grid.items()]
    _check_job_count(path, grid_sizes, seeds, len(variants))
    sweep.jobs = _expand(sweep, base, variants, path)
    sweep.tables = [_check_table(t, base_cfg, path) for t in tables]
    _precheck(sweep)
    return sweep


def _check_job_count(
    path: Path, sizes: list[tuple[str, int]], seeds: list[int] | None, n_variants: int = 1
) -> None:
    """Refuse a sweep of more than MAX_JOBS jobs, counted before anything is expanded from
    the sizes of its parts: (words, number) pairs such as ("model.activation 3 values", 3)
    or ("sweep.search.trials 20", 20), the variants and the seeds."""
    total = math.prod(n for _, n in sizes) * n_variants * len(seeds or [0])
    if total <= MAX_JOBS:
        return
    words = [text for text, _ in sizes]
    factors = [f"({' × '.join(words)})" if len(words) > 1 else words[0]] if words else []
    if n_variants > 1:
        factors.append(f"{n_variants:,} variants")
    if seeds:
        factors.append(f"{len(seeds):,} seed{'s' if len(seeds) > 1 else ''}")
    raise ConfigError(
        f"{path}: {' × '.join(factors)} makes {total:,} jobs; a sweep has at most "
        f"{MAX_JOBS:,}: split it into several sweeps, or search (sweep.search) with fewer trials"
    )


def _expand(
    sweep: SweepSpec, base: BaseConfig, variants: list[dict[str, Any]], path: Path
) -> list[Job]:
    """Every job: the grid's cartesian product × the variants × the seeds, each config
    resolved from the base, validated once, and the keys the job sets (ConfigError naming
    the job)."""
    points = []  # (overrides as given, with file names anchored, resolved config) per job
    for values in itertools.product(*sweep.grid.values()):
        for variant in variants:
            for seed in sweep.seeds or [None]:
                job_over = dict(zip(sweep.grid, values, strict=True)) | variant
                if seed is not None:
                    job_over["seed"] = seed
                # file names the sweep file gives are relative to it (the job keeps them
                # absolute, so that a resume works from any folder)
                anchored = anchor_overrides(job_over, path.parent)
                try:
                    cfg = base.variant(anchored)
                except NnlabError as exc:
                    raise ConfigError(f"job {job_id(job_over)}: {exc}") from None
                points.append((job_over, anchored, cfg))
    _refuse_repeated_configs(points, path)
    ids = job_ids([given for given, _, _ in points])
    return [Job(i, anchored, cfg) for i, (_, anchored, cfg) in zip(ids, points, strict=True)]


def _refuse_repeated_configs(points: list[tuple[dict, dict, dict]], path: Path) -> None:
    """Two jobs that run one config are a mistake in the sweep file (a value listed twice,
    or 1 and 1.0 for a number): refuse them, showing the values as given."""
    first: dict[str, dict] = {}
    for given, _, cfg in points:
        earlier = first.setdefault(json.dumps(cfg, sort_keys=True), given)
        if earlier is not given:
            raise ConfigError(
                f"{path}: job {job_id(given)} would run the same config twice "
                f"({shown(earlier)} and {shown(given)}); list each value once"
            )


def _check_table(table: Any, base_cfg: dict, path: Path) -> dict[str, str]:
    if not TABLE.is_satisfied_by(table):
        raise ConfigError(
            f"{path}: each sweep.table needs rows and cols (dotted keys that "
            "vary) and may name a value (a metric, e.g. test_acc)"
        )
    for axis in ("rows", "cols"):
        _check_key(table[axis], f"{path}: sweep.table.{axis}")
    value = table.get("value") or ("test_acc" if has_test_split(base_cfg) else "train_acc")
    if not METRIC.is_satisfied_by(value):
        raise ConfigError(
            f"{path}: sweep.table.value {shown(value)} is not a metric; allowed: "
            + ", ".join(LABELS)
        )
    return {"rows": table["rows"], "cols": table["cols"], "value": value}


def _precheck(sweep: SweepSpec) -> None:
    """Each job's memory is checked against the limit (nnlab.models.bounds), then its model kind
    checks its config cheaply (the MLP: layer sizes against the data), so that a wrong job
    stops the sweep before it starts; one cache per kind."""
    caches: dict[str, dict[str, Any]] = {}
    for job in sweep.jobs:
        cfg = job.config
        cache = caches.setdefault(cfg["model"]["kind"], {})
        try:
            check_memory(cfg, cache)
            kind_of(cfg).precheck(cfg, cache)
        except NnlabError as exc:
            raise ConfigError(f"job {job.id}: {exc}") from None
