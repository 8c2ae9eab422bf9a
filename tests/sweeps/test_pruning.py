"""Pruning a search's bad trials: status `pruned`, at the expected step, through the real CLI."""

from pathlib import Path

import optuna
import pytest
import yaml

from nnlab.config.resolve import load_config
from nnlab.runfolder.runs import load_run, read_metrics
from nnlab.sweeps.executors import Task, run_task
from nnlab.sweeps.search.pruning import parse_pruner
from nnlab.sweeps.search.space import JOURNAL, parse_search
from nnlab.sweeps.search.study import Study
from nnlab.sweeps.spec import _check_key
from tests.conftest import CONFIGS, check_run, nnlab, run_dir_of
from tests.sweeps.test_search import load_study
from tests.sweeps.test_sweep import state_of

BASE = load_config(CONFIGS / "moons_tanh.yaml", ["data.val_size=0.25"])


def test_a_bad_trial_is_pruned_at_the_expected_step_keeping_its_metrics(tmp_path):
    pruner = {"kind": "median", "startup_trials": 2, "warmup_steps": 150}
    spec = parse_search(
        {"method": "random", "trials": 3, "metric": "val_acc"},
        {"train.epsilon": {"low": 1e-6, "high": 1e-5}},
        Path("s.yaml"),
        BASE,
        _check_key,
        pruner,
    )
    study = Study(tmp_path, spec)
    for _ in range(2):  # two finished trials that reached a near-perfect validation accuracy
        study.study.add_trial(
            optuna.trial.create_trial(
                params={"train.epsilon": 5e-6},
                distributions=study.distributions,
                value=0.999,
                intermediate_values={step: 0.999 for step in range(0, 2000, 100)},
            )
        )
    number, params = study.ask()
    cfg = load_config(BASE, params | {"train.iterations": 2000, "train.log_every": 100})
    report = {"journal": str(tmp_path / JOURNAL), "trial": number, "metric": "val_acc"}
    task = Task(
        "trial-0002", 1, cfg, str(tmp_path / "run"), report=report | {"pruner": spec.pruner}
    )
    outcome = run_task(task)
    assert outcome.status == "pruned", outcome.error
    run = load_run(tmp_path / "run")
    # warm-up 150: steps 0 and 100 are only reported; 200 is the first the pruner judges
    assert run.meta.stopped.step == 200
    assert "pruned by the median pruner at step 200" in run.meta.stopped.reason
    assert [r["step"] for r in read_metrics(run.path / "metrics.csv")] == [0, 100, 200]
    assert (run.path / "plots" / "loss.png").is_file() and (run.path / "model.npz").is_file()
    check_run(run.path)
    trial = study.trials()[number]
    assert sorted(trial.intermediate_values) == [0, 100, 200]


def _search(folder: Path, pruner: str, trials: int = 8) -> Path:
    path = folder / "s.yaml"
    path.write_text(
        f"sweep:\n  name: pruned\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        f"  search: {{method: random, trials: {trials}, metric: val_loss, seed: 1}}\n"
        "  params:\n    train.epsilon: {low: 1.0e-6, high: 0.1, log: true}\n"
        f"  pruner: {pruner}\n"
    )
    return path


@pytest.mark.slow
def test_a_search_prunes_bad_trials_and_still_finishes_every_trial(tmp_path):
    path = _search(tmp_path, "{kind: median, startup_trials: 2, warmup_steps: 0}")
    args = ["-s", "data.val_size=0.25", "-s", "train.iterations=3000", "-s", "train.log_every=300"]
    result = nnlab("sweep", path, "--runs-dir", "runs", "--jobs", "1", "-q", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    jobs = state_of(folder)["jobs"]
    assert len(jobs) == 8
    statuses = {k: j["status"] for k, j in jobs.items()}
    assert "pruned" in statuses.values() and "completed" in statuses.values()
    told = {f"trial-{t.number:04d}": t.state.name for t in load_study(folder).trials}
    assert told == {k: "PRUNED" if s == "pruned" else "COMPLETE" for k, s in statuses.items()}
    for k, s in statuses.items():
        run = load_run(folder / jobs[k]["run"])
        assert run.status == s
        if s == "pruned":  # stopped early, its rows and figures kept
            rows = read_metrics(run.path / "metrics.csv")
            assert rows and rows[-1]["step"] < 2999 and (run.path / "plots").is_dir()
    text = (folder / "summary.md").read_text()
    assert "| pruned |" in text
    check_run(folder)


# Trials in a fixed order (the sampler replaced, everything else real): a slow good trial, two
# quick good ones, a bad one (a learning rate too small to move), then quick good ones.
SLOW = {"train.iterations": 5_000_000, "train.epsilon": 0.01}
QUICK = {"train.iterations": 900, "train.epsilon": 0.01}
BAD = {"train.iterations": 900, "train.epsilon": 1e-7}
ORDER = [SLOW, QUICK, QUICK, BAD, QUICK, QUICK, QUICK, QUICK]


@pytest.mark.slow
def test_a_pruned_trial_frees_its_slot_at_once_while_a_slow_trial_runs_on(tmp_path, monkeypatch):
    from nnlab.sweeps import SweepInterrupted, sweep

    original, asked = Study.ask, []

    def ask_in_order(self):  # enqueued parameters are what Optuna's ask hands out first
        self.study.enqueue_trial(ORDER[len(asked)])
        asked.append(original(self))
        return asked[-1]

    monkeypatch.setattr(Study, "ask", ask_in_order)
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: slots\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  search: {method: random, trials: 8, metric: val_loss}\n"
        "  params:\n    train.iterations: {choices: [900, 5000000]}\n"
        "    train.epsilon: {choices: [0.01, 1.0e-7]}\n"
        "  pruner: {kind: median, startup_trials: 2, warmup_steps: 300}\n"
    )
    ended, errors = [], {}

    def on_job(job_id: str, entry: dict) -> None:
        ended.append((job_id, entry["status"]))
        errors[job_id] = entry.get("error")  # said when the order below is not met
        if len(ended) == len(ORDER) - 1:  # every trial but the slow one: stop the sweep
            raise KeyboardInterrupt

    overrides = ["data.val_size=0.25", "train.log_every=300"]
    with pytest.raises(SweepInterrupted) as stopped:
        sweep(path, overrides, runs_dir=tmp_path / "runs", jobs=2, on_job=on_job)
    assert [params for _, params in asked] == ORDER
    # the bad trial was pruned, and its slot ran the four trials after it, all while the slow
    # trial (asked first, in the other slot) was still running
    quick = [(f"trial-{n:04d}", "completed") for n in (1, 2, 4, 5, 6, 7)]
    assert ended == quick[:2] + [("trial-0003", "pruned")] + quick[2:] + [
        ("trial-0000", "interrupted")  # cancelled by the stop above
    ], errors
    folder = stopped.value.sweep.path
    jobs = state_of(folder)["jobs"]
    assert jobs["trial-0000"]["status"] == "interrupted"
    # warm-up 300: steps 0 and 300 are reported, 300 is the first judged: it stopped there
    bad = load_run(folder / jobs["trial-0003"]["run"])
    assert bad.meta.stopped.step == 300
    assert [r["step"] for r in read_metrics(bad.path / "metrics.csv")] == [0, 300]
    slow_rows = read_metrics(folder / jobs["trial-0000"]["run"] / "metrics.csv")
    assert slow_rows[-1]["step"] < 5_000_000 - 1


@pytest.mark.parametrize(
    ("pruner", "message"),
    [
        ({"kind": "asha"}, "kind must be one of none, median, successive_halving, hyperband"),
        ({"kind": "median", "warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
        ({"kind": "median", "min_resource": 2}, "unknown key min_resource for kind median"),
        ("median", "must be a mapping"),
    ],
)
def test_a_bad_pruner_is_refused(pruner, message):
    with pytest.raises(Exception, match=message):
        parse_pruner(pruner, "s.yaml: sweep.pruner")


def test_a_pruner_without_a_search_is_a_one_line_error(tmp_path):
    grid = {"base": str(CONFIGS / "moons_tanh.yaml"), "grid": {"seed": [0]}}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"sweep": grid | {"pruner": {}}}))
    result = nnlab("sweep", tmp_path / "g.yaml", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2 and "sweep.pruner needs sweep.search" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def _append_interrupted(journal: Path, monkeypatch, grace_period: int | None = None) -> None:
    """Append a log through journal_storage while Ctrl-C lands as Optuna's lock is taken (its
    os.symlink, when no one holds the lock): the write must be whole, then the interrupt
    come, and no lock be left."""
    import os
    import signal

    from optuna.storages.journal import _file

    from nnlab.sweeps.search.journal import journal_storage

    backend = journal_storage(journal)._backend
    if grace_period is not None:
        backend._lock.grace_period = grace_period
    symlink = os.symlink

    def ctrl_c_then_symlink(target, link, *args, **kwargs):
        if not os.path.lexists(link):  # free: this try takes it
            signal.raise_signal(signal.SIGINT)  # Python acts on it before the next line
        symlink(target, link, *args, **kwargs)

    monkeypatch.setattr(_file.os, "symlink", ctrl_c_then_symlink)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            backend.append_logs([{"op_code": 0, "note": "written"}])
    finally:
        signal.signal(signal.SIGINT, old)
        monkeypatch.undo()
    assert [log["note"] for log in backend.read_logs(0)] == ["written"]
    assert not Path(f"{journal}.lock").is_symlink()


def test_an_interrupt_as_the_journal_lock_is_taken_stays_an_interrupt(tmp_path, monkeypatch):
    """Optuna's own lock answers it by releasing a lock it does not hold, which raised
    RuntimeError("did not possess lock") in its place (CI: a cancelled trial ended
    `failed`). Through journal_storage the signal is held until the write is done."""
    _append_interrupted(tmp_path / JOURNAL, monkeypatch)


def test_an_interrupt_after_a_stale_lock_is_taken_away_stays_an_interrupt(tmp_path, monkeypatch):
    """A lock left by a process that died: Optuna takes it away after its grace period (1 s
    here) by calling release(), which must not let the signals go before the lock is
    taken."""
    journal = tmp_path / JOURNAL
    journal.touch()
    Path(f"{journal}.lock").symlink_to(journal)  # held by no one alive
    _append_interrupted(journal, monkeypatch, grace_period=1)
