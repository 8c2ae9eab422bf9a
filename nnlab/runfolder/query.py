"""`nnlab runs`: the runs and sweeps of a runs folder — or a sweep's jobs — filtered, sorted
and shown (nnlab.runfolder.render) as a table, CSV or JSON.

Each folder is read into an entry of flat fields: ``folder``, ``name``, ``kind``,
``status``, ``started``, ``time`` (seconds), ``host``, ``results`` (the listing's two
metrics), the final metrics (the row of the weights a run kept: ``test_acc``, ``train_loss``,
``step``, ...), ``best.<metric>``, ``n_params``, ``train_seconds``, ``chance_acc``,
``did_not_learn`` and ``error``; a sweep adds
``jobs``, a sweep's job ``job``. Every dotted key of the run's config.yaml
(``model.activation``, ``train.epsilon``) and ``seed`` are fields too, read only when a query
names one. nnlab.runfolder.index caches the entries; the folders stay the source of truth.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nnlab.common.metrics import LISTED, ORDER, is_result, metric_text
from nnlab.common.status import RunStatus
from nnlab.common.yamlread import clip, parse_yaml, read_yaml_file
from nnlab.config.overrides import flatten
from nnlab.config.resolve import known_keys
from nnlab.errors import NnlabError
from nnlab.runfolder.index import records, signature
from nnlab.runfolder.records import read_meta, read_metrics, read_state, read_summary
from nnlab.runfolder.records import shown as shown_value
from nnlab.runfolder.runs import result_row

DEFAULT_COLUMNS = ("started", "name", "kind", "status", "time", "results", "folder")
OPERATORS = (">=", "<=", "!=", "==", "=", ">", "<", "~")
SUMMARY_KEYS = ("n_params", "train_seconds", "images_per_second", "eval_seconds", "chance_acc",
                "did_not_learn")  # fmt: skip
ADDED = ("folder", "job")  # fields given to an entry as it is listed, not stored in the index
SQL_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")  # keys the index's JSON paths can name as they are
WHERE = re.compile(r"^\s*([^\s=!<>~]+)\s*(>=|<=|!=|==|=|>|<|~)\s*(.*?)\s*$")
Entry = dict[str, Any]


# -- reading folders -------------------------------------------------------------------------


def _duration(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _run_fields(path: Path) -> dict[str, Any]:
    meta, summary = read_meta(path), read_summary(path)
    final = result_row(summary) or next(reversed(read_metrics(path / "metrics.csv")), {})
    shown = [f"{k} {metric_text(k, final[k])}" for k in LISTED if k in final]
    fields = {
        "name": meta.name, "kind": meta.kind, "status": meta.status.value,
        "started": meta.start_time, "time": meta.duration_seconds,
        "host": meta.host, "pid": meta.pid, "results": "  ".join(shown[:2]),
        **final,
        **{f"best.{k}": v for k, v in ((summary and summary.best) or {}).items()},
    }  # fmt: skip
    written = summary.to_json() if summary else {}
    for key in SUMMARY_KEYS:
        if key in written:
            fields[key] = written[key]
    if meta.error:
        fields["error"] = meta.error
    return fields


def _sweep_fields(path: Path) -> dict[str, Any]:
    state = read_state(path)
    counts: dict[str, int] = {}
    for job in state.jobs.values():
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return {
        "name": state.name, "kind": "sweep", "status": state.status.value,
        "started": state.created, "time": _duration(state.created, state.updated),
        "host": state.host, "pid": state.pid, "jobs": len(state.jobs),
        "results": f"{len(state.jobs)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items()),
    }  # fmt: skip


def _config_fields(path: Path) -> dict[str, Any]:
    """The run's config.yaml as dotted keys; {} when it cannot be read (the listing still
    shows the run; a query on a config key does not match it)."""
    try:
        config = read_yaml_file(path / "config.yaml", what="run config", pipes=False)
    except NnlabError:
        return {}
    if not isinstance(config, dict):
        return {}
    return {k: v for k, v in flatten(config).items() if k not in ("name", "model.kind")}


def read_entry(path: Path, with_config: bool) -> Entry:
    """A folder's entry: ``{"fields": {...}, "config": {...} or None, "problem": ...}``; a
    folder whose files cannot be read is an entry with status 'unreadable' and the reason,
    so that it never hides the others."""
    try:
        if (path / "state.json").exists():
            return {"fields": _sweep_fields(path), "config": {}, "problem": None}
        fields = _run_fields(path)
    except NnlabError as exc:
        fields = {"name": path.name, "kind": "?", "status": "unreadable", "started": ""}
        return {"fields": fields, "config": {}, "problem": str(exc)}
    return {"fields": fields, "config": _config_fields(path) if with_config else None,
            "problem": None}  # fmt: skip


def _folders(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The folders to list under ``root`` with their signatures, and the job id of each
    when ``root`` is a sweep folder (its jobs' last attempts) rather than a runs folder."""
    if (root / "state.json").is_file():
        state = read_state(root)
        jobs = {job.run: job_id for job_id, job in state.jobs.items() if job.run}
        sigs = {rel: signature(os.path.join(root, rel)) for rel in jobs}
        return {rel: s for rel, s in sigs.items() if s}, jobs
    sigs = {}
    with os.scandir(root) as found:
        for item in found:
            if item.is_dir() and not item.name.startswith("."):
                sig = signature(item.path)
                if sig:
                    sigs[item.name] = sig
    return sigs, {}


def read_entries(
    root: Path, with_config: bool = False, conditions: Iterable[Condition] = ()
) -> tuple[list[Entry], str | None, int]:
    """The entries under ``root`` (a runs folder or a sweep folder), through the index;
    with ``with_config``, each run's config keys too. Given ``conditions``, entries that
    cannot satisfy them may be left out (the index filters what it stores); the caller
    still checks each. Returns the entries, a note when the index had to be rebuilt, and
    the number of folders listed."""
    if not root.is_dir():
        raise NnlabError(f"{root}: no such runs folder")
    sigs, jobs = _folders(root)

    def read(path: Path) -> Entry:
        return read_entry(path, with_config)

    def usable(entry: Entry) -> bool:
        return not with_config or entry.get("config") is not None

    def cacheable(entry: Entry) -> bool:
        return entry["problem"] is None and entry["fields"]["status"] != RunStatus.RUNNING

    found, note = records(
        root, sigs, read, usable, cacheable, _prefilter(conditions, with_config), _damage
    )
    entries = []
    for rel, entry in found.items():
        entry["fields"]["folder"] = rel
        if rel in jobs:
            entry["fields"]["job"] = jobs[rel]
        entry["path"] = root / rel
        entries.append(entry)
    return entries, note, len(sigs)


TEXT_FIELDS = ("name", "kind", "status", "started")  # every stored entry's fields have
SCALAR = str | int | float | bool | None
# the stored rows _damage finds fault with, in SQL: a query's prefilter keeps them, so that a
# damaged row is always seen (and the index rebuilt) rather than silently left out
DAMAGED_SQL = (
    "NOT COALESCE("
    + " AND ".join(f"json_type(record, '$.fields.{k}') = 'text'" for k in TEXT_FIELDS)
    + " AND NOT EXISTS (SELECT 1 FROM json_each(record, '$.fields') AS f"
    " WHERE f.type IN ('object', 'array'))"
    " AND COALESCE(json_type(record, '$.config'), 'null') IN ('null', 'object')"
    " AND COALESCE(json_type(record, '$.problem'), 'null') = 'null', 0)"
)


def _damage(entry: Entry) -> str | None:
    """What makes a stored entry one nnlab did not store (a damaged index row), or None."""
    fields, config = entry.get("fields"), entry.get("config")
    if not isinstance(fields, dict):
        return "its fields are not a mapping"
    for key in TEXT_FIELDS:
        if not isinstance(fields.get(key), str):
            return f"its {key} is {shown_value(fields.get(key))}, not text"
    for key, v in fields.items():
        if not isinstance(v, SCALAR):
            return f"its {clip(key)} is not a single value"
    if config is not None and not isinstance(config, dict):
        return "its config is not a mapping"
    if entry.get("problem") is not None:
        return "it stores a problem"
    return None


def _prefilter(conditions: Iterable[Condition], with_config: bool) -> tuple[str, list] | None:
    """The SQL condition every stored record that could match ``conditions`` satisfies —
    records stored without their config keys are always read, when a query needs them."""
    parts = [sql for c in conditions if (sql := c.sql()) is not None]
    if not parts:
        return None
    text = " AND ".join(f"({p})" for p, _ in parts)
    params = [x for _, ps in parts for x in ps]
    if with_config:
        text = f"json_type(record, '$.config') = 'null' OR ({text})"
    return f"{DAMAGED_SQL} OR ({text})", params


def value(entry: Entry, key: str) -> Any:
    """``key``'s value in an entry; KeyError when it has none."""
    fields = entry["fields"]
    if key in fields:
        return fields[key]
    return (entry.get("config") or {})[key]


def has(entry: Entry, key: str) -> bool:
    return key in entry["fields"] or key in (entry.get("config") or {})


def needs_config(keys: Iterable[str]) -> bool:
    """Whether any of ``keys`` is a config key (dotted, not ``best.``; or ``seed``)."""
    return any(k == "seed" or ("." in k and not k.startswith("best.")) for k in keys)


# -- queries ---------------------------------------------------------------------------------


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Condition:
    """One ``--where``: ``key op value``, e.g. ``test_acc>=0.97``, ``model.activation=tanh``."""

    text: str
    key: str
    op: str
    raw: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = WHERE.match(text)
        if not match or not match.group(3):
            raise NnlabError(
                f"--where {clip(text)!r} is not KEY OP VALUE; OP is one of "
                f"{' '.join(OPERATORS)} (e.g. --where 'test_acc>=0.97', "
                "--where model.activation=tanh, --where 'name~moons_*')"
            )
        key, op, raw = match.groups()
        parsed: Any = raw
        if op != "~":
            if raw.endswith("%") and is_number(_float(raw[:-1])):
                parsed = _float(raw[:-1]) / 100  # accuracies are fractions in the files
            else:
                parsed = parse_yaml(raw, f"--where {clip(text)!r}")
        if op in (">", ">=", "<", "<=") and not is_number(parsed):
            if isinstance(parsed, list | dict):
                raise NnlabError(f"--where {clip(text)!r}: {op} compares numbers or text")
            parsed = raw  # a time (started>=2026-12-01) or a name compares as written
        return cls(text, key, "=" if op == "==" else op, raw, parsed)

    def sql(self) -> tuple[str, list[Any]] | None:
        """An SQL condition on an index row's ``record`` that holds for every entry this
        condition matches (and may hold for others: :meth:`matches` decides), so that the
        index decodes only the records that can match; None where there is none."""
        if not SQL_KEY.match(self.key) or self.op in ("~", "!=") or self.key in ADDED:
            return None
        f, c = f'$.fields."{self.key}"', f'$.config."{self.key}"'
        # the entry's value and its JSON type: its field's, else its config key's
        pick = (
            "CASE WHEN json_type(record, ?) IS NOT NULL THEN {0}(record, ?) ELSE {0}(record, ?) END"
        )
        kind, have = pick.format("json_type"), pick.format("json_extract")
        paths = [f, f, c]
        if is_number(self.value) and self.op == "=":  # as math.isclose(rel_tol=1e-9), looser
            near = f"abs(({have}) - ?) <= 2e-9 * max(abs(({have})), abs(?))"
            number = f"{kind} IN ('integer', 'real') AND {near}"
            return number, [*paths, *paths, self.value, *paths, self.value]
        if is_number(self.value):
            number = f"{kind} IN ('integer', 'real') AND ({have}) {self.op} ?"
            return number, [*paths, *paths, self.value]
        exact = self.value == self.raw and _plain_text(self.raw)
        if isinstance(self.value, str) and (self.op != "=" or exact):
            return f"{kind} = 'text' AND ({have}) {self.op} ?", [*paths, *paths, self.value]
        return None

    def matches(self, entry: Entry) -> bool:
        """Whether the entry's value satisfies the condition; an entry without the key
        matches no condition on it (not even !=)."""
        try:
            have = value(entry, self.key)
        except KeyError:
            return False
        if self.op == "~":
            return fnmatch.fnmatchcase(value_text(have), self.raw)
        if self.op in ("=", "!="):
            return _equal(have, self.value, self.raw) == (self.op == "=")
        if is_number(self.value) and is_number(have):
            a, b = float(have), float(self.value)
        elif isinstance(self.value, str) and isinstance(have, str):
            a, b = have, self.value
        else:
            return False
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[self.op]


def _plain_text(raw: str) -> bool:
    """Whether ``raw`` can equal only a text value (never the text of a number, a boolean,
    null or a list) — so that ``KEY=raw`` matches exactly the entries whose value is raw."""
    return (_float(raw) is None and raw not in ("true", "false", "")
            and not raw.startswith(("[", "{")))  # fmt: skip


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equal(have: Any, want: Any, raw: str) -> bool:
    if is_number(have) and is_number(want):
        return math.isclose(have, want, rel_tol=1e-9, abs_tol=0.0)
    return have == want or value_text(have) == raw


def value_text(v: Any) -> str:
    """A value as the conditions and the table read it: lists as ``[2, 3, 2]``, null empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def possible_keys() -> set[str]:
    """The keys any run or sweep could have, listed or not: every model kind's config keys,
    the metrics and their best values, the summary's numbers and the listing's fields."""
    config = {k for k in known_keys() if k != "model.kind"}  # the `kind` field says it
    best = {f"best.{m}" for m in ORDER if is_result(m)}
    return config | best | {*ORDER, *SUMMARY_KEYS, *DEFAULT_COLUMNS, *ADDED, "host", "jobs"}


def check_keys(entries: list[Entry], keys: Iterable[tuple[str, str]]) -> None:
    """Refuse a key that no entry has, naming the option it came from (``(option, key)``
    pairs) and the closest keys there are among those any run could have
    (:func:`possible_keys`), not only the listed ones."""
    known: list[str] | None = None
    for option, key in keys:
        if key in DEFAULT_COLUMNS or any(has(e, key) for e in entries):
            continue
        if known is None:
            listed = {k for e in entries for k in (*e["fields"], *(e.get("config") or {}))}
            known = sorted(listed | possible_keys())
        close = difflib.get_close_matches(key, [k for k in known if k != key], n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NnlabError(
            f"{option}: no run or sweep here has the key {clip(key)!r}{hint} (a key is a config "
            "key such as model.activation, a metric such as test_acc or best.val_loss, or one "
            "of name, kind, status, started, time, host, folder)"
        )


def sort_entries(entries: list[Entry], keys: list[str]) -> list[Entry]:
    """Newest first, then by each of ``keys`` (the first one most significant; ``-key``
    descending); entries without a key come after those with it, whichever the direction."""
    out = sorted(entries, key=lambda e: (e["fields"]["started"], e["fields"]["folder"]),
                 reverse=True)  # fmt: skip
    for spec in reversed(keys):
        key, descending = spec.removeprefix("-"), spec.startswith("-")
        present = [e for e in out if has(e, key) and value(e, key) is not None]
        absent = [e for e in out if not (has(e, key) and value(e, key) is not None)]
        present.sort(key=lambda e: _order(value(e, key)), reverse=descending)
        out = present + absent
    return out


def _order(v: Any) -> tuple[int, Any]:
    return (0, float(v)) if is_number(v) else (1, value_text(v))


def columns_for(given: list[str], conditions: list[Condition], sort: list[str]) -> list[str]:
    """The columns shown: ``given`` (comma-separated lists), else the default ones with the
    keys of the conditions and the sort added before ``folder``."""
    if given:
        return [c.strip() for item in given for c in item.split(",") if c.strip()]
    extra = []
    for key in [c.key for c in conditions] + [s.removeprefix("-") for s in sort]:
        if key not in DEFAULT_COLUMNS and key not in extra:
            extra.append(key)
    return [*DEFAULT_COLUMNS[:-1], *extra, DEFAULT_COLUMNS[-1]]


@dataclass
class Query:
    """What `nnlab runs` was asked: the conditions (ANDed), the sort keys, the columns, the
    number of rows, the format."""

    where: list[str]
    sort: list[str]
    columns: list[str]
    limit: int | None = None
    fmt: str = "table"
    status: str | None = None
    name: str | None = None


def run_query(root: Path, query: Query) -> tuple[list[Entry], list[str], list[str]]:
    """The entries that match, in order, the columns to show them in, and the warnings to
    print (unreadable folders, a rebuilt index)."""
    conditions = [Condition.parse(w) for w in query.where]
    if query.status:
        conditions.append(Condition("status=" + query.status, "status", "=", query.status,
                                    query.status))  # fmt: skip
    if query.name:
        conditions.append(Condition("name~" + query.name, "name", "~", query.name, query.name))
    columns = columns_for(query.columns, conditions, query.sort)
    keys = [c.key for c in conditions] + [s.removeprefix("-") for s in query.sort] + columns
    entries, note, total = read_entries(root, needs_config(keys), conditions)
    warnings = [" ".join(e["problem"].split()) for e in entries if e["problem"]]
    if note:
        warnings.append(note)
    named = ([(f"--where {clip(c.text)!r}", c.key) for c in conditions]
             + [(f"--sort {clip(s)!r}", s.removeprefix("-")) for s in query.sort]
             + [("--columns", c) for c in columns])  # fmt: skip
    if total:
        try:
            check_keys(entries, named)
        except NnlabError:
            if len(entries) == total:
                raise
            check_keys(read_entries(root, needs_config(keys))[0], named)  # all of them
    chosen = [e for e in entries if all(c.matches(e) for c in conditions)]
    chosen = sort_entries(chosen, query.sort)
    if query.limit is not None:
        chosen = chosen[: query.limit]
    return chosen, columns, warnings
