"""Multi-objective search: search.objectives validated in one line, the Pareto front equal to
the non-dominated set computed here independently, the pick rule, front files and best.yaml,
the trade-off figure's data, and a killed search that resumes."""

import itertools
import json
import math
import random
from pathlib import Path

import pytest
import yaml

from nnlab.common.status import JobStatus
from nnlab.errors import ConfigError
from nnlab.figures.front import draw_front
from nnlab.figures.trials import TrialRecord
from nnlab.sweeps import load_sweep
from nnlab.sweeps.search.front import knee, pareto_front, picked
from tests.conftest import CONFIGS, check_run, nnlab, run_dir_of
from tests.sweeps.test_search import kill_9_then_resume, load_study
from tests.sweeps.test_sweep import state_of


def dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    """a is at least as good as b on every objective and better on one (written here, apart
    from nnlab's use of Optuna)."""
    signs = [1 if d == "maximize" else -1 for d in directions]
    at_least = all(s * x >= s * y for s, x, y in zip(signs, a, b, strict=True))
    return at_least and any(s * x > s * y for s, x, y in zip(signs, a, b, strict=True))


def non_dominated(points: dict[int, list[float]], directions: list[str]) -> set[int]:
    return {
        n
        for n, p in points.items()
        if not any(dominates(q, p, directions) for m, q in points.items() if m != n)
    }


def _records(points: dict[int, list[float]]) -> list[TrialRecord]:
    return [
        TrialRecord(n, {}, JobStatus.COMPLETED, v[0], values=list(v)) for n, v in points.items()
    ]


@pytest.mark.parametrize(
    "directions", [["maximize", "minimize"], ["minimize", "minimize"], ["maximize", "minimize",
                                                                        "minimize"]]
)  # fmt: skip
def test_the_front_is_exactly_the_non_dominated_trials(directions):
    rng = random.Random(7)
    for _ in range(30):
        # coarse values: many ties and duplicate points, where dominance is easy to get wrong
        points = {
            n: [rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]), *(rng.choice([12, 17, 52, 252])
                                                        for _ in directions[1:])]
            for n in range(rng.randint(1, 25))
        }  # fmt: skip
        records = _records(points)
        records.append(TrialRecord(99, {}, JobStatus.FAILED))  # no values: never on it
        front = pareto_front(records, directions)
        assert {r.number for r in front} == non_dominated(points, directions)
        sign = -1 if directions[0] == "maximize" else 1  # best first on the first objective
        keys = [(sign * r.values[0], r.number) for r in front]
        assert [k[0] for k in keys] == sorted(k[0] for k in keys)


def _spec(pick: str, metrics=("val_acc", "n_params")):
    class Spec:  # what picked() reads of a SearchSpec
        pass

    spec = Spec()
    spec.pick, spec.metrics = pick, list(metrics)
    spec.directions = ["maximize", "minimize"]
    return spec


def test_the_pick_rule_knee_first_or_one_objective():
    # accuracy against parameters: the middle trade-off is the knee
    front = _records({3: [0.95, 1000], 5: [0.93, 60], 8: [0.80, 12]})
    assert picked(front, _spec("knee")).number == 5
    assert picked(front, _spec("first")).number == 3
    assert picked(front, _spec("val_acc")).number == 3
    assert picked(front, _spec("n_params")).number == 8
    assert picked([], _spec("knee")) is None
    # scaled distances: 3 -> (0, 1), 5 -> (0.133, 0.049), 8 -> (1, 0); by hand
    spans = [(0.95, 0.80), (12, 1000)]
    dist = {
        r.number: math.dist(
            (0, 0), [(v - b) / (w - b) for v, (b, w) in zip(r.values, spans, strict=True)]
        )
        for r in front
    }
    assert min(dist, key=dist.get) == 5
    # a tie goes to the lower trial number; an objective equal on the whole front drops out
    tied = _records({9: [0.9, 50], 4: [0.9, 50]})
    assert knee(tied, ["maximize", "minimize"]).number == 4
    flat = _records({2: [0.9, 50], 1: [0.8, 50]})
    assert knee(flat, ["maximize", "minimize"]).number == 2


def _sweep_file(tmp_path: Path, search: dict, extra: dict | None = None) -> Path:
    body = {
        "base": str(CONFIGS / "pareto_moons.yaml"),
        "search": {"method": "random", "trials": 2} | search,
        "params": {"train.epsilon": {"low": 1e-3, "high": 0.1, "log": True}},
    } | (extra or {})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"sweep": body}, sort_keys=False))
    return path


TWO = [{"metric": "val_acc"}, {"metric": "n_params"}]
BAD = {
    "unknown metric": (
        {"objectives": [{"metric": "val_acc"}, {"metric": "n_weights"}]},
        None,
        "objectives[1].metric must be one of val_acc, val_loss, n_params, train_seconds; "
        "got 'n_weights'",
    ),
    "bad direction": (
        {"objectives": [{"metric": "val_acc"}, {"metric": "n_params", "direction": "smaller"}]},
        None,
        "objectives[1].direction must be maximize or minimize",
    ),
    "both keys": (
        {"objectives": TWO, "metric": "val_acc"},
        None,
        "has both objectives and metric",
    ),
    "one objective": ({"objectives": TWO[:1]}, None, "a list of 2 or more {metric, direction}"),
    "not a list": ({"objectives": "val_acc"}, None, "a list of 2 or more {metric, direction}"),
    "twice": (
        {"objectives": [TWO[0], TWO[0]]},
        None,
        "objectives[1].metric is val_acc, which an earlier objective names",
    ),
    "test metric": (
        {"objectives": [TWO[0], {"metric": "test_acc"}]},
        None,
        "a test metric: a search chooses on validation data",
    ),
    "first not validation": (
        {"objectives": [TWO[1], TWO[0]]},
        None,
        "objectives[0].metric must be val_acc or val_loss (the primary objective)",
    ),
    "unknown key": (
        {"objectives": [TWO[0], {"metric": "n_params", "goal": "min"}]},
        None,
        "unknown key goal",
    ),
    "grid sampler": (
        {"method": "grid", "objectives": TWO},
        {"grid": {"seed": [0, 1]}},
        "needs a sampler that searches several objectives at once: method nsga2, tpe or "
        "random, not grid",
    ),
    "pruner": (
        {"objectives": TWO},
        {"pruner": {"kind": "median"}},
        "sweep.pruner is median, but a multi-objective search is never pruned",
    ),
    "confirm": (
        {"objectives": TWO, "confirm": {"top": 1, "seeds": 2}},
        None,
        "confirm ranks the trials by one metric",
    ),
    "pick not an objective": (
        {"objectives": TWO, "pick": "train_seconds"},
        None,
        "pick must be one of knee, first, val_acc, n_params; got 'train_seconds'",
    ),
    "pick alone": ({"metric": "val_acc", "pick": "knee"}, None, "it needs search.objectives"),
    "population without nsga2": (
        {"objectives": TWO, "population": 10},
        None,
        "population is NSGA-II's population size: it needs method nsga2, not random",
    ),
    "population too small": (
        {"method": "nsga2", "objectives": TWO, "population": 1},
        None,
        "population must be an integer from 2 to 100000",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_multi_objective_search_is_a_one_line_error(case, tmp_path):
    search, extra, message = BAD[case]
    with pytest.raises(ConfigError) as caught:
        load_sweep(_sweep_file(tmp_path, search, extra), [])
    text = str(caught.value)
    assert "\n" not in text and message in text, text


def test_the_cli_refuses_a_bad_objective_in_one_line_before_any_folder(tmp_path):
    path = _sweep_file(tmp_path, {"objectives": [TWO[0], {"metric": "size"}]})
    result = nnlab("sweep", path, "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "objectives[1].metric must be one of" in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def _front_cells(folder: Path) -> dict[int, str]:
    """Trial -> its front mark, from summary.md's table."""
    marks = {}
    for line in (folder / "summary.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1].isdigit():
            marks[int(cells[1])] = cells[0]
    return marks


@pytest.mark.slow
def test_a_search_over_seeds_writes_the_front_its_files_and_a_picked_best_yaml(tmp_path):
    path = _sweep_file(
        tmp_path,
        {"method": "nsga2", "population": 4, "trials": 8, "seed": 1,
         "objectives": [TWO[0], {"metric": "n_params"}], "pick": "knee"},
        {"params": {"model.layers": {"choices": [[2, 2, 2], [2, 4, 2], [2, 30, 2],
                                                 [2, 8, 8, 2]]},
                    "train.epsilon": {"low": 1e-3, "high": 0.05, "log": True}},
         "seeds": [0, 1]},
    )  # fmt: skip
    args = ["-s", "train.iterations=600", "-s", "train.log_every=200"]
    result = nnlab("sweep", path, "--runs-dir", "runs", "--jobs", "2", "-q", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    jobs = state_of(folder)["jobs"]
    assert len(jobs) == 16 and all(j["status"] == "completed" for j in jobs.values())
    # each objective: the mean over the trial's two seeds (n_params from the run's summary)
    points: dict[int, list[float]] = {}
    for number in range(8):
        mine = [j for k, j in jobs.items() if k.startswith(f"trial-{number:04d},")]
        assert len(mine) == 2
        for j in mine:
            summary = json.loads((folder / j["run"] / "summary.json").read_text())
            assert j["cost"]["n_params"] == summary["n_params"]
        points[number] = [
            sum(j["final"]["val_acc"] for j in mine) / 2,
            sum(j["cost"]["n_params"] for j in mine) / 2,
        ]
    directions = ["maximize", "minimize"]
    expected = non_dominated(points, directions)
    marks = _front_cells(folder)
    assert {n for n, m in marks.items() if m.startswith("front-")} == expected
    # the front's files, in the table's order, are the configs its trials' first runs ran
    files = sorted((folder / "front").glob("front-*.yaml"))
    assert len(files) == len(expected)
    for n, mark in marks.items():
        if mark:
            name = mark.split()[0]
            ran = folder / jobs[f"trial-{n:04d},seed=0"]["run"] / "config.yaml"
            assert (folder / "front" / f"{name}.yaml").read_text() == ran.read_text()
    # best.yaml: the knee, computed here from the points
    front = {n: points[n] for n in expected}
    spans = []
    for k, d in enumerate(directions):
        vals = [p[k] for p in front.values()]
        spans.append((max(vals), min(vals)) if d == "maximize" else (min(vals), max(vals)))
    dist = {
        n: math.sqrt(sum(((p[k] - b) / (w - b)) ** 2 for k, (b, w) in enumerate(spans) if w != b))
        for n, p in front.items()
    }
    knee_trial = min(dist, key=lambda n: (dist[n], n))
    assert marks[knee_trial].endswith("(best.yaml)")
    ran = folder / jobs[f"trial-{knee_trial:04d},seed=0"]["run"] / "config.yaml"
    assert (folder / "best.yaml").read_text() == ran.read_text()
    assert f"here trial {knee_trial}." in (folder / "summary.md").read_text()
    assert (folder / "plots" / "front.png").stat().st_size > 10_000
    check_run(folder)
    report = nnlab("report", folder, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (folder / "report.md").read_text()
    assert "plots/front.png" in text and f"here trial {knee_trial}." in text
    again = nnlab("train", folder / "best.yaml", "--runs-dir", "runs", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_the_front_figure_draws_the_front_as_a_step_line_and_the_rest_grey():
    points = {0: [0.95, 1000], 1: [0.93, 60], 2: [0.80, 12], 3: [0.85, 60], 4: [0.70, 500]}
    records = _records(points) + [TrialRecord(5, {}, JobStatus.FAILED)]
    directions = ["maximize", "minimize"]
    front = [r.number for r in pareto_front(records, directions)]
    assert front == [0, 1, 2]
    fig = draw_front(
        records, list(zip(("val_acc", "n_params"), directions, strict=True)), front, 1, "t"
    )
    ax = fig.axes[0]
    dominated, members, star = ax.collections
    assert sorted(map(tuple, dominated.get_offsets().tolist())) == [(60, 0.85), (500, 0.7)]
    assert tuple(dominated.get_facecolor()[0][:3]) == (0.65, 0.65, 0.65)  # grey
    assert sorted(map(tuple, members.get_offsets().tolist())) == [
        (12, 0.8), (60, 0.93), (1000, 0.95)
    ]  # fmt: skip
    assert star.get_offsets().tolist() == [[60, 0.93]]
    (line,) = ax.get_lines()[:1]
    assert line.get_drawstyle() == "steps-post"
    assert list(line.get_xdata()) == [12, 60, 1000]  # from the fewest parameters up
    assert list(line.get_ydata()) == [0.8, 0.93, 0.95]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "Parameters, minimized (log scale)"
    assert ax.get_ylabel() == "Validation accuracy (%), maximized"
    labels = ax.get_legend_handles_labels()[1]
    assert "dominated (2)" in labels and "not plotted: 1 without a result" in labels
    assert "best.yaml (knee): trial 1, val_acc 93.00%, n_params 60" in labels
    assert [t.get_text() for t in ax.texts] == ["01", "02", "03"]
    # three objectives: the front over all three, no step line (a projection is no staircase)
    three = [TrialRecord(n, {}, JobStatus.COMPLETED, v[0], values=[*v, 1.0 + n])
             for n, v in points.items()]  # fmt: skip
    fig = draw_front(three, [("val_acc", "maximize"), ("n_params", "minimize"),
                             ("train_seconds", "minimize")], [0, 1, 2, 4], None, "t")  # fmt: skip
    assert not fig.axes[0].get_lines()[:1] or fig.axes[0].get_lines()[0].get_drawstyle() != (
        "steps-post"
    )
    assert "over all 3 objectives" in fig.axes[0].get_title()


@pytest.mark.slow
def test_a_killed_multi_objective_search_resumes_and_finishes_its_trials(tmp_path):
    path = _sweep_file(
        tmp_path,
        {"method": "tpe", "trials": 6, "seed": 2, "objectives": TWO, "pick": "n_params"},
        {"name": "mokill",
         "params": {"model.layers": {"choices": [[2, 3, 2], [2, 10, 2], [2, 6, 6, 2]]},
                    "train.epsilon": {"low": 1e-3, "high": 0.05, "log": True}}},
    )  # fmt: skip
    runs = tmp_path / "runs"
    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", runs]
    args += ["-s", "train.iterations=5000"]

    def two_done(jobs: dict) -> bool:
        return sum(j["status"] == "completed" for j in jobs.values()) >= 2

    folder, before, stamps = kill_9_then_resume(args, runs, "mokill", two_done)
    after = state_of(folder)["jobs"]
    assert sorted(after) == [f"trial-{i:04d}" for i in range(6)]
    assert all(j["status"] == "completed" and j["cost"] for j in after.values())
    for k in stamps:  # the trials done before the kill did not run again
        assert after[k]["attempts"] == 1 and after[k]["overrides"] == before[k]["overrides"]
    study = load_study(folder)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    for t in study.trials:  # the study was told both objectives, as state.json has them
        job = after[f"trial-{t.number:04d}"]
        assert t.values == [job["final"]["val_acc"], job["cost"]["n_params"]]
    points = {int(k[6:10]): [j["final"]["val_acc"], j["cost"]["n_params"]]
              for k, j in after.items()}  # fmt: skip
    expected = non_dominated(points, ["maximize", "minimize"])
    assert len(list((folder / "front").glob("front-*.yaml"))) == len(expected)
    fewest = min(expected, key=lambda n: (points[n][1], -points[n][0], n))
    assert _front_cells(folder)[fewest].endswith("(best.yaml)")


def test_tpe_and_nsga2_ask_both_objectives_and_the_study_keeps_its_directions(tmp_path):
    from nnlab.sweeps.search.study import Study

    for method in ("tpe", "nsga2", "random"):
        sweep = load_sweep(_sweep_file(tmp_path, {"method": method, "objectives": TWO}), [])
        (tmp_path / method).mkdir()
        study = Study(tmp_path / method, sweep.search)
        for _ in range(3):
            number, params = study.ask()
            study.tell(number, [0.5 + params["train.epsilon"], 12.0], "complete")
        number, _ = study.ask()
        study.tell(number, [math.nan, 12.0], "complete")  # not finite: failed
        states = [t.state.name for t in study.trials()]
        assert states == ["COMPLETE"] * 3 + ["FAIL"]
        assert len(study.study.directions) == 2
        assert list(itertools.chain(*(t.values for t in study.trials()[:3])))[1::2] == [12.0] * 3
