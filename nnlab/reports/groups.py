"""``nnlab compare --group-by KEY`` and ``A... --vs B...``: groups of runs (their seeds) on one
metric — per group n, mean ± std and the Student-t interval of the mean; against the
reference group, the Welch interval of the difference, the probability of improvement, the
p-value and the seeds needed (nnlab.common.stats)."""

from __future__ import annotations

import difflib
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common import stats
from nnlab.common.metrics import ORDER, PREFERRED, is_accuracy, is_loss, is_result
from nnlab.common.status import RunStatus
from nnlab.common.tables import csv_text, grid, json_text
from nnlab.errors import NnlabError
from nnlab.reports.compare import (
    code_of,
    differing,
    environments,
    flat_config,
    load_runs,
    run_name,
    value_text,
)

# The metric compared when none is named: held-out accuracy first (as figures and listings).
DEFAULT_METRICS = (*PREFERRED["accuracy"], *PREFERRED["loss"])
VS = "runs"  # the group column's name for A --vs B


@dataclass
class Group:
    label: str  # the --group-by key's value as shown, or A / B
    runs: list[str]
    values: list[float]


@dataclass
class GroupComparison:
    """Groups of runs (seeds) on one metric, each against the reference group."""

    metric: str  # a final metric (test_acc) or a best one (best.test_acc)
    by: str  # the --group-by key, or VS
    groups: list[Group]
    reference: int
    spread: list[str]  # the config keys that vary inside the groups (seed, usually)
    # runs not completed, by group (its label; "" before grouping) and status
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return not is_loss(self.metric)

    @property
    def spread_text(self) -> str:
        if self.spread == ["seed"]:
            return "seeds"
        return ", ".join(self.spread) if self.spread else "repeats of the same config"

    def stats(self) -> list[dict[str, Any]]:
        """Per group: n, mean, std, the CI of its mean and, against the reference, the
        difference of means with its CI, P(improvement), Welch's t and p, seeds needed."""

        base = self.groups[self.reference].values
        out = []
        for i, g in enumerate(self.groups):
            row: dict[str, Any] = {
                "group": g.label,
                "n": len(g.values),
                "runs": g.runs,
                "mean": statistics.mean(g.values),
                "std": statistics.stdev(g.values),
                "ci": _pair(stats.mean_ci(g.values, metric=self.metric)),
                "reference": i == self.reference,
            }
            none = dict.fromkeys(("difference", "difference_ci", "p_improvement"))
            row |= none | {"welch_t": None, "welch_p": None, "seeds_needed": None}
            if i != self.reference:
                t = stats.welch(g.values, base)
                row |= {
                    "difference": statistics.mean(g.values) - statistics.mean(base),
                    "difference_ci": _pair(stats.difference_ci(g.values, base)),
                    "p_improvement": stats.probability_of_improvement(
                        g.values, base, self.higher_is_better
                    ),
                    "welch_t": t[0] if t else None,
                    "welch_p": t[1] if t else None,
                    "seeds_needed": stats.seeds_needed(g.values, base),
                }
            out.append(row)
        return out


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval else None


def _metric_value(run, metric: str) -> float | None:
    part, _, name = metric.rpartition(".")
    values = run.summary.to_json().get(part or "final") if run.summary else None
    value = values.get(name) if isinstance(values, dict) else None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _choose_metric(runs: list, metric: str | None) -> str:
    """The metric asked for, or the first of DEFAULT_METRICS; NnlabError naming the metrics
    every run logs when it is not one of them."""
    logged = [
        k for k in (*ORDER, *(f"best.{m}" for m in ORDER)) if is_result(k.removeprefix("best."))
    ]
    logged = [k for k in logged if all(_metric_value(r, k) is not None for r in runs)]
    if metric is None:
        found = next((m for m in DEFAULT_METRICS if m in logged), None)
        if found is None:
            raise NnlabError("the runs share no loss or accuracy to compare")
        return found
    if metric not in logged:
        raise NnlabError(
            f"--metric {metric}: not a metric every run logs; they all log: "
            + ", ".join(k for k in logged if not k.startswith("best."))
            + " (final values; best.NAME for the best value)"
        )
    return metric


def _completed(runs: list, left_out: dict[str, dict[str, int]], label: str) -> list:
    """The completed runs; the others counted in ``left_out[label]`` by status."""
    for r in runs:
        if r.status != RunStatus.COMPLETED:
            counts = left_out.setdefault(label, {})
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
    return [r for r in runs if r.status == RunStatus.COMPLETED]


def _varying(flats: list[dict[str, Any]]) -> list[str]:
    return differing(flats, list(dict.fromkeys(k for f in flats for k in f)))


def _by_key(runs: list, key: str) -> dict[str, list]:
    """The runs grouped by their value of ``key``, in order of first appearance."""
    flats = [flat_config(r) for r in runs]
    varying = _varying(flats)
    allowed = f"keys that vary between them: {', '.join(varying) or 'none'}"
    lacking = [run_name(r.path) for r, f in zip(runs, flats, strict=True) if key not in f]
    if len(lacking) == len(runs):
        close = difflib.get_close_matches(key, varying or list(flats[0]), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NnlabError(f"--group-by {key}: not a config key of these runs{hint}; {allowed}")
    if lacking:
        raise NnlabError(
            f"--group-by {key}: {len(lacking)} of the runs have no {key} "
            f"({', '.join(lacking[:3])}); {allowed}"
        )
    groups: dict[str, list] = {}
    for r, f in zip(runs, flats, strict=True):
        groups.setdefault(value_text(f[key]), []).append(r)
    if len(groups) < 2:
        raise NnlabError(
            f"--group-by {key}: every run has {key} = {next(iter(groups))}, one group; {allowed}"
        )
    return groups


def compare_groups(
    paths: list[Path],
    group_by: str | None = None,
    vs: list[Path] | None = None,
    metric: str | None = None,
    reference: str | None = None,
) -> GroupComparison:
    """Groups of runs on one metric: by their value of the config key ``group_by``, or the
    runs of ``paths`` (A) against those of ``vs`` (B, the reference unless told otherwise).
    Paths are run folders, sweep job folders or sweep folders (their finished jobs); only
    completed runs count, the others are counted as left out."""
    left_out: dict[str, dict[str, int]] = {}
    if vs:
        given = {"A": load_runs(paths), "B": load_runs(vs)}
        both = {r.path.resolve() for r in given["A"]} & {r.path.resolve() for r in given["B"]}
        if both:
            raise NnlabError(
                f"--vs: {len(both)} run(s) are on both sides ({sorted(both)[0]}); a run can be "
                "in one group only"
            )
        sets = {name: _completed(runs, left_out, name) for name, runs in given.items()}
        by, default_reference = VS, "B"
    else:
        runs = load_runs(paths)
        if not any(r.status == RunStatus.COMPLETED for r in runs):
            raise NnlabError("no completed runs to compare")
        grouped = _by_key(runs, group_by)
        sets = {label: _completed(members, left_out, label) for label, members in grouped.items()}
        by, default_reference = group_by, None
    what = "--group-by " + group_by if group_by else "--vs"
    for label, members in sets.items():
        if len(members) < 2:
            raise NnlabError(
                f"{what}: group {label} has {len(members)} completed run(s); the statistics "
                "need at least two (seeds) in every group"
            )
    everyone = [r for members in sets.values() for r in members]
    metric = _choose_metric(everyone, metric)
    groups = [
        Group(
            label, [run_name(r.path) for r in members], [_metric_value(r, metric) for r in members]
        )
        for label, members in sets.items()
    ]
    labels = [g.label for g in groups]
    if reference is None:
        at = labels.index(default_reference) if default_reference else 0
    elif reference == "best":
        means = [statistics.mean(g.values) for g in groups]
        at = means.index((max if not is_loss(metric) else min)(means))
    elif reference in labels:
        at = labels.index(reference)
    else:
        raise NnlabError(
            f"--reference {reference}: not a group; groups: {', '.join(labels)} (or best)"
        )
    inside = [_varying([flat_config(r) for r in members]) for members in sets.values()]
    spread = list(dict.fromkeys(k for keys in inside for k in keys))
    return GroupComparison(metric, by, groups, at, spread, left_out, _caveats(everyone))


def _caveats(runs: list) -> list[str]:
    """What else differs between the runs compared: their code, their environment."""
    out = []
    codes = list(dict.fromkeys(code_of(r) for r in runs))
    if len(codes) > 1:
        out.append(f"the runs come from different code: {', '.join(codes)}")
    environment, recorded = environments(runs)
    if environment:
        out.append(f"the runs' environment differs in: {', '.join(environment)}")
    if not all(recorded) and any(recorded):
        out.append(f"{recorded.count(False)} of the runs do not record their environment")
    return out


def _value_text(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    return f"{value * 100:{sign}.2f}" if is_accuracy(metric) else f"{value:{sign}.4g}"


def _interval_text(metric: str, ci: list[float] | None, signed: bool = False) -> str:
    if ci is None:
        return "—"
    return "[" + ", ".join(_value_text(metric, v, signed) for v in ci) + "]"


def _seeds_text(n: int | None) -> str:
    if n is None:
        return "—"
    return f"> {stats.MOST_SEEDS:,}" if n > stats.MOST_SEEDS else str(n)


def _group_rows(g: GroupComparison) -> list[list[str]]:
    m = g.metric
    rows = []
    for s in g.stats():
        if s["reference"]:
            against = ["(reference)", "", "", "", ""]
        else:
            p = s["welch_p"]
            against = [
                _value_text(m, s["difference"], signed=True),
                _interval_text(m, s["difference_ci"], signed=True),
                f"{s['p_improvement']:.2f}",
                "—" if p is None else f"{p:.2g}",
                _seeds_text(s["seeds_needed"]),
            ]
        mean = f"{_value_text(m, s['mean'])} ± {_value_text(m, s['std'])}"
        rows.append([s["group"], str(s["n"]), mean, _interval_text(m, s["ci"]), *against])
    return rows


def _group_notes(g: GroupComparison) -> list[str]:
    name = g.metric.removeprefix("best.")
    unit = " (%; Δ in points)" if is_accuracy(name) else ""
    part = "best" if g.metric.startswith("best.") else "final"
    ref = g.groups[g.reference].label
    way = "higher" if g.higher_is_better else "lower"
    notes = [
        f"{part} {name}{unit}, {way} is better; each group against {ref}"
        + (" (A: the runs before --vs, B: those after it)" if g.by == VS else ""),
        f"mean ± std over {g.spread_text} in each group; 95% CI: Student-t interval of the "
        "mean; Δ: the group's mean minus the reference's, with its 95% Welch interval (the "
        "groups' runs independent, variances unequal)",
        f"P(better): the chance that a run of the group beats a run of {ref} ({way} {name}), "
        "over every pair, ties counting half; Welch p: two-sided Welch t-test of equal means; "
        f"seeds needed: runs per group for {stats.POWER:.0%} power at p < {stats.ALPHA:g} "
        "(two-sample t-test), were the observed Δ and pooled std the truth",
    ]
    if g.left_out:
        notes.append(
            "left out (not completed), so n counts fewer runs there: "
            + "; ".join(
                f"{label}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                for label, counts in g.left_out.items()
            )
        )
    return notes + [f"note: {w}" for w in g.warnings]


GROUP_COLUMNS = (
    "n", "mean", "std", "ci_low", "ci_high", "reference", "difference", "difference_low",
    "difference_high", "p_improvement", "welch_t", "welch_p", "seeds_needed",
)  # fmt: skip


def render_groups(g: GroupComparison, fmt: str) -> str:
    rows = g.stats()
    if fmt == "json":
        return json_text(
            {
                "metric": g.metric,
                "higher_is_better": g.higher_is_better,
                "group_by": g.by,
                "reference": g.groups[g.reference].label,
                "spread_over": g.spread,
                "confidence": stats.CONFIDENCE,
                "groups": rows,
                "left_out": g.left_out,
                "warnings": g.warnings,
            }
        )
    if fmt == "csv":
        lines = [[g.by, *GROUP_COLUMNS]]
        for s in rows:
            ci, dci = s["ci"] or [None, None], s["difference_ci"] or [None, None]
            flat = {"ci_low": ci[0], "ci_high": ci[1]}
            flat |= {"difference_low": dci[0], "difference_high": dci[1]}
            lines.append([s["group"], *(s.get(c, flat.get(c)) for c in GROUP_COLUMNS)])
        return csv_text(lines)
    ref = g.groups[g.reference].label
    header = [g.by, "n", "mean ± std", "95% CI", f"Δ vs {ref}", "95% CI of Δ", "P(better)"]
    header += ["Welch p", "seeds needed"]
    table = grid(header, _group_rows(g), fmt)
    notes = _group_notes(g)
    if fmt == "md":
        return "\n\n".join([notes[0], table, "\n".join(f"- {n}" for n in notes[1:])])
    return "\n".join([notes[0], table, *notes[1:]])
