"""The statuses of runs, sweep jobs and sweeps (docs/design.md, 'Statuses'), each defined once.

They are ``str`` enums: a member equals its text (``RunStatus.COMPLETED == "completed"``),
prints as it and is written to JSON as it, so meta.json, summary.json and state.json hold
the same words they always did. They live this low so that every layer — the models'
:class:`~nnlab.models.StopRun`, the figures, the run folders, the sweeps, the CLI — shares them.
"""

from __future__ import annotations

from enum import Enum


class _Status(str, Enum):
    """A status: its text wherever it is printed, formatted or compared."""

    def __str__(self) -> str:
        return self.value


class RunStatus(_Status):
    """A run's status, in meta.json and summary.json."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"


# A sweep job's status, in state.json: a run's, or pending before its first attempt.
JobStatus = _Status(
    "JobStatus",
    [("PENDING", "pending"), *((s.name, s.value) for s in RunStatus)],
    module=__name__,
)


class SweepStatus(_Status):
    """A sweep's own status, in state.json."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def texts(statuses: type[_Status] | tuple[_Status, ...]) -> tuple[str, ...]:
    """The statuses' texts, in order (click choices, 'one of ...' messages)."""
    return tuple(s.value for s in statuses)
