"""A search's finalists — its best trials run again on fresh seeds (``search.confirm``) — and
the winner rule among them, read back from state.json alone (docs/sweeps.md, 'Search',
'Confirmation')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnlab.common.status import JobStatus
from nnlab.sweeps.search.space import is_confirmation, trial_number
from nnlab.sweeps.state import DONE


@dataclass
class Finalist:
    """A trial run again on the fresh seeds: its runs as (job id, seed, status, value), the
    value the search metric of a completed run (None otherwise), in the search's order."""

    number: int
    params: dict[str, Any]
    runs: list[tuple[str, int, str, float | None]]

    @property
    def values(self) -> list[float]:
        """The search metric of its completed confirmation runs: the fresh seeds only. Its
        trial's own run is left out: it was chosen for being best, so it is optimistic."""
        return [
            v
            for job_id, _, status, v in self.runs
            if is_confirmation(job_id) and status == JobStatus.COMPLETED and v is not None
        ]

    @property
    def trial_values(self) -> list[float | None]:
        """The search metric of its trial's own runs (what it was chosen on)."""
        return [v for job_id, _, _, v in self.runs if not is_confirmation(job_id)]

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def diverged(self) -> bool:
        return any(status == JobStatus.DIVERGED for _, _, status, _ in self.runs)

    @property
    def unfinished(self) -> int:
        """Runs without a result yet (pending, running, interrupted, failed): resume runs them."""
        return sum(status not in DONE for _, _, status, _ in self.runs)

    @property
    def fresh_seeds(self) -> list[int]:
        """The seeds of its confirmation runs."""
        return [seed for job_id, seed, _, _ in self.runs if is_confirmation(job_id)]

    @property
    def trial_seed(self) -> int:
        """The seed of the trial's first run: best.yaml's, so that it reproduces that run."""
        return self.runs[0][1]


def finalists(sweep, state) -> list[Finalist]:
    """The trials that were run again (those with confirmation jobs in state.json), in trial
    order, each with its original runs and its confirmation runs."""
    metric = sweep.search.metric
    base_seed = sweep.base_config["seed"]
    by_trial: dict[int, list[str]] = {}
    for job_id in state.jobs:
        by_trial.setdefault(trial_number(job_id), []).append(job_id)
    out = []
    for number in sorted(by_trial):
        ids = sorted(by_trial[number], key=is_confirmation)  # the trial's runs first
        if not is_confirmation(ids[-1]):
            continue
        runs = []
        for job_id in ids:
            entry = state.jobs[job_id]
            seed = entry.overrides.get("seed", base_seed)
            runs.append((job_id, seed, entry.status, entry.final.get(metric)))
        params = {k: v for k, v in state.jobs[ids[0]].overrides.items() if k != "seed"}
        out.append(Finalist(number, params, runs))
    return out


def by_rule(found: list[Finalist], direction: str) -> list[Finalist]:
    """The finalists in the winner rule's order: the best mean of the search metric over all
    their completed runs first, a tie to the lower trial number; those that diverged on any
    seed (or have no completed run) last, in trial order."""
    sign = -1 if direction == "maximize" else 1
    able = [f for f in found if f.mean is not None and not f.diverged]
    able.sort(key=lambda f: (sign * f.mean, f.number))
    return able + [f for f in found if f not in able]


def winner(found: list[Finalist], direction: str) -> Finalist | None:
    """The first finalist by :func:`by_rule` once every finalist has all its confirmation
    runs (the same fresh seeds each: finalists are compared on equal n), unless it cannot
    win (diverged, no result); None while any confirmation run has no result yet."""
    if any(f.unfinished for f in found):
        return None
    first = next(iter(by_rule(found, direction)), None)
    return None if first is None or first.mean is None or first.diverged else first


WINNER_RULE = (
    "the winner is the finalist with the best mean of {metric} over its confirmation runs on "
    "the fresh seeds {seeds}, the same for every finalist; its trial's own run is shown apart "
    "and left out of n, the mean, std and CI, since it was chosen for being best (so it is "
    "optimistic). A finalist that diverged on any seed cannot win; a tie goes to the lower "
    "trial number; no finalist wins until every confirmation run has a result. The 95% CI is "
    "Student's t interval of the mean: finalists whose intervals overlap are not clearly apart."
)
