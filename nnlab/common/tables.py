"""Tables as text: aligned columns or Markdown (grid), CSV and JSON, for ``nnlab compare`` and
``nnlab runs``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any


def json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, allow_nan=False)


def csv_text(rows: list[list[Any]]) -> str:
    """CSV lines, None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def grid(header: list[str], rows: list[list[str]], fmt: str) -> str:
    """A Markdown table, or columns aligned with spaces."""
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )
