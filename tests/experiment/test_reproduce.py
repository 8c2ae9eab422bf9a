"""Reproducible by construction: the thread count in config.yaml and applied, the environment
in meta.json, `nnlab train --repeat`, and the `did not learn` flag."""

import json
from importlib import metadata

import numpy as np
import pytest
import yaml

import nnlab
from nnlab.common.metrics import did_not_learn, majority_fraction
from nnlab.experiment import sameness
from nnlab.runfolder import environment
from nnlab.runfolder.environment import thread_share, usable_cores
from tests.conftest import CONFIGS, check_run, read_csv, run_dir_of
from tests.conftest import nnlab as run_nnlab


def test_the_thread_rule_is_the_cores_shared_among_the_runs_at_once():
    cores = usable_cores()
    assert thread_share(1) == cores
    assert thread_share(cores) == 1
    assert thread_share(cores * 4) == 1  # never none


def test_config_yaml_records_the_threads_used_and_meta_json_the_environment(tmp_path, moons_small):
    run = nnlab.train(moons_small, runs_dir=tmp_path)
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved["train"]["threads"] == usable_cores()  # nnlab train: the whole share
    env = json.loads((run.path / "meta.json").read_text())["environment"]
    assert env["threads"] == usable_cores()
    assert env["device"] == "cpu" and env["precision"] == "float64"
    assert env["libraries"]["numpy"] == np.__version__
    assert env["libraries"]["numba"] == metadata.version("numba")  # the MLP's compiled Adam
    assert env["blas"] and all(b["threads"] == usable_cores() for b in env["blas"])
    assert env["step_threads"] == 1  # moons' steps are too small for a second BLAS thread
    check_run(run.path)


def test_a_configs_thread_count_is_applied_to_every_pool(tmp_path, moons_small):
    moons_small["train"]["threads"] = 1
    run = nnlab.train(moons_small, runs_dir=tmp_path)
    env = run.meta.environment
    assert env["threads"] == 1 and all(b["threads"] == 1 for b in env["blas"])
    assert yaml.safe_load((run.path / "config.yaml").read_text())["train"]["threads"] == 1


@pytest.mark.slow
def test_dcn_environment_names_torchs_threads_and_flags(tmp_path):
    run = nnlab.train(
        CONFIGS / "digits_dcn.yaml",
        overrides={
            "train.epochs": 1,
            "train.threads": 1,
            "train.device": "cpu",
            "train.stats_every": 1000,
            "train.tensorboard": False,
        },  # fmt: skip
        runs_dir=tmp_path,
    )
    env = run.meta.environment
    assert env["torch"]["intra_op_threads"] == 1
    assert env["device"] == "cpu" and env["precision"] == "float32"
    assert env["torch"]["deterministic_algorithms"] is False
    assert env["torch"]["cpu_capability"]


def test_threads_below_one_are_a_config_error(tmp_path):
    result = run_nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "-s", "train.threads=0", "--runs-dir", tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("nnlab: error:") and "train.threads" in result.stderr
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_environment_differences_name_each_key_that_differs():
    a = {"threads": 1, "blas": [{"library": "openblas 0.3.30", "threads": 1}], "cpu": "X"}
    b = {"threads": 2, "blas": [{"library": "openblas 0.3.30", "threads": 2}], "cpu": "X"}
    assert environment.differences(a, b) == ["blas.0.threads: 1 → 2", "threads: 1 → 2"]
    assert environment.differences(a, a) == []
    assert environment.differences(None, {"cpu": "X"}) == ["cpu: not set → X"]


@pytest.mark.slow
def test_repeat_gives_the_same_rows_in_a_new_folder_and_says_so(tmp_path):
    first = run_nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "-s", "train.iterations=3000",
        "-s", "train.threads=1", "--runs-dir", tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    original = run_dir_of(first, tmp_path)
    again = run_nnlab("train", "--repeat", original, "--runs-dir", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    repeated = run_dir_of(again, tmp_path)
    assert repeated != original and repeated.parent == tmp_path / "again"
    assert f"the same numbers as {original}" in again.stdout
    assert read_csv(repeated / "metrics.csv") == read_csv(original / "metrics.csv")
    assert (repeated / "config.yaml").read_text() == (original / "config.yaml").read_text()
    assert json.loads((repeated / "meta.json").read_text())["repeat_of"] == str(original)
    check_run(original, repeated)


@pytest.mark.slow
def test_sameness_names_the_first_row_that_differs(tmp_path, moons_small):
    a = nnlab.train(moons_small, runs_dir=tmp_path)
    b = nnlab.train({**moons_small, "seed": 1}, runs_dir=tmp_path)
    same, lines = sameness(a, b)
    assert not same and lines[0].startswith("metric row 1 (step 0) differs: train_loss ")
    assert sameness(a, a) == (True, [])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-s", "seed=3"], "--repeat takes no -s overrides"),
        ([CONFIGS / "moons_tanh.yaml"], "give one of CONFIG, --resume and --repeat"),
    ],
)
def test_repeat_refuses_what_would_change_the_run(tmp_path, extra, message):
    result = run_nnlab("train", "--repeat", tmp_path, *extra, "--runs-dir", tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_repeat_of_a_folder_that_is_no_run_is_one_line(tmp_path):
    result = run_nnlab("train", "--repeat", tmp_path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"nnlab: error: {tmp_path}: not a run folder or a sweep job folder (no meta.json)"
    ]


def test_did_not_learn_compares_the_best_accuracy_with_chance():
    assert majority_fraction([0, 1, 1, 1]) == 0.75
    assert did_not_learn({"train_acc": 0.75, "test_acc": 0.76}, 0.75) is True
    assert did_not_learn({"train_acc": 0.80, "test_acc": 0.90}, 0.75) is False
    assert did_not_learn({"train_acc": 0.90}, 0.75) is False
    # held-out splits decide: a lucky training batch is no learning
    assert did_not_learn({"train_acc": 0.90, "val_acc": 0.76}, 0.75) is True
    assert did_not_learn({"train_loss": 0.1}, 0.75) is None
    assert did_not_learn({"train_acc": 0.9}, None) is None


@pytest.mark.slow
def test_a_run_on_features_that_say_nothing_is_flagged_and_a_learning_one_is_not(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    table = tmp_path / "blank.csv"
    rows = ["a,b,label"] + [f"0.5,0.5,{label}" for label in y]  # every example looks alike
    table.write_text("\n".join(rows) + "\n")
    config = {
        "data": {"name": "csv", "path": str(table), "target": "label"},
        "model": {"layers": [2, 4, 3]},
        "train": {"optimizer": "adam", "epochs": 5, "batch_size": 32, "log_every": 5},
    }
    blank = nnlab.train(config, runs_dir=tmp_path)
    assert blank.status == "completed"
    assert blank.summary.chance_acc == pytest.approx(majority_fraction(y), abs=0.05)
    assert blank.summary.did_not_learn is True
    learned = nnlab.train(CONFIGS / "moons_tanh.yaml", runs_dir=tmp_path)
    assert learned.summary.chance_acc == 0.5 and learned.summary.did_not_learn is False
    listed = run_nnlab("runs", "--runs-dir", tmp_path)
    rows = {line.split()[-1]: line for line in listed.stdout.splitlines()[1:]}
    assert "completed, did not learn" in rows[blank.path.name]
    assert "did not learn" not in rows[learned.path.name]
    flagged = run_nnlab("runs", "--runs-dir", tmp_path, "--where", "did_not_learn=true",
                        "--format", "json")  # fmt: skip
    assert [r["folder"] for r in json.loads(flagged.stdout)] == [blank.path.name]
    assert run_nnlab("report", blank.path).returncode == 0
    assert (
        "It did not learn: its accuracy stayed at chance" in (blank.path / "report.md").read_text()
    )


@pytest.mark.slow
def test_a_dcn_search_winner_retrained_from_best_yaml_has_the_same_numbers(tmp_path):
    """The issue's case: sweep workers share the cores (``--jobs 2``: a thread each) and
    ``nnlab train`` alone would take them all; best.yaml carries the thread count, so the
    retrained winner logs exactly the trial's rows (a second thread sums in another order,
    and two epochs already show it in the last bits)."""
    search = tmp_path / "search.yaml"
    search.write_text(
        f"sweep:\n  name: dcn_search\n  base: {CONFIGS / 'digits_dcn.yaml'}\n"
        "  search: {method: random, trials: 2, metric: val_loss, seed: 0}\n"
        "  params:\n    train.epsilon: {low: 5.0e-4, high: 2.0e-3, log: true}\n"
    )
    fast = ["-s", "train.epochs=2", "-s", "train.stats_every=1000", "-s", "train.device=cpu",
            "-s", "train.tensorboard=false"]  # fmt: skip
    swept = run_nnlab("sweep", search, *fast, "--jobs", "2", "--runs-dir", tmp_path / "runs")
    assert swept.returncode == 0, swept.stderr
    folder = run_dir_of(swept, tmp_path)
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["train"]["threads"] == thread_share(2)  # what the trial's worker ran on
    state = json.loads((folder / "state.json").read_text())
    trial = next(
        job for job in state["jobs"].values()
        if job["overrides"]["train.epsilon"] == best["train"]["epsilon"]
    )  # fmt: skip
    again = run_nnlab("train", folder / "best.yaml", "--runs-dir", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    retrained = run_dir_of(again, tmp_path)
    assert read_csv(retrained / "metrics.csv") == read_csv(folder / trial["run"] / "metrics.csv")
    assert (retrained / "model.pt").read_bytes() == (
        folder / trial["run"] / "model.pt"
    ).read_bytes()


@pytest.mark.slow
def test_a_sweep_job_at_chance_is_flagged_in_state_the_table_and_the_report(tmp_path):
    swept = run_nnlab(
        "sweep", CONFIGS / "sweeps" / "moons_activations.yaml", "-s", "train.iterations=3000",
        "-s", "train.epsilon=0.05", "--runs-dir", tmp_path,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    folder = run_dir_of(swept, tmp_path)
    jobs = json.loads((folder / "state.json").read_text())["jobs"]
    flagged = {job_id for job_id, job in jobs.items() if job.get("did_not_learn")}
    for job_id, job in jobs.items():  # the flag is the run's own, read back from its summary
        summary = json.loads((folder / job["run"] / "summary.json").read_text())
        assert summary["did_not_learn"] is (job_id in flagged)
    assert flagged == {"activation=relu"}  # 50% on two balanced moons: chance
    table = (folder / "summary.md").read_text()
    assert "50.00 (1 did not learn)" in table and "averaged and counted beside" in table
    assert run_nnlab("report", folder).returncode == 0
    assert "| activation=relu | completed, did not learn |" in (folder / "report.md").read_text()
    check_run(folder)


@pytest.mark.slow
def test_a_sweep_from_before_threads_were_recorded_still_resumes(tmp_path):
    """A sweep.yaml written by an older nnlab has no train.threads in its base config: that
    is today's default, not a change to the sweep."""
    swept = run_nnlab(
        "sweep", CONFIGS / "sweeps" / "moons_activations.yaml", "-s", "train.iterations=300",
        "--runs-dir", tmp_path,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    folder = run_dir_of(swept, tmp_path)
    record = yaml.safe_load((folder / "sweep.yaml").read_text())
    del record["base_config"]["train"]["threads"]
    (folder / "sweep.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    state = json.loads((folder / "state.json").read_text())
    state["jobs"]["activation=relu"]["status"] = "interrupted"
    (folder / "state.json").write_text(json.dumps(state))
    resumed = run_nnlab("sweep", "--resume", folder)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((folder / "state.json").read_text())["jobs"]["activation=relu"]
    assert after["status"] == "completed" and after["attempts"] == 2


@pytest.mark.slow
def test_more_threads_than_cores_runs_with_a_warning(tmp_path):
    more = usable_cores() + 1
    result = run_nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "-s", "train.iterations=200", "-s",
        f"train.threads={more}", "--runs-dir", tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"nnlab: warning: train.threads is {more} but this process may use" in result.stderr
    meta = json.loads((run_dir_of(result, tmp_path) / "meta.json").read_text())
    assert meta["environment"]["threads"] == more and len(meta["warnings"]) == 1
