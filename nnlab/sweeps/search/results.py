"""What a search found: the trials as records for the figures and tables, the finalists and the
winner (by the mean of the search metric over fresh seeds when confirmed), search.md,
best.yaml and the search figures."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_text
from nnlab.common.metrics import metric_text
from nnlab.common.stats import mean_ci
from nnlab.common.status import JobStatus
from nnlab.config.resolve import dump_config, load_config
from nnlab.figures import search as plots
from nnlab.figures.front import pareto_figure
from nnlab.figures.parallel import parallel_coordinates
from nnlab.figures.trials import TrialRecord
from nnlab.sweeps.search.confirm import WINNER_RULE, by_rule, finalists, winner
from nnlab.sweeps.search.front import front_name, pareto_front, pick_rule, picked
from nnlab.sweeps.search.objectives import entry_value
from nnlab.sweeps.search.space import is_confirmation, trial_job_id, trial_number

# a trial's status: the first of these that one of its seeds' jobs has, else completed
UNFINISHED = (JobStatus.RUNNING, JobStatus.PENDING, JobStatus.FAILED, JobStatus.INTERRUPTED,
              JobStatus.DIVERGED, JobStatus.PRUNED)  # fmt: skip


def trial_records(sweep, state) -> list:
    """One record per trial from state.json: its parameters, its status over its seeds, and
    the mean of the search metric (and of each other metric) over its completed seeds."""
    by_trial: dict[int, list] = {}
    for job_id, entry in state.jobs.items():
        if not is_confirmation(job_id):  # a trial's value is what the study was told
            by_trial.setdefault(trial_number(job_id), []).append(entry)
    records = []
    metric = sweep.search.metric
    for number in sorted(by_trial):
        entries = by_trial[number]
        statuses = {e.status for e in entries}
        status = next(
            (s for s in UNFINISHED if s in statuses),
            JobStatus.COMPLETED,
        )  # fmt: skip
        params = _trial_params(sweep, entries[0].overrides)
        record = TrialRecord(number, params, status, None)
        record.did_not_learn = any(e.did_not_learn for e in entries)
        if status == JobStatus.COMPLETED:
            finals = [e.final for e in entries]
            record.value = sum(f.get(sweep.search.metric, math.nan) for f in finals) / len(finals)
            record.metrics = {
                k: sum(f.get(k, math.nan) for f in finals) / len(finals)
                for k in finals[0]
                if k != "step"
            }
            if sweep.search.objectives:  # each objective's mean over the seeds
                record.values = [_mean(entries, m) for m in sweep.search.metrics]
        elif status == JobStatus.PRUNED:  # where it was stopped: drawn, never ranked
            values = [e.final[metric] for e in entries if metric in e.final]
            record.value = sum(values) / len(values) if values else None
        records.append(record)
    return records


def _mean(entries: list, metric: str) -> float | None:
    """The mean of an objective over a trial's jobs (None when one lacks it)."""
    values = [entry_value(e, metric) for e in entries]
    return None if any(v is None for v in values) else sum(values) / len(values)


def _trial_params(sweep, overrides: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters from one of its jobs' overrides: the searched keys (``seed``
    among them when it is searched), without the seed that sweep.seeds adds."""
    searched = "seed" in sweep.search.params
    return {k: v for k, v in overrides.items() if k != "seed" or searched}


def trial_seeds(sweep) -> list[int]:
    """The seeds each trial runs with: sweep.seeds, or the base config's seed."""
    return list(sweep.seeds or [sweep.base_config["seed"]])


def confirm_table(sweep, state) -> tuple[str, list[str], list[list], str] | None:
    """(title, header, rows, note) of the finalists, the winner's row cells (text, True) so
    that it shows in bold; None for a search without confirmation jobs."""
    spec = sweep.search
    found = finalists(sweep, state)
    if not found:  # the folder says what ran: sweep.yaml's confirm is not needed
        return None
    chosen = winner(found, spec.direction)
    keys = list(spec.params)
    metric = spec.metric
    header = [
        "finalist",
        "trial",
        *keys,
        f"trial's {metric}",
        "n",
        f"mean {metric}",
        "std",
        "95% CI",
        "fresh runs (seed: value)",
    ]

    def text(value: float | None) -> str:
        return "—" if value is None else metric_text(metric, value)

    rows = []
    for f in by_rule(found, spec.direction):
        values = f.values
        ci = mean_ci(values, metric=metric)
        std = statistics.stdev(values) if len(values) > 1 else None
        mark = "winner" if f is chosen else "out (diverged)" if f.diverged else ""
        runs = ", ".join(
            f"{seed}: {text(v) if status == JobStatus.COMPLETED else status}"
            for job_id, seed, status, v in f.runs
            if is_confirmation(job_id)
        )
        cells = [
            mark,
            str(f.number),
            *(_cell(f.params[k]) if k in f.params else ABSENT for k in keys),
        ]
        cells += [", ".join(text(v) for v in f.trial_values)]
        cells += [str(len(values)), text(f.mean), text(std)]
        cells += ["—" if ci is None else f"[{text(ci[0])}, {text(ci[1])}]", runs]
        rows.append([(c, True) for c in cells] if f is chosen else cells)
    fresh = sorted({s for f in found for s in f.fresh_seeds})
    seeds = ", ".join(map(str, fresh))
    note = WINNER_RULE.format(metric=metric, seeds=seeds)
    note = note[:1].upper() + note[1:]
    missing = sum(f.unfinished for f in found)
    if missing:
        note += (
            f" {missing} confirmation runs have no result yet, so there is no winner yet "
            "(best.yaml holds the best trial's config): `nnlab sweep --resume` runs them."
        )
    seeds_text = f"{len(fresh)} fresh seed" + ("s" if len(fresh) != 1 else "")
    trials_text = f"the {len(found)} best trials" if len(found) > 1 else "the best trial"
    title = f"Confirmation: {trials_text} run again on {seeds_text}"
    return title, header, rows, note


def ranked(records: list, direction: str) -> list:
    done = [r for r in records if r.status == JobStatus.COMPLETED and r.value is not None]
    done.sort(key=lambda r: r.value, reverse=direction == "maximize")
    return done + [r for r in records if r not in done]


ABSENT = "—"  # a param whose condition did not hold for the trial: not sampled, not set


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def absent_note(sweep) -> str | None:
    """What ``—`` in a conditional param's column means (None when no param has a
    condition): the trial was not asked for it, and its runs kept the base config's value."""
    conditional = [p for p in sweep.search.params.values() if p.when]
    if not conditional:
        return None
    kept = []
    for p in conditional:
        node = sweep.base_config
        for part in p.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        kept.append(f"{p.key} = {_cell(node)} wherever {p.condition_text()} does not hold")
    return (
        f"{ABSENT} in a conditional param's column: its condition did not hold for that "
        "trial, so it was not sampled (nor scored in the importances) and the runs kept the "
        "base config's value (" + "; ".join(kept) + ")."
    )


def search_table(sweep, records: list) -> tuple[str, list[str], list[list[str]]]:
    """(title, header, rows): the trials, best first, with their parameters, status, the
    search metric and the test metrics beside it (the choice is made on validation data
    only). A multi-objective search's: :func:`front_table`."""
    spec = sweep.search
    if spec.objectives:
        return front_table(sweep, records)
    keys = list(spec.params)
    extra = [k for k in ("test_acc", "test_loss") if k != spec.metric]
    title = (
        f"Search: {spec.method}, {len(records)} of {spec.trials} trials, "
        f"{spec.direction} {spec.metric}"
    )
    header = ["rank", "trial", *keys, "status", spec.metric, *extra]
    rows, rank = [], 0
    for r in ranked(records, spec.direction):
        done = r.status == JobStatus.COMPLETED and r.value is not None
        rank += done
        metrics = getattr(r, "metrics", {}) if done else {}
        cells = [str(rank) if done else "—", str(r.number)]
        cells += [_cell(r.params[k]) if k in r.params else ABSENT for k in keys]
        shown = f"{r.status}, did not learn" if r.did_not_learn else r.status
        cells += [shown, metric_text(spec.metric, r.value) if done else "—"]
        cells += [metric_text(k, metrics[k]) if k in metrics else "—" for k in extra]
        rows.append(cells)
    return title, header, rows


def front_table(sweep, records: list) -> tuple[str, list[str], list[list[str]]]:
    """A multi-objective search's trials: the front first (in its files' order, each marked
    with its file, best.yaml's too), then the other completed trials by the first objective,
    then the rest; each objective's value and the test metrics beside them."""
    spec = sweep.search
    keys = list(spec.params)
    extra = [k for k in ("test_acc", "test_loss") if k not in spec.metrics]
    front = pareto_front(records, spec.directions)
    chosen = picked(front, spec)
    goals = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    title = (
        f"Search: {spec.method}, {len(records)} of {spec.trials} trials, {goals}; "
        f"{len(front)} on the Pareto front"
    )
    header = ["front", "trial", *keys, "status", *spec.metrics, *extra]
    order = front + [r for r in ranked(records, spec.direction) if r not in front]
    rows = []
    for r in order:
        mark = ""
        if r in front:
            mark = front_name(front.index(r)).removeprefix("front/").removesuffix(".yaml")
            mark += " (best.yaml)" if r is chosen else ""
        done = r.status == JobStatus.COMPLETED and r.values is not None
        metrics = getattr(r, "metrics", {}) if done else {}
        cells = [mark, str(r.number)]
        cells += [_cell(r.params[k]) if k in r.params else ABSENT for k in keys]
        cells += [f"{r.status}, did not learn" if r.did_not_learn else r.status]
        cells += [
            metric_text(m, v) if done and v is not None else "—"
            for m, v in zip(spec.metrics, r.values or [None] * len(spec.metrics), strict=True)
        ]
        cells += [metric_text(k, metrics[k]) if k in metrics else "—" for k in extra]
        rows.append(cells)
    return title, header, rows


def front_note(sweep, records: list) -> str:
    """What the front table means and which trial best.yaml holds (summary.md, the report)."""
    spec = sweep.search
    front = pareto_front(records, spec.directions)
    chosen = picked(front, spec)
    seeds = " (each objective's mean over the trial's seeds)" if sweep.seeds else ""
    text = (
        f"The Pareto front{seeds}: the trials no other completed trial beats on one objective "
        "without losing on another; `front/front-NN.yaml` holds each one's config, in the "
        f"table's order. `best.yaml` is search.pick = {spec.pick}: {pick_rule(spec)}"
    )
    if chosen is None:
        return text + ". No trial has completed yet."
    return text + f"; here trial {chosen.number}."


def _markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def md(cell: Any) -> str:
        text, bold = cell if isinstance(cell, tuple) else (cell, False)
        text = text.replace("|", "\\|")
        return f"**{text}**" if bold else text

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]


def search_markdown(sweep, state, records: list) -> str:
    title, header, rows = search_table(sweep, records)
    lines = [f"## {title}", "", *_markdown_table(header, rows)]
    note = absent_note(sweep)
    if note:
        lines += ["", note]
    if sweep.search.objectives:
        return "\n".join([*lines, "", front_note(sweep, records)]) + "\n"
    done = [r for r in ranked(records, sweep.search.direction) if r.status == JobStatus.COMPLETED]
    confirmed = confirm_table(sweep, state)
    if confirmed is not None:
        title, header, rows, note = confirmed
        chosen = winner(finalists(sweep, state), sweep.search.direction)
        lines += ["", f"## {title}", "", *_markdown_table(header, rows), "", note]
        if chosen is not None:
            lines += [
                "",
                f"Winner: trial {chosen.number} (`best.yaml` holds its config, with its trial's "
                f"seed {chosen.trial_seed}).",
            ]
        elif done:
            lines += ["", f"No finalist can win yet; `best.yaml` holds the best trial's "
                      f"({done[0].number}) config."]  # fmt: skip
    elif done:
        lines += ["", f"Best trial: {done[0].number} (`best.yaml` holds its config)."]
    return "\n".join(lines) + "\n"


def _config_text(folder: Path, sweep, state, job_id: str, params: dict[str, Any]) -> str:
    """The config a job ran (its config.yaml: its threads too, the same numbers again), else
    the base config with ``params``."""
    entry = state.jobs.get(job_id)
    ran = folder / entry.run / "config.yaml" if entry and entry.run else None
    if ran is not None and ran.is_file():
        return ran.read_text(encoding="utf-8")
    return dump_config(load_config(sweep.base_path, {**sweep.base_overrides, **params}))


def _trial_config(folder: Path, sweep, state, record) -> str:
    """A trial's config, as its first run ran (the base seed, or sweep.seeds' first; a
    searched seed is the trial's own)."""
    seed = trial_seeds(sweep)[0]
    job_id = trial_job_id(record.number, seed if sweep.seeds else None)
    return _config_text(folder, sweep, state, job_id, {"seed": seed} | record.params)


def write_front(folder: Path, sweep, state, records: list) -> None:
    """A multi-objective search's ``front/front-NN.yaml`` (a config per front trial, in the
    front table's order; files of an older, larger front removed) and best.yaml (the trial
    search.pick names)."""
    front = pareto_front(records, sweep.search.directions)
    names = [front_name(k) for k in range(len(front))]
    (folder / "front").mkdir(exist_ok=True)
    for stale in (folder / "front").glob("front-*.yaml"):
        if f"front/{stale.name}" not in names:
            stale.unlink()
    for name, record in zip(names, front, strict=True):
        atomic_write_text(folder / name, _trial_config(folder, sweep, state, record))
    chosen = picked(front, sweep.search)
    if chosen is not None:
        atomic_write_text(folder / "best.yaml", _trial_config(folder, sweep, state, chosen))


def write_search_results(folder: Path, sweep, state) -> str:
    """The ranked table (returned, for summary.md), best.yaml (and a multi-objective
    search's front files) and the search figures."""
    spec = sweep.search
    records = trial_records(sweep, state)
    best = next(
        (r for r in ranked(records, spec.direction) if r.status == JobStatus.COMPLETED), None
    )
    chosen = winner(finalists(sweep, state), spec.direction)
    if spec.objectives:
        write_front(folder, sweep, state, records)
    elif chosen is not None:  # the confirmed winner, as its trial's first run ran
        params = chosen.params | {"seed": chosen.trial_seed}
        text = _config_text(folder, sweep, state, chosen.runs[0][0], params)
        atomic_write_text(folder / "best.yaml", text)
    elif best is not None:  # the best trial, as its first run ran
        atomic_write_text(folder / "best.yaml", _trial_config(folder, sweep, state, best))
    try:
        search_figures(folder / "plots", sweep, records)
    except Exception as exc:  # figures are extras: the tables are never lost over them
        state.plot_error = f"{type(exc).__name__}: {exc}"
        state.save()
    return search_markdown(sweep, state, records)


def search_figures(out: Path, sweep, records: list, ext: str = "png") -> list[Path]:
    """history, importances and parallel coordinates of the trials (``records``:
    :func:`trial_records`) in ``out``, drawn with the search space (scales, conditions,
    distributions for fANOVA); the paths written."""
    spec = sweep.search
    out.mkdir(parents=True, exist_ok=True)
    title = f"{sweep.name}: {spec.method} search"
    shown = [  # a list-valued choice (layer sizes) is one category, named by its text
        plots.TrialRecord(
            r.number,
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in r.params.items()},
            r.status,
            r.value,
            values=r.values,
        )
        for r in records
    ]
    made = [
        plots.optimisation_history(
            shown, spec.metric, spec.direction, out / f"history.{ext}", title
        ),
        plots.param_importances(shown, spec.metric, out / f"importances.{ext}", title, spec.params),
        parallel_coordinates(
            shown, spec.metric, spec.direction, out / f"parallel.{ext}", title, spec.params
        ),
    ]
    if spec.objectives:  # the trade-off: the front on the first two objectives
        front = pareto_front(records, spec.directions)
        chosen = picked(front, spec)
        made.append(
            pareto_figure(
                shown,
                [(o.metric, o.direction) for o in spec.objectives],
                [r.number for r in front],
                chosen and chosen.number,
                out / f"front.{ext}",
                title,
                spec.pick,
            )  # fmt: skip
        )
    return [p for p in made if p is not None]
