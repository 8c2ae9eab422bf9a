"""Sweeps: a grid of variants of one base config, run in parallel, resumable, tabulated
(docs/sweeps.md).

A sweep goes through these modules in turn:

- :mod:`~nnlab.sweeps.spec`: the sweep file (``base``, ``grid``, ``variants``, ``seeds``,
  ``table``) read and expanded into a :class:`SweepSpec`, one resolved config per job, every
  one validated and prechecked by its model kind before anything runs;
- :mod:`~nnlab.sweeps.state`: :class:`SweepState`, state.json, every job's status and attempts,
  rewritten atomically at each change;
- :mod:`~nnlab.sweeps.driver`: :func:`run_sweep` makes the sweep folder, or resumes one that
  :mod:`~nnlab.sweeps.folder` reads back from its own files, and the
  :mod:`~nnlab.sweeps.scheduler` hands each attempt to an executor, with retries,
  ``--fail-fast`` and Ctrl-C;
- :mod:`~nnlab.sweeps.executors`: where attempts run — worker processes on this machine, or
  a Ray cluster (:mod:`~nnlab.sweeps.executors.ray`); each attempt is an ordinary run folder
  under ``jobs/<id>/attempt-<k>/``;
- :mod:`~nnlab.sweeps.summary`: summary.csv, summary.md with its pivot tables, and the
  comparison figures in plots/.

Names load on first use, so that importing this package (as every sweep worker process does)
imports no NumPy, torch or matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_sweep": "driver",
    "sweep": "driver",
    "Sweep": "state",
    "SweepInterrupted": "driver",
    "load_sweep_folder": "folder",
    "make_executor": "driver",
    "SweepSpec": "spec",
    "load_sweep": "spec",
    "job_id": "spec",
    "SweepState": "state",
    "DONE": "state",
    "comparison_plots": "summary",
    "pivot_table": "summary",
    "sweep_summary_text": "summary",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"nnlab.sweeps.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nnlab.sweeps' has no attribute {name!r}")
