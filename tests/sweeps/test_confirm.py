"""Seed-robust search: `search.confirm` re-runs the best trials on fresh seeds and the winner is
the finalist with the best mean, through the real CLI (resume included)."""

import json
import statistics
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIGS, check_run, nnlab, run_dir_of
from tests.sweeps.test_search import kill_9_then_resume, load_study, report_and_best_run
from tests.sweeps.test_sweep import state_of

ARGS = ["-s", "data.val_size=0.25", "-s", "train.log_every=100"]


def _confirm_file(folder: Path, name: str, trials: int = 4, confirm: str = "{top: 2, seeds: 2}"):
    path = folder / f"{name}.yaml"
    path.write_text(
        f"sweep:\n  name: {name}\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        f"  search: {{method: random, trials: {trials}, metric: val_loss, seed: 5, "
        f"confirm: {confirm}}}\n"
        "  params:\n"
        "    train.epsilon: {low: 0.003, high: 0.3, log: true}\n"
        "    model.layers: {choices: [[2, 3, 2], [2, 6, 2]]}\n"
    )
    return path


def _val_loss(folder: Path, job: dict) -> float:
    """A job's search metric, read from its run folder (not from state.json)."""
    return json.loads((folder / job["run"] / "summary.json").read_text())["final"]["val_loss"]


def _trial(job_id: str) -> int:
    return int(job_id.split(",")[0].split("-")[1])


@pytest.mark.slow
def test_the_best_trials_run_again_on_fresh_seeds_and_the_best_mean_wins(tmp_path):
    path = _confirm_file(tmp_path, "confirmed")
    args = ["--runs-dir", "runs", "--jobs", "2", *ARGS, "-s", "train.iterations=400"]
    result = nnlab("sweep", path, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    check_run(folder)
    jobs = state_of(folder)["jobs"]
    trials = {k: j for k, j in jobs.items() if k.startswith("trial-")}
    confirms = {k: j for k, j in jobs.items() if k.startswith("confirm-")}
    assert sorted(trials) == [f"trial-{i:04d}" for i in range(4)]
    assert len(confirms) == 4 and all(j["status"] == "completed" for j in jobs.values())
    # the finalists: the two lowest val_loss among the trials, ties to the lower number
    losses = {_trial(k): _val_loss(folder, j) for k, j in trials.items()}
    top = sorted(losses, key=lambda n: (losses[n], n))[:2]
    assert {_trial(k) for k in confirms} == set(top)
    seeds = sorted({j["overrides"]["seed"] for j in confirms.values()})
    assert len(seeds) == 2 and 0 not in seeds  # fresh: not the base seed, the same for each
    for k, j in confirms.items():
        params = trials[f"trial-{_trial(k):04d}"]["overrides"]
        assert j["overrides"] == params | {"seed": j["overrides"]["seed"]}
        assert k == f"confirm-{_trial(k):04d},seed={j['overrides']['seed']}"
        assert yaml.safe_load((folder / j["run"] / "config.yaml").read_text())["seed"] in seeds
    # the winner: the best mean over its confirmation runs (the trial's own run apart)
    runs: dict[int, list[float]] = {n: [] for n in top}
    for k, j in confirms.items():
        runs[_trial(k)].append(_val_loss(folder, j))
    means = {n: statistics.mean(v) for n, v in runs.items()}
    won = min(top, key=lambda n: (means[n], n))
    best = yaml.safe_load((folder / "best.yaml").read_text())
    params = trials[f"trial-{won:04d}"]["overrides"]
    assert best["train"]["epsilon"] == params["train.epsilon"]
    assert best["model"]["layers"] == params["model.layers"] and best["seed"] == 0
    summary = (folder / "summary.md").read_text()
    assert "Confirmation: the 2 best trials run again on 2 fresh seeds" in summary
    assert f"Winner: trial {won} (`best.yaml` holds its config, with its trial's seed 0)" in summary
    assert "best mean of val_loss" in summary
    rows = {line.split(" | ")[1].strip("*"): line for line in summary.splitlines()
            if line.startswith(("| winner", "| **winner", "|  |"))}  # fmt: skip
    assert set(rows) == {str(n) for n in top}
    for n in top:
        assert f"| 2 | {means[n]:.4f}" in rows[str(n)].replace("**", "")
        assert f"| {losses[n]:.4f} |" in rows[str(n)].replace("**", "")  # the trial's, apart
        assert all(f"{v:.4f}" in rows[str(n)] for v in runs[n])
    assert rows[str(won)].startswith("| **winner**")
    # the confirmation runs never fed the study
    assert [t.state.name for t in load_study(folder).trials] == ["COMPLETE"] * 4
    text, rerun = report_and_best_run(folder, tmp_path)
    assert "Confirmation: the 2 best trials" in text and "**winner**" in text
    # best.yaml reproduces the winning trial's own run
    summary = json.loads((rerun / "summary.json").read_text())
    assert summary["final"]["val_loss"] == pytest.approx(losses[won], rel=1e-9)
    # a finished sweep resumed runs nothing
    before = state_of(folder)["jobs"]
    resumed = nnlab("sweep", "--resume", folder, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert state_of(folder)["jobs"] == before


@pytest.mark.slow
def test_a_search_killed_during_confirmation_resumes_only_the_missing_confirmation_jobs(
    tmp_path,
):
    path = _confirm_file(tmp_path, "killconfirm", trials=3)
    runs = tmp_path / "runs"
    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, *ARGS]
    args += ["-s", "train.iterations=3000"]

    def confirming(jobs: dict) -> bool:
        return any(k.startswith("confirm-") and j["status"] == "completed" for k, j in jobs.items())

    folder, before, stamps = kill_9_then_resume(args, runs, "killconfirm", confirming)
    done = {k: before[k] for k in stamps}
    assert len(before) == 7 and 4 <= len(done) < 7  # killed during the confirmation
    after = state_of(folder)["jobs"]
    assert sorted(after) == sorted(before)  # no confirmation job added or lost
    assert all(j["status"] == "completed" for j in after.values())
    for k, j in done.items():  # untouched: one attempt, same files
        assert after[k]["attempts"] == 1
        assert (folder / j["run"] / "meta.json").stat().st_mtime_ns == stamps[k]
    assert [t.state.name for t in load_study(folder).trials] == ["COMPLETE"] * 3
    assert "Winner: trial" in (folder / "summary.md").read_text()


BAD = {
    "not a mapping": ("3", "sweep.search.confirm must be a mapping {top: k, seeds: n}"),
    "unknown key": ("{top: 2, seeds: 2, rule: lcb}", "unknown key rule; allowed: top, seeds"),
    "top 0": ("{top: 0, seeds: 2}", "confirm.top (the best trials to confirm) must be an integer"),
    "no seeds": ("{top: 1}", "confirm.seeds (fresh seeds for each) must be an integer from 1"),
    "too many seeds": ("{top: 1, seeds: 100000}", "must be an integer from 1 to 1000; got"),
    "top above trials": ("{top: 5, seeds: 1}", "confirm.top is 5, more than the 4 trials"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_confirm_is_a_one_line_error_before_anything_runs(case, tmp_path):
    confirm, message = BAD[case]
    path = _confirm_file(tmp_path, "bad", confirm=confirm)
    result = nnlab("sweep", path, "--runs-dir", "runs", *ARGS, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error:"), result.stderr
    assert message in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def test_confirm_needs_a_random_or_tpe_search_and_no_searched_seed(tmp_path):
    from nnlab.errors import ConfigError
    from nnlab.sweeps import load_sweep

    path = _confirm_file(tmp_path, "grid")
    path.write_text(path.read_text().replace("method: random", "method: grid"))
    with pytest.raises(ConfigError, match="confirm re-runs a search's best trials: it needs"):
        load_sweep(path, ["data.val_size=0.25"])
    path = _confirm_file(tmp_path, "seeded")
    path.write_text(path.read_text() + "    seed: {low: 0, high: 9}\n")
    with pytest.raises(ConfigError, match="leave seed out of sweep.params"):
        load_sweep(path, ["data.val_size=0.25"])
    path.write_text(
        path.read_text().replace("  search:", "  confirm: {top: 1, seeds: 1}\n  search:")
    )
    with pytest.raises(ConfigError, match="unknown key sweep.confirm"):
        load_sweep(path, ["data.val_size=0.25"])


def test_the_winner_is_the_best_fresh_mean_not_the_best_trial_and_a_diverged_finalist_cannot_win():
    from types import SimpleNamespace

    from nnlab.runfolder.types import JobEntry
    from nnlab.sweeps.search.confirm import by_rule, finalists, winner

    def job(params: dict, status: str, loss: float | None) -> JobEntry:
        return JobEntry(params, status, 1, None, None, {} if loss is None else {"val_loss": loss})

    a, b, c = {"train.epsilon": 0.1}, {"train.epsilon": 0.2}, {"train.epsilon": 0.3}
    jobs = {
        "trial-0000": job(a, "completed", 0.125),  # the best trial: a lucky draw
        "trial-0001": job(b, "completed", 0.25),
        "trial-0002": job(c, "completed", 0.05),
        "trial-0003": job(c, "completed", 0.90),  # not a finalist
        "confirm-0000,seed=1000": job(a | {"seed": 1000}, "completed", 0.5),
        "confirm-0000,seed=1001": job(a | {"seed": 1001}, "completed", 0.5),
        "confirm-0001,seed=1000": job(b | {"seed": 1000}, "completed", 0.25),
        "confirm-0001,seed=1001": job(b | {"seed": 1001}, "completed", 0.375),
        "confirm-0002,seed=1000": job(c | {"seed": 1000}, "diverged", 0.01),
        "confirm-0002,seed=1001": job(c | {"seed": 1001}, "completed", 0.05),
    }
    search = SimpleNamespace(metric="val_loss", direction="minimize")
    sweep = SimpleNamespace(search=search, base_config={"seed": 7})
    found = finalists(sweep, SimpleNamespace(jobs=jobs))
    assert [f.number for f in found] == [0, 1, 2]
    assert found[0].runs[0] == ("trial-0000", 7, "completed", 0.125)  # the trial's run first
    assert found[0].trial_seed == 7 and found[0].values == [0.5, 0.5]  # fresh seeds only
    assert found[0].trial_values == [0.125]  # chosen for being best: shown, not averaged
    assert found[2].diverged and found[2].values == [0.05]
    assert winner(found, "minimize").number == 1  # mean 0.3125 beats 0.5; 2 diverged
    assert [f.number for f in by_rule(found, "minimize")] == [1, 0, 2]  # the tables' order
    assert winner(found, "maximize").number == 0
    jobs["confirm-0001,seed=1001"] = job(b | {"seed": 1001}, "completed", 0.75)
    found = finalists(sweep, SimpleNamespace(jobs=jobs))
    assert winner(found, "minimize").number == 0  # a tie of means (0.5): the lower number
    jobs["confirm-0001,seed=1001"] = job(b | {"seed": 1001}, "interrupted", None)
    found = finalists(sweep, SimpleNamespace(jobs=jobs))
    assert winner(found, "minimize") is None  # a confirmation run missing: no winner yet


@pytest.mark.slow
def test_the_progress_total_counts_the_confirmation_jobs(tmp_path):
    import nnlab

    path = _confirm_file(tmp_path, "counted", trials=2, confirm="{top: 1, seeds: 2}")
    totals = []
    nnlab.sweep(
        path,
        {"data.val_size": 0.25, "train.iterations": 100, "train.log_every": 50},
        runs_dir=tmp_path / "runs",
        jobs=1,
        progress=lambda done, total, **kw: totals.append(total),
    )
    assert set(totals) == {4}  # 2 trials + 1 finalist on 2 fresh seeds, from the start
