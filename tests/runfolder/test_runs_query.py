"""`nnlab runs` queries: --where, --sort, --columns, --limit, --format, on a runs folder of
synthetic runs (copies of one real run with their files edited), and the SQLite index that
keeps the listing fast, checked against the folders every time."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import nnlab
from nnlab.cli import main
from nnlab.runfolder.index import NAME as INDEX
from tests.conftest import CONFIGS
from tests.conftest import nnlab as run_nnlab

# folder: (started second, activation, epsilon, test_acc or None, status)
RUNS = {
    "a": (1, "tanh", 0.01, 0.90, "completed"),
    "b": (2, "relu", 0.01, 0.97, "completed"),
    "c": (3, "tanh", 0.1, 0.975, "completed"),
    "d": (4, "sigmoid", 0.001, 0.50, "diverged"),
    "e": (5, "relu", 0.1, None, "failed"),
}


def _edit(folder: Path, started: int, activation: str, epsilon: float, test_acc, status: str):
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(name=f"moons_{folder.name}", status=status,
                start_time=f"2026-12-01T10:00:0{started}+00:00")  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    summary = json.loads((folder / "summary.json").read_text())
    summary["status"] = status
    summary["final"].pop("test_acc", None)
    if test_acc is not None:
        summary["final"]["test_acc"] = test_acc
    (folder / "summary.json").write_text(json.dumps(summary))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["model"]["activation"], config["train"]["epsilon"] = activation, epsilon
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("real")
    return nnlab.train(CONFIGS / "moons_tanh.yaml", {"train.iterations": 200}, runs_dir=runs).path


@pytest.fixture
def runs_dir(real_run, tmp_path) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, spec in RUNS.items():
        shutil.copytree(real_run, runs / name)
        _edit(runs / name, *spec)
    return runs


def query(capsys, runs: Path, *args: str) -> tuple[int, str, str]:
    """`nnlab runs --runs-dir RUNS ARGS` through the CLI's entry point, in this process."""
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "--runs-dir", str(runs), *args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def folders(capsys, runs: Path, *args: str) -> list[str]:
    code, out, err = query(capsys, runs, *args, "--columns", "folder", "--format", "csv")
    assert code == 0 and err == ""
    return out.split()[1:]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["test_acc>=0.97"], ["c", "b"]),
        (["test_acc>=97%"], ["c", "b"]),  # accuracies are fractions; percent is read as one
        (["test_acc>0.97"], ["c"]),
        (["test_acc<0.9"], ["d"]),
        (["test_acc<=0.9"], ["d", "a"]),
        (["test_acc=0.97"], ["b"]),
        (["test_acc==0.97"], ["b"]),
        (["test_acc!=0.97"], ["d", "c", "a"]),  # e has no test_acc: no condition on it holds
        (["model.activation=tanh"], ["c", "a"]),
        (["model.activation!=tanh"], ["e", "d", "b"]),
        (["name~moons_[ab]"], ["b", "a"]),
        (["model.activation=relu", "train.epsilon>0.05"], ["e"]),  # ANDed
        (["train.epsilon<=0.01", "status=completed"], ["b", "a"]),
        (["started>=2026-12-01T10:00:04"], ["e", "d"]),  # times compare as text
        (["model.layers=[2, 3, 2]"], ["e", "d", "c", "b", "a"]),  # lists as YAML lists
    ],
)
def test_every_where_operator_selects_the_runs_it_says(capsys, runs_dir, where, expected):
    args = [a for w in where for a in ("--where", w)]
    assert folders(capsys, runs_dir, *args) == expected  # every folder read, index built
    assert folders(capsys, runs_dir, *args) == expected  # from the index, filtered in SQLite


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ([], ["e", "d", "c", "b", "a"]),  # newest first
        (["-test_acc"], ["c", "b", "a", "d", "e"]),  # a run without the key comes last...
        (["test_acc"], ["d", "a", "b", "c", "e"]),  # ...whichever the direction
        (["model.activation", "-test_acc"], ["b", "e", "d", "c", "a"]),  # first key decides
        (["-train.epsilon", "name"], ["c", "e", "a", "b", "d"]),
    ],
)
def test_sort_orders_by_each_key_with_missing_values_last(capsys, runs_dir, sort, expected):
    args = [f"--sort={s}" for s in sort]
    assert folders(capsys, runs_dir, *args) == expected


def test_limit_columns_and_formats(capsys, runs_dir):
    args = ["--sort", "-test_acc", "--limit", "2", "--format", "json"]
    columns = ["--columns", "folder,test_acc", "--columns", "model.activation"]
    code, out, _ = query(capsys, runs_dir, *args, *columns)
    assert code == 0
    assert json.loads(out) == [
        {"folder": "c", "test_acc": 0.975, "model.activation": "tanh"},
        {"folder": "b", "test_acc": 0.97, "model.activation": "relu"},
    ]
    code, out, _ = query(capsys, runs_dir, "--where", "model.activation=relu", "--format", "csv",
                         "--columns", "name,test_acc,model.layers")  # fmt: skip
    assert list(csv.reader(io.StringIO(out))) == [
        ["name", "test_acc", "model.layers"],
        ["moons_e", "", "[2, 3, 2]"],
        ["moons_b", "0.97", "[2, 3, 2]"],
    ]
    # the table adds the --where and --sort keys to its default columns, in percent
    code, out, _ = query(capsys, runs_dir, "--where", "model.activation=tanh", "--sort",
                         "-test_acc")  # fmt: skip
    lines = out.splitlines()
    assert lines[0].split() == ["started", "name", "kind", "status", "time", "results",
                                "model.activation", "test_acc", "folder"]  # fmt: skip
    assert lines[1].split()[-3:] == ["tanh", "97.50%", "c"]
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--where", "tset_acc>0.9"], ["--where 'tset_acc>0.9'", "did you mean test_acc"]),
        (["--sort", "-model.activaton"], ["--sort", "did you mean model.activation"]),
        (["--columns", "folder,nope"], ["--columns", "'nope'"]),
        (["--where", "test_acc"], ["is not KEY OP VALUE", ">="]),
        (["--where", "test_acc>[1, 2]"], [">", "compares numbers or text"]),
        (["--limit", "0"], ["--limit"]),
    ],
)
def test_a_bad_query_is_one_line_naming_the_option(capsys, runs_dir, args, words):
    code, out, err = query(capsys, runs_dir, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("nnlab: error: ")
    for word in words:
        assert word in err


def _index_rows(runs: Path) -> dict[str, dict]:
    with sqlite3.connect(runs / INDEX) as db:
        rows = db.execute("SELECT folder, record FROM entries").fetchall()
    return {folder: json.loads(record) for folder, record in rows}


def test_the_index_notices_a_run_added_changed_and_deleted_behind_its_back(
    capsys, runs_dir, real_run
):
    assert folders(capsys, runs_dir, "--where", "test_acc>=0.9") == ["c", "b", "a"]
    assert set(_index_rows(runs_dir)) == set(RUNS)  # one entry per folder, stored
    # the index is what is read while the files are unchanged: edit a stored entry...
    with sqlite3.connect(runs_dir / INDEX) as db:
        (record,) = db.execute("SELECT record FROM entries WHERE folder = 'a'").fetchone()
        record = json.loads(record)
        record["fields"]["test_acc"] = 0.123
        db.execute("UPDATE entries SET record = ? WHERE folder = 'a'", (json.dumps(record),))
    assert folders(capsys, runs_dir, "--where", "test_acc<0.2") == ["a"]
    # ...but never trusted once its files change: touching summary.json re-reads the run
    summary = runs_dir / "a" / "summary.json"
    os.utime(summary, ns=(summary.stat().st_atime_ns, summary.stat().st_mtime_ns + 1000))
    assert folders(capsys, runs_dir, "--where", "test_acc<0.2") == []
    # behind its back: one added, one changed in place, one deleted
    shutil.copytree(real_run, runs_dir / "f")
    _edit(runs_dir / "f", 6, "tanh", 0.5, 0.99, "completed")
    text = summary.read_text()
    summary.write_text(text.replace('"test_acc": 0.9', '"test_acc": 0.1'))  # in place
    shutil.rmtree(runs_dir / "c")
    assert folders(capsys, runs_dir, "--where", "test_acc>=0.9") == ["f", "b"]
    assert folders(capsys, runs_dir, "--where", "test_acc<0.2") == ["a"]
    assert set(_index_rows(runs_dir)) == {"a", "b", "d", "e", "f"}


def test_the_index_decodes_only_the_entries_that_can_match(capsys, runs_dir, monkeypatch):
    import nnlab.runfolder.index

    assert len(folders(capsys, runs_dir)) == 5  # indexed without their config keys...
    assert folders(capsys, runs_dir, "--where", "model.activation=tanh") == ["c", "a"]  # ...read
    decoded = []

    def loads(text):
        decoded.append(json.loads(text)["fields"]["name"])
        return json.loads(text)

    monkeypatch.setattr(
        nnlab.runfolder.index, "json", SimpleNamespace(loads=loads, dumps=json.dumps)
    )
    assert folders(capsys, runs_dir, "--where", "model.activation=tanh") == ["c", "a"]
    assert sorted(decoded) == ["moons_a", "moons_c"]  # SQLite left the other three out
    decoded.clear()
    assert folders(capsys, runs_dir, "--where", "test_acc>=0.9", "--where", "name~*") == [
        "c", "b", "a"
    ]  # fmt: skip
    assert sorted(decoded) == ["moons_a", "moons_b", "moons_c"]  # ~ is checked in Python
    decoded.clear()
    assert folders(capsys, runs_dir, "--where", "test_acc!=0.5") == ["c", "b", "a"]
    assert len(decoded) == 5  # != cannot be filtered there: a run without the key fails it


def test_a_running_run_is_read_every_time_and_a_damaged_index_is_rebuilt(capsys, runs_dir):
    meta = json.loads((runs_dir / "e" / "meta.json").read_text())
    (runs_dir / "e" / "meta.json").write_text(json.dumps(meta | {"status": "running"}))
    assert folders(capsys, runs_dir, "--where", "status=running") == ["e"]
    assert "e" not in _index_rows(runs_dir)  # its files are still changing
    (runs_dir / INDEX).write_bytes(b"not a database at all" * 100)
    code, out, err = query(capsys, runs_dir, "--sort", "-test_acc", "--format", "csv",
                           "--columns", "folder")  # fmt: skip
    assert code == 0 and out.split()[1:] == ["c", "b", "a", "d", "e"]
    assert "was damaged" in err and "rebuilt" in err and len(err.splitlines()) == 1
    assert set(_index_rows(runs_dir)) == {"a", "b", "c", "d"}


def test_without_a_writable_index_the_folders_give_the_same_answer(capsys, runs_dir):
    (runs_dir / INDEX).mkdir()  # the index's name is taken: it cannot be opened
    assert folders(capsys, runs_dir, "--sort", "-test_acc") == ["c", "b", "a", "d", "e"]
    assert folders(capsys, runs_dir, "--where", "model.activation=tanh") == ["c", "a"]


def test_a_sweep_folder_lists_its_jobs_last_attempts(capsys, runs_dir):
    sweep = runs_dir.parent / "sweep"
    jobs = {}
    for job_id, run in (("activation=tanh", "a"), ("activation=relu", "b")):
        (sweep / "jobs" / job_id).mkdir(parents=True)
        shutil.copytree(runs_dir / run, sweep / "jobs" / job_id / "attempt-2")
        jobs[job_id] = {"overrides": {"model.activation": job_id.split("=")[1]},
                        "status": "completed", "attempts": 2,
                        "run": f"jobs/{job_id}/attempt-2", "error": None, "final": {}}  # fmt: skip
    times = {"created": "2026-12-01T10:00:00+00:00", "updated": "2026-12-01T10:01:00+00:00"}
    state = {"name": "s", **times, "status": "completed", "jobs": jobs}
    (sweep / "state.json").write_text(json.dumps(state))
    code, out, _ = query(capsys, sweep, "--sort", "-test_acc", "--format", "json",
                         "--columns", "job,folder,model.activation")  # fmt: skip
    assert code == 0
    assert json.loads(out) == [
        {"job": "activation=relu", "folder": "jobs/activation=relu/attempt-2",
         "model.activation": "relu"},
        {"job": "activation=tanh", "folder": "jobs/activation=tanh/attempt-2",
         "model.activation": "tanh"},
    ]  # fmt: skip


def _sweep_in(runs: Path) -> Path:
    """A sweep folder in ``runs``: jobs activation=tanh (a copy of run a), =relu (of b, its
    state.json status diverged) and =sigmoid (pending: no run folder yet)."""
    sweep = runs / "sweep-s"
    jobs = {}
    for job_id, run, status in (("activation=tanh", "a", "completed"),
                                ("activation=relu", "b", "diverged")):  # fmt: skip
        shutil.copytree(runs / run, sweep / "jobs" / job_id / "attempt-1")
        jobs[job_id] = {"overrides": {"model.activation": job_id.split("=")[1]},
                        "status": status, "attempts": 1, "run": f"jobs/{job_id}/attempt-1",
                        "error": "training diverged at step 7" if status == "diverged" else None,
                        "final": {}}  # fmt: skip
    jobs["activation=sigmoid"] = {"overrides": {"model.activation": "sigmoid"},
                                  "status": "pending", "attempts": 0, "run": None,
                                  "error": None, "final": {}}  # fmt: skip
    times = {"created": "2026-12-01T09:00:00+00:00", "updated": "2026-12-01T10:01:00+00:00"}
    state = {"name": "s", **times, "status": "interrupted", "jobs": jobs}  # indexed
    (sweep / "state.json").write_text(json.dumps(state))
    return sweep


def test_jobs_lists_every_sweeps_jobs_beside_the_plain_runs(capsys, runs_dir):
    _sweep_in(runs_dir)
    columns = ["--columns", "folder,name,sweep,job,status", "--format", "json"]
    code, out, _ = query(capsys, runs_dir, "--columns", "name", "--format", "csv")
    assert code == 0 and out.split()[-1] == "s"  # the sweep, one row (created first)
    code, out, _ = query(capsys, runs_dir, "--jobs", *columns)
    rows = json.loads(out)
    assert code == 0 and "s" not in [r["name"] for r in rows]  # its jobs instead
    jobs = {r["job"]: r for r in rows if r["job"]}
    assert jobs == {
        "activation=relu": {"folder": "sweep-s/jobs/activation=relu/attempt-1",
                            "name": "s / activation=relu", "sweep": "s",
                            "job": "activation=relu", "status": "diverged"},  # state.json's
        "activation=tanh": {"folder": "sweep-s/jobs/activation=tanh/attempt-1",
                            "name": "s / activation=tanh", "sweep": "s",
                            "job": "activation=tanh", "status": "completed"},
        "activation=sigmoid": {"folder": "sweep-s", "name": "s / activation=sigmoid",
                               "sweep": "s", "job": "activation=sigmoid", "status": "pending"},
    }  # fmt: skip
    assert sorted(r["folder"] for r in rows if not r["job"]) == ["a", "b", "c", "d", "e"]
    # --where, --sort and --status apply to the jobs as to the runs, from the index too
    for _ in range(2):  # the folders read and the index built, then the index's prefilter
        assert folders(capsys, runs_dir, "--jobs", "--where", "model.activation=relu",
                       "--sort", "-test_acc") == [
            "sweep-s/jobs/activation=relu/attempt-1", "b", "e"]  # a copy of b: a tie  # fmt: skip
        assert folders(capsys, runs_dir, "--jobs", "--where", "sweep=s", "--status",
                       "completed") == ["sweep-s/jobs/activation=tanh/attempt-1"]  # fmt: skip
        assert folders(capsys, runs_dir, "--jobs", "--status", "diverged") == [
            "d",
            "sweep-s/jobs/activation=relu/attempt-1",
        ]  # its run's meta.json: completed
    code, out, _ = query(capsys, runs_dir, "--jobs", "--where", "job~*relu", "--columns",
                         "job,error", "--format", "csv")  # fmt: skip
    assert out.splitlines() == ["job,error", "activation=relu,training diverged at step 7"]
    # a job's name is the sweep's and the job's in a sweep folder's listing too
    code, out, _ = query(capsys, runs_dir / "sweep-s", "--where", "name~s / *tanh")
    assert code == 0 and "s / activation=tanh" in out and len(out.splitlines()) == 2


def test_no_runs_matching_repeats_the_conditions_given(capsys, runs_dir):
    code, out, _ = query(capsys, runs_dir, "--where", "model.activation=elu", "--where",
                         "test_acc>=0.9", "--status", "failed", "--name", "moons_*")  # fmt: skip
    assert code == 0
    assert out == (f"no runs matching --where model.activation=elu --where 'test_acc>=0.9' "
                   f"--status failed --name 'moons_*' in {runs_dir}\n")  # fmt: skip
    _sweep_in(runs_dir)
    code, out, _ = query(capsys, runs_dir, "--jobs", "--where", "sweep=nope")
    assert out == f"no runs or jobs matching --where sweep=nope in {runs_dir}\n"
    empty = runs_dir.parent / "empty"
    empty.mkdir()
    assert query(capsys, empty)[1] == f"no runs in {empty}\n"


@pytest.mark.parametrize(
    ("where", "meant"),
    [
        ("val_ac>0.5", "val_acc"),  # no listed run has a validation split
        ("best.val_los<1", "best.val_loss"),
        ("model.dropuot=0.5", "model.dropout"),  # a DCN key; only MLP runs are listed
        ("train.stats_evry>1", "train.stats_every"),
    ],
)
def test_where_suggests_any_key_a_run_could_have_not_only_the_listed_runs_keys(
    runs_dir, where, meant
):
    result = run_nnlab("runs", "--runs-dir", runs_dir, "--where", where)
    assert result.returncode == 2
    assert f"did you mean {meant}" in result.stderr, result.stderr
    # a key a run could have, that no listed run has, is refused without suggesting itself
    exact = run_nnlab("runs", "--runs-dir", runs_dir, "--where", f"{meant}>0")
    assert exact.returncode == 2 and f"did you mean {meant}" not in exact.stderr, exact.stderr


GOOD_ENTRY = {"name": "moons_a", "kind": "mlp", "status": "completed", "started": "x"}
DAMAGED_ROWS = {  # a stored record with a valid signature, but not what nnlab stores
    "empty": "",
    "an-integer": 7,
    "a-blob": b"\x00\xff",
    "a-list": "[1, 2]",
    "empty-mapping": "{}",
    "fields-a-number": json.dumps({"fields": 5, "config": None, "problem": None}),
    "status-a-number": json.dumps({"fields": {**GOOD_ENTRY, "status": 3}, "problem": None}),
    "started-a-list": json.dumps({"fields": {**GOOD_ENTRY, "started": [1]}, "problem": None}),
    "a-field-a-mapping": json.dumps({"fields": {**GOOD_ENTRY, "test_acc": {}}, "problem": None}),
    "config-a-list": json.dumps({"fields": GOOD_ENTRY, "config": [1], "problem": None}),
    "deep": "[" * 100_000,
}


QUERIES = {
    "plain": [], "where": ["--where", "status=completed"],
    "sort": ["--sort", "-test_acc", "--where", "test_acc>0.5"],
    "config": ["--where", "model.activation=tanh"],
}  # fmt: skip
# every damaged record under a plain listing, and each kind of query over three of them
DAMAGED_CASES = [(r, "plain") for r in DAMAGED_ROWS] + [
    (r, q) for r in ("empty", "status-a-number", "deep") for q in QUERIES if q != "plain"
]


@pytest.mark.parametrize(
    ("name", "query"), DAMAGED_CASES, ids=[f"{r}-{q}" for r, q in DAMAGED_CASES]
)
def test_a_damaged_index_row_is_rebuilt_with_a_warning(runs_dir, name, query):
    """Through the real CLI: the answer of an intact index, one warning naming the index,
    and an index that is whole again (the next query warns no more)."""
    record, args = DAMAGED_ROWS[name], QUERIES[query]
    csv_args = [*args, "--columns", "folder,status,test_acc", "--format", "csv"]
    first = run_nnlab("runs", "--runs-dir", runs_dir, *csv_args, timeout=120)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    with sqlite3.connect(runs_dir / INDEX) as db:
        rows = dict(db.execute("SELECT folder, record FROM entries").fetchall())
        victim = next(f for f in ("a", "c", "b") if f in rows)
        db.execute("UPDATE entries SET record = ? WHERE folder = ?", (record, victim))
    db.close()
    again = run_nnlab("runs", "--runs-dir", runs_dir, *csv_args, timeout=120)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert again.stdout == first.stdout
    warnings = again.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("nnlab: warning: "), warnings
    assert str(runs_dir / INDEX) in warnings[0] and "rebuilt" in warnings[0], warnings
    assert isinstance(_index_rows(runs_dir)[victim]["fields"]["status"], str)  # rebuilt
    last = run_nnlab("runs", "--runs-dir", runs_dir, *csv_args, timeout=120)
    assert last.stdout == first.stdout and last.stderr == "", last.stderr
