"""A multi-objective search's Pareto front and the trial ``search.pick`` names on it
(docs/sweeps.md, 'Multi-objective search').

The front is Optuna's: the completed trials' values (each objective's mean over the trial's
seeds) go into an in-memory study with the search's directions, and ``study.best_trials``
is the front, so dominance is never judged here by hand. The front is drawn from state.json
and sweep.yaml alone, as the search's other results are.
"""

from __future__ import annotations

import math
from typing import Any

from nnlab.common.status import JobStatus

PICK_RULE = {
    "knee": "the front's trial nearest the ideal point once each objective is "
    "scaled to [0, 1] over the front (0 its best value there, 1 its worst; an objective "
    "equal on the whole front is left out), a tie to the lower trial number",
    "metric": "the front's trial with the best {metric}, a tie to the next objectives in "
    "order, then the lower trial number",
}


def scored(records: list) -> list:
    """The completed trials with a finite value for every objective, in trial order."""
    return [
        r
        for r in sorted(records, key=lambda r: r.number)
        if r.status == JobStatus.COMPLETED
        and r.values is not None
        and all(v is not None and math.isfinite(v) for v in r.values)
    ]


def pareto_front(records: list, directions: list[str]) -> list:
    """The trials no other completed trial dominates (Optuna's ``best_trials`` over an
    in-memory study of the trials' values), best first on the first objective, then by trial
    number."""
    import optuna
    from optuna.trial import TrialState, create_trial

    done = scored(records)
    if not done:
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions)
    for r in done:  # the in-memory study numbers them 0, 1, ... in this order
        study.add_trial(create_trial(values=list(r.values), state=TrialState.COMPLETE))
    front = [done[t.number] for t in study.best_trials]
    return _ordered(front, directions)


def _ordered(front: list, directions: list[str], first: int = 0) -> list:
    """The front by objective ``first`` (best first), then the others in order, then number."""
    order = [first, *(k for k in range(len(directions)) if k != first)]

    def key(r) -> tuple:
        signs = [-1 if directions[k] == "maximize" else 1 for k in order]
        return (*(s * r.values[k] for s, k in zip(signs, order, strict=True)), r.number)

    return sorted(front, key=key)


def knee(front: list, directions: list[str]) -> Any:
    """The front's trial nearest the ideal point: each objective scaled to [0, 1] over the
    front (0 its best there, 1 its worst; one equal on the whole front drops out), the
    Euclidean distance to all-zeros, a tie to the lower trial number."""
    spans = []
    for k, direction in enumerate(directions):
        values = [r.values[k] for r in front]
        best = max(values) if direction == "maximize" else min(values)
        worst = min(values) if direction == "maximize" else max(values)
        spans.append((best, worst))

    def distance(r) -> float:
        return math.sqrt(
            sum(
                ((r.values[k] - best) / (worst - best)) ** 2
                for k, (best, worst) in enumerate(spans)
                if worst != best
            )
        )

    return min(front, key=lambda r: (distance(r), r.number))


def picked(front: list, spec) -> Any:
    """The trial ``spec.pick`` names on ``front`` (None on an empty front): ``knee``, or
    the best on one objective (``first``: the first objective's metric)."""
    if not front:
        return None
    if spec.pick == "knee":
        return knee(front, spec.directions)
    metric = spec.metrics[0] if spec.pick == "first" else spec.pick
    return _ordered(front, spec.directions, spec.metrics.index(metric))[0]


def pick_rule(spec) -> str:
    """``search.pick`` in words, for summary.md and the report."""
    if spec.pick == "knee":
        return PICK_RULE["knee"]
    metric = spec.metrics[0] if spec.pick == "first" else spec.pick
    return PICK_RULE["metric"].format(metric=metric)


def front_name(index: int) -> str:
    """The file of the front's ``index``-th trial (0-based), in the sweep folder:
    ``front/front-01.yaml``."""
    return f"front/front-{index + 1:02d}.yaml"
