"""Search sweeps: Optuna's random and TPE sampling, validated up front, resumable after kill -9."""

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnlab.config.resolve import load_config
from nnlab.errors import ConfigError
from nnlab.sweeps import load_sweep
from nnlab.sweeps.search.space import parse_search
from nnlab.sweeps.search.study import Study
from nnlab.sweeps.spec import _check_key
from tests.conftest import CONFIGS, check_run, nnlab, nnlab_process, run_dir_of
from tests.sweeps.test_sweep import _wait_for, state_of

BASE = load_config(CONFIGS / "moons_tanh.yaml", ["data.val_size=0.25"])


def load_study(folder: Path):
    """A sweep folder's Optuna study, read from its journal file."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / "search.journal")))
    return optuna.load_study(study_name="nnlab", storage=storage)


PARAMS = {
    "train.epsilon": {"low": 1e-4, "high": 0.3, "log": True},
    "train.reg_lambda": {"low": 0.0, "high": 0.1, "step": 0.01},
    "train.iterations": {"low": 100, "high": 1000, "step": 100},
    "model.activation": {"choices": ["tanh", "relu"]},
    "model.layers": {"choices": [[2, 3, 2], [2, 5, 2]]},
}


def _spec(method="random", seed=0, trials=40, params=PARAMS):
    search = {"method": method, "trials": trials, "metric": "val_acc", "seed": seed}
    return parse_search(search, params, Path("s.yaml"), BASE, _check_key)


def _sample(folder: Path, spec, n: int) -> list[dict]:
    """Ask for n trials, telling each a value that depends on its parameters."""
    study, out = Study(folder, spec), []
    for _ in range(n):
        number, params = study.ask()
        out.append(params)
        study.tell(number, -abs(math.log10(params["train.epsilon"]) + 2), "complete")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["random", "tpe"])
def test_sampled_values_respect_bounds_log_scale_and_steps_and_follow_the_seed(method, tmp_path):
    spec = _spec(method)
    for name in "abc":
        (tmp_path / name).mkdir()
    a = _sample(tmp_path / "a", spec, 40)
    for p in a:
        assert 1e-4 <= p["train.epsilon"] <= 0.3
        step = p["train.reg_lambda"] / 0.01
        assert 0 <= p["train.reg_lambda"] <= 0.1 and abs(step - round(step)) < 1e-9
        assert p["train.iterations"] in range(100, 1001, 100)
        assert p["model.activation"] in ("tanh", "relu")
        assert p["model.layers"] in ([2, 3, 2], [2, 5, 2])  # lists come back as lists
        load_config(BASE, p)  # every trial is a valid config
    assert _sample(tmp_path / "b", spec, 40) == a  # the same seed: the same trials
    assert _sample(tmp_path / "c", _spec(method, seed=1), 40) != a


@pytest.mark.slow
def test_a_log_scale_spreads_trials_over_the_decades(tmp_path):
    values = [p["train.epsilon"] for p in _sample(tmp_path, _spec("random", trials=400), 400)]
    logs = np.log10(values)
    # log-uniform on [1e-4, 0.3]: about half below the geometric midpoint 5.5e-3
    assert 0.4 < np.mean(logs < np.log10(math.sqrt(1e-4 * 0.3))) < 0.6
    assert np.mean(np.array(values) < 0.03) > 0.5  # uniform would put ~10% there


def test_tpe_models_the_results_after_its_startup_trials(tmp_path):
    """The same 20 trials: after 3 random ones TPE homes in on the best learning rate (1e-2);
    with 20 startup trials all are random and spread over the range."""
    params = {"train.epsilon": {"low": 1e-4, "high": 1.0, "log": True}}
    misses = {}
    for startup in (3, 20):
        spec = _spec("tpe", params=params)
        spec.startup_trials = startup
        (tmp_path / str(startup)).mkdir()
        last = _sample(tmp_path / str(startup), spec, 20)[10:]
        misses[startup] = np.mean([abs(math.log10(p["train.epsilon"]) + 2) for p in last])
    assert misses[3] < 0.7 * misses[20], misses
    assert _spec("tpe").to_json().keys() == spec.to_json().keys() - {"startup_trials"}


BAD = {
    "test metric": (
        {"metric": "test_acc"},
        None,
        "a test metric: a search chooses on validation data, never on test",
    ),
    "no validation split": ({"metric": "val_acc"}, "data.val_size=0", "no validation split"),
    "unknown key": ({}, {"train.lr": {"low": 0.1, "high": 0.2}}, "unknown key train.lr"),
    "low above high": ({}, {"train.epsilon": {"low": 0.3, "high": 0.1}}, "low < high"),
    "log from zero": ({}, {"train.epsilon": {"low": 0, "high": 0.1, "log": True}}, "low > 0"),
    "value the config refuses": (
        {},
        {"train.epsilon": {"low": -1.0, "high": 0.1}},
        "the value -1.0 is refused: train.epsilon must be a number > 0",
    ),
    "empty choices": ({}, {"model.activation": {"choices": []}}, "non-empty list"),
    "method": ({"method": "bayes"}, None, "method must be one of grid, random, tpe"),
    "trials": ({"trials": 0}, None, "trials must be an integer >= 1"),
    "startup without tpe": ({"startup_trials": 3}, None, "it needs method tpe, not random"),
    "startup below 0": (
        {"method": "tpe", "startup_trials": -1},
        None,
        "startup_trials must be an integer >= 0",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_search_is_a_one_line_error_before_anything_runs(case, tmp_path):
    search, extra, message = BAD[case]
    params = {"train.epsilon": {"low": 1e-3, "high": 0.1, "log": True}}
    overrides = ["-s", "data.val_size=0.25"]
    if isinstance(extra, dict):
        params = extra
    elif extra:
        overrides = ["-s", extra]
    body = {"base": str(CONFIGS / "moons_tanh.yaml"), "params": params}
    body["search"] = {"method": "random", "trials": 2, "metric": "val_acc"} | search
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"sweep": body}))
    result = nnlab("sweep", tmp_path / "s.yaml", "--runs-dir", "runs", *overrides, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def test_grid_and_search_do_not_mix(tmp_path):
    (tmp_path / "s.yaml").write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid: {{seed: [0, 1]}}\n"
        "  search: {method: tpe, trials: 2, metric: val_acc}\n"
        "  params: {train.epsilon: {low: 0.001, high: 0.1}}\n"
    )
    with pytest.raises(ConfigError, match="leave out sweep.grid"):
        load_sweep(tmp_path / "s.yaml", ["data.val_size=0.25"])


SEARCH = """  name: {name}
  search: {{method: tpe, trials: {trials}, metric: val_acc, seed: 3}}
  params:
    train.epsilon: {{low: 0.001, high: 0.1, log: true}}
    model.layers: {{choices: [[2, 3, 2], [2, 6, 2]]}}
"""


def _search_file(folder: Path, name: str, trials: int, seeds: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        + SEARCH.format(name=name, trials=trials)
        + seeds
    )
    return path


def report_and_best_run(folder: Path, cwd: Path) -> tuple[str, Path]:
    """`nnlab report` of a search folder and `nnlab train` of its best.yaml: the report's
    Markdown and the new run's folder."""
    report = nnlab("report", folder, cwd=cwd)
    assert report.returncode == 0, report.stderr
    again = nnlab("train", folder / "best.yaml", "--runs-dir", "runs", "-q", cwd=cwd)
    assert again.returncode == 0, again.stderr
    return (folder / "report.md").read_text(), run_dir_of(again, cwd)


@pytest.mark.slow
def test_a_search_runs_its_trials_ranks_them_and_writes_a_runnable_best_yaml(tmp_path):
    path = _search_file(tmp_path, "find", 6, "  seeds: [0, 1]\n")
    args = ["-s", "data.val_size=0.25", "-s", "train.iterations=300", "-s", "train.log_every=100"]
    result = nnlab("sweep", path, "--runs-dir", "runs", "--jobs", "2", "-q", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    jobs = state_of(folder)["jobs"]
    assert len(jobs) == 12 and all(j["status"] == "completed" for j in jobs.values())
    trials = {k.split(",")[0] for k in jobs}
    assert trials == {f"trial-{i:04d}" for i in range(6)}
    # a trial's value is the mean over its seeds; the table ranks by it
    means = {}
    for t in trials:
        accs = [j["final"]["val_acc"] for k, j in jobs.items() if k.startswith(t + ",")]
        means[t] = sum(accs) / len(accs)
    text = (folder / "summary.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    best = max(means.values())
    assert rows and f"{best:.2%}" in rows[0]
    assert "test_acc" in text
    for png in ("history.png", "importances.png", "parallel.png"):
        assert (folder / "plots" / png).stat().st_size > 10_000, png
    check_run(folder)
    text, _ = report_and_best_run(folder, tmp_path)
    assert "Search: tpe, 6 of 6 trials, maximize val_acc" in text and "history.png" in text


def kill_9_then_resume(args: list, runs: Path, name: str, when) -> tuple[Path, dict, dict]:
    """Run ``nnlab ARGS``, kill -9 it once ``when(jobs)`` holds of its state.json's jobs, and
    resume it to the end: the sweep folder, its jobs when killed, and the modification time
    of each then completed job's meta.json."""

    def killable() -> bool:
        states = list(runs.glob("*/state.json"))
        try:
            return when(json.loads(states[0].read_text())["jobs"]) if states else False
        except ValueError:
            return False

    with nnlab_process(*args) as proc:
        _wait_for(killable)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        folder = next(runs.glob(f"*-sweep-{name}"))
        before = state_of(folder)["jobs"]
        stamps = {
            k: (folder / j["run"] / "meta.json").stat().st_mtime_ns
            for k, j in before.items()
            if j["status"] == "completed"
        }
        result = nnlab("sweep", "--resume", folder, "-q")
    assert result.returncode == 0, result.stderr
    return folder, before, stamps


@pytest.mark.slow
def test_kill_9_mid_search_then_resume_finishes_exactly_the_trials_with_none_duplicated(
    tmp_path,
):
    path = _search_file(tmp_path, "killsearch", 6)
    runs = tmp_path / "runs"
    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", runs]
    args += ["-s", "data.val_size=0.25", "-s", "train.iterations=5000"]

    def two_done(jobs: dict) -> bool:
        return sum(j["status"] == "completed" for j in jobs.values()) >= 2

    folder, before, stamps = kill_9_then_resume(args, runs, "killsearch", two_done)
    done = {k: before[k] for k in stamps}
    after = state_of(folder)["jobs"]
    assert sorted(after) == [f"trial-{i:04d}" for i in range(6)]
    assert all(j["status"] == "completed" for j in after.values())
    for k, j in done.items():  # untouched: same params, one attempt, same files
        assert after[k]["overrides"] == j["overrides"] and after[k]["attempts"] == 1
        assert (folder / j["run"] / "meta.json").stat().st_mtime_ns == stamps[k]
    params = [json.dumps(j["overrides"], sort_keys=True) for j in after.values()]
    assert len(set(params)) == len(params)  # no trial ran twice
    states = [t.state.name for t in load_study(folder).trials]
    assert states == ["COMPLETE"] * 6  # the study agrees: six trials, all told


@pytest.mark.slow
def test_a_changed_search_space_is_refused_on_resume_unless_forced(tmp_path):
    path = _search_file(tmp_path, "changing", 2)
    args = ["-s", "data.val_size=0.25", "-s", "train.iterations=200", "-s", "train.log_every=100"]
    first = nnlab("sweep", path, "--runs-dir", "runs", "-q", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = run_dir_of(first, tmp_path)
    path.write_text(path.read_text().replace("high: 0.1, log: true", "high: 0.2, log: true"))
    refused = nnlab("sweep", path, "--resume", folder, "-q", *args, cwd=tmp_path)
    assert refused.returncode == 2 and "the sweep changed since it started" in refused.stderr
    assert "search" in refused.stderr
    forced = nnlab("sweep", path, "--resume", folder, "--force", "-q", *args, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(state_of(folder)["jobs"]) == 2  # both trials had finished: nothing more to run
