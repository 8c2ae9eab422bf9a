"""The typed records of run and sweep folders (nnlab.runfolder.types) and the statuses
(nnlab.common.status): what they write is the JSON nnlab always wrote — its keys, their order,
its nulls, keys nnlab does not know — and a file read back and written again is unchanged."""

import json
from dataclasses import FrozenInstanceError

import pytest

from nnlab.common.status import JobStatus, RunStatus, SweepStatus, texts
from nnlab.runfolder.records import read_meta, read_state, read_summary
from nnlab.runfolder.types import JobEntry, Meta, Stopped, Summary, SweepRecord, stayed_at_chance

TIME = "2026-01-31T12:00:00+00:00"
META = {
    "status": "interrupted",
    "name": "moons",
    "kind": "mlp",
    "start_time": TIME,
    "end_time": TIME,
    "duration_seconds": 1.5,
    "command": ["nnlab", "train", "moons.yaml"],
    "versions": {"python": "3.11.7", "torch": None},
    "host": "vm",
    "pid": 42,
    "error": None,
    "environment": {"threads": 2, "device": "cpu", "precision": "float64"},
    "from_a_newer_nnlab": {"kept": True},
    "git": {"commit": "abc", "dirty": False},
    "stopped": {"reason": "pruned", "step": 200},
    "repeat_of": "/runs/a",
}


def test_statuses_are_their_text_in_json_comparisons_and_messages():
    assert texts(RunStatus) == ("running", "completed", "failed", "diverged", "interrupted",
                                "pruned")  # fmt: skip
    assert texts(JobStatus) == ("pending", *texts(RunStatus))
    assert texts(SweepStatus) == ("running", "completed", "failed", "interrupted")
    assert RunStatus.COMPLETED == "completed" == JobStatus.COMPLETED
    assert json.dumps({"status": RunStatus.PRUNED}) == '{"status": "pruned"}'
    assert f"{JobStatus.PENDING}, {SweepStatus.FAILED}" == "pending, failed"
    assert RunStatus("diverged") is RunStatus.DIVERGED


def test_meta_read_back_and_written_again_is_the_same_json(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps(META))
    meta = read_meta(tmp_path)
    assert meta.status is RunStatus.INTERRUPTED and meta.stopped == Stopped("pruned", 200)
    assert meta.other == {"from_a_newer_nnlab": {"kept": True}}
    assert json.dumps(meta.to_json()) == json.dumps(META)


def test_meta_fields_set_later_come_after_the_others_and_nulls_stay():
    meta = Meta(RunStatus.RUNNING, "moons", "mlp", TIME, command=["nnlab"], versions={},
                host="vm", pid=1)  # fmt: skip
    meta.update(git={"commit": "abc"})
    assert list(meta.to_json()) == ["status", "name", "kind", "start_time", "end_time",
                                    "duration_seconds", "command", "versions", "host", "pid",
                                    "error", "git"]  # fmt: skip
    meta.update(resumed=[TIME], stopped=Stopped("early stopping", None), git=None)
    written = meta.to_json()
    assert list(written)[-3:] == ["git", "resumed", "stopped"]
    assert written["git"] is None and written["stopped"] == {"reason": "early stopping",
                                                             "step": None}  # fmt: skip
    with pytest.raises(TypeError, match="no field 'colour'"):
        meta.update(colour="blue")
    with pytest.raises(FrozenInstanceError):
        meta.stopped.step = 3


def test_summary_keeps_its_keys_order_and_nulls(tmp_path):
    data = {"status": "completed", "final": {"step": 9, "val_acc": 0.5}, "best": {},
            "n_params": 3, "train_seconds": 0.5, "device": "cpu", "eval_seconds": 0.1,
            "images_per_second": None, "startup_seconds": None,
            "early_stopping": {"metric": "val_loss", "mode": "min", "best": 0.3, "best_step": 4,
                               "stopped_early": True, "weights_from_step": 4,
                               "row": {"step": 4, "val_loss": 0.3}},
            "chance_acc": 0.5, "did_not_learn": True}  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(data))
    summary = read_summary(tmp_path)
    assert isinstance(summary, Summary) and summary.early_stopping.row["step"] == 4
    assert json.dumps(summary.to_json()) == json.dumps(data)
    assert summary["final"]["val_acc"] == 0.5 and summary["early_stopping"]["row"]["step"] == 4
    with pytest.raises(KeyError):
        summary["classes"]
    assert summary.get("classes") is None and summary.get("classes", []) == []
    assert summary.get("images_per_second", 1.0) is None  # a null held is returned as held
    assert stayed_at_chance(summary) and not stayed_at_chance(None)
    assert read_summary(tmp_path / "nothing") is None


def test_state_keeps_its_shape_and_a_job_its_node_once_reported(tmp_path):
    job = JobEntry({"seed": 0})
    assert job.to_json() == {"overrides": {"seed": 0}, "status": "pending", "attempts": 0,
                             "run": None, "error": None, "final": {}}  # fmt: skip
    job.update(status=JobStatus.COMPLETED, node=None, did_not_learn=False, attempts=1)
    assert list(job.to_json())[-1] == "node" and job.to_json()["status"] == "completed"
    job.update(did_not_learn=True)
    assert job.to_json()["did_not_learn"] is True
    state = SweepRecord("s", TIME, TIME, jobs={"seed=0": job}, pid=7, host="vm")
    assert list(state.to_json()) == ["name", "created", "updated", "status", "jobs", "pid",
                                     "host"]  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(state.to_json()))
    back = read_state(tmp_path)
    assert back == state and back.jobs["seed=0"].status is JobStatus.COMPLETED
    assert back.to_json() == state.to_json()
    assert back.counts() == dict.fromkeys(JobStatus, 0) | {JobStatus.COMPLETED: 1}
    back.update(error="the disk is full")
    back.error = back.pid = back.host = None  # cleared: left out, as before
    assert "error" not in back.to_json() and "pid" not in back.to_json()
