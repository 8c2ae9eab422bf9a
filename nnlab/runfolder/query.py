"""`nnlab runs`: the runs and sweeps of a runs folder — or a sweep's jobs, or with ``--jobs``
every sweep's jobs beside the plain runs — filtered, sorted and shown (nnlab.runfolder.render)
as a table, CSV or JSON.

Each folder is read into an entry of flat fields (nnlab.runfolder.entries, which names
them); every dotted key of the run's config.yaml (``model.activation``, ``train.epsilon``)
and ``seed`` are fields too, read only when a query names one. nnlab.runfolder.index caches
the entries; the folders stay the source of truth.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.common.metrics import ORDER, is_result
from nnlab.common.yamlread import clip, parse_yaml
from nnlab.config.resolve import known_keys
from nnlab.errors import NnlabError
from nnlab.runfolder.entries import (
    ADDED,
    SUMMARY_KEYS,
    Entry,
    has,
    needs_config,
    read_entries,
    value,
)

DEFAULT_COLUMNS = ("started", "name", "kind", "status", "time", "results", "folder")
OPERATORS = (">=", "<=", "!=", "==", "=", ">", "<", "~")
SQL_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")  # keys the index's JSON paths can name as they are
WHERE = re.compile(r"^\s*([^\s=!<>~]+)\s*(>=|<=|!=|==|=|>|<|~)\s*(.*?)\s*$")


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
    jobs: bool = False

    def asked(self) -> str:
        """The conditions as they were given (``--where model.activation=relu --status
        failed``), quoted for a shell; '' when there are none."""
        given = [("--where", w) for w in self.where]
        given += [(f"--{k}", v) for k, v in (("status", self.status), ("name", self.name)) if v]
        return " ".join(f"{option} {shlex.quote(text)}" for option, text in given)


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
    entries, note, total = read_entries(root, needs_config(keys), conditions, query.jobs)
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
            check_keys(read_entries(root, needs_config(keys), jobs=query.jobs)[0], named)
    chosen = [e for e in entries if all(c.matches(e) for c in conditions)]
    chosen = sort_entries(chosen, query.sort)
    if query.limit is not None:
        chosen = chosen[: query.limit]
    return chosen, columns, warnings
