"""`nnlab runs` output: the entries nnlab.runfolder.query found, as an aligned table, CSV or
JSON."""

from __future__ import annotations

import json
from typing import Any

from nnlab.common.metrics import COUNTERS, is_result, metric_text, status_text
from nnlab.common.status import RunStatus
from nnlab.common.tables import csv_text, grid
from nnlab.runfolder.liveness import shown_status as alive_or_dead
from nnlab.runfolder.query import Entry, is_number, value, value_text

WIDEST = {"name": 60, "kind": 12, "status": 24, "results": 60, "folder": 120}  # cut with …


def shown_status(entry: Entry) -> str:
    """What the status column says: the stored status, with ``(dead?)`` added to a
    ``running`` one whose process is gone (nnlab.runfolder.liveness), ``, did not learn`` to a run
    whose accuracy stayed at chance (nnlab.common.metrics.did_not_learn), ``, reused`` to a
    copy of a completed run (docs/sweeps.md, 'Reusing runs')."""
    fields = entry["fields"]
    if fields["status"] != RunStatus.RUNNING:
        return status_text(fields["status"], fields.get("did_not_learn"), fields.get("reused_from"))
    return alive_or_dead(fields["status"], fields.get("pid"), fields.get("host"), entry["path"])


def _cell_text(entry: Entry, key: str) -> str:
    if key == "status":
        return shown_status(entry)
    try:
        v = value(entry, key)
    except KeyError:
        return ""
    if v is None:
        return ""
    if key == "started":
        return str(v).replace("T", " ")[:19]
    if key in ("time", "train_seconds"):
        return f"{v:.1f}s" if is_number(v) else value_text(v)
    metric = key.removeprefix("best.")
    if is_number(v) and (is_result(metric) or metric in COUNTERS or metric == "lr"):
        return metric_text(metric, v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return value_text(v)


def _cut(text: str, widest: int) -> str:
    """Text as one table cell: control characters escaped (a name never splits a row) and cut
    to ``widest`` characters (a long name never widens every row)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= widest else text[: widest - 1] + "…"


def _raw(entry: Entry, key: str) -> Any:
    try:
        return value(entry, key)
    except KeyError:
        return None


def render(entries: list[Entry], columns: list[str], fmt: str) -> str:
    """The entries in ``fmt``: an aligned table, CSV (a header row; lists as JSON) or a JSON
    list of objects (numbers as numbers, accuracies as fractions)."""
    if fmt == "json":
        return json.dumps([{c: _raw(e, c) for c in columns} for e in entries], indent=1)
    if fmt == "csv":
        rows = [[None if (v := _raw(e, c)) is None else value_text(v) for c in columns]
                for e in entries]  # fmt: skip
        return csv_text([columns, *rows])
    rows = [[_cut(_cell_text(e, c), WIDEST.get(c, 40)) for c in columns] for e in entries]
    return grid(columns, rows, "table")  # a header, then a row per entry, aligned
