"""The trainer interface: the registry of kinds, and the hooks through which a run reports and
can be stopped on purpose (the step callback that pruning and early stopping use)."""

from __future__ import annotations

import json

import pytest

import nnlab
from nnlab.config.resolve import load_config, schema_of
from nnlab.errors import ConfigError
from nnlab.models import Hooks, Kind, StopRun, Trainer, build, get_kind, kinds
from nnlab.models.dcn.trainer import DCNTrainer
from nnlab.models.mlp.trainer import MLPTrainer
from tests.conftest import check_run


def test_the_built_in_kinds_are_registered_and_declare_their_trainers():
    assert list(kinds())[:2] == ["mlp", "dcn"]
    assert get_kind("mlp").trainer_class() is MLPTrainer
    assert get_kind("dcn").trainer_class() is DCNTrainer
    assert issubclass(MLPTrainer, Trainer) and issubclass(DCNTrainer, Trainer)
    assert DCNTrainer.resumable and not MLPTrainer.resumable
    with pytest.raises(ConfigError, match="model.kind must be one of mlp, dcn"):
        get_kind("cnn")


def test_a_kind_declares_its_keys_and_only_those_resolve():
    mlp, dcn = schema_of("mlp"), schema_of("dcn")
    assert "model.layers" in mlp and "model.layers" not in dcn
    assert "train.eval_every" in dcn and "train.eval_every" not in mlp
    # a key both kinds share is one option, stated once
    assert mlp["train.epsilon"] is dcn["train.epsilon"]
    assert mlp["train.beta1"] is dcn["train.beta1"]
    assert mlp["train.log_every"].default == 1000 and dcn["train.log_every"].default == 100


def test_the_trainer_interface_cannot_be_half_implemented():
    class Half(Trainer):
        def __init__(self, cfg):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Half({})
    assert isinstance(Kind("half", {}, Half), Kind)


def test_stop_run_takes_only_a_run_status():
    assert StopRun("enough").status == "completed"
    with pytest.raises(ValueError, match="completed, interrupted, failed"):
        StopRun("why", status="done")


@pytest.mark.parametrize("stop_at", [0, 499])
def test_a_step_callback_stops_an_mlp_run_on_purpose(tmp_path, moons_small, stop_at):
    seen = []

    def on_step(step: int) -> None:
        seen.append(step)
        if step == stop_at:
            raise StopRun("the validation loss stopped improving")

    run = nnlab.train(moons_small, runs_dir=tmp_path, on_step=on_step)
    assert seen == list(range(stop_at + 1))  # called after every step, from step 0
    assert run.status == "completed"
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["stopped"] == {"reason": "the validation loss stopped improving", "step": stop_at}
    assert run.metrics[-1]["step"] <= stop_at  # no row after the stop
    check_run(run.path)


def test_a_row_callback_can_end_a_run_with_another_status(tmp_path, moons_small):
    def on_row(row: dict) -> None:
        if row["step"] >= 400:
            raise StopRun("pruned by the sweep", status="interrupted")

    run = nnlab.train(moons_small, runs_dir=tmp_path, on_row=on_row)
    assert run.status == "interrupted"
    assert [r["step"] for r in run.metrics] == [0, 200, 400]  # the row that stopped it is kept
    assert json.loads((run.path / "meta.json").read_text())["stopped"]["step"] == 400


@pytest.mark.slow
def test_a_step_callback_stops_a_dcn_run(tmp_path):
    cfg = load_config(
        {
            "model": {"kind": "dcn", "conv_channels": [4], "fc_units": 16},
            "data": {"name": "digits", "val_size": 50},
            "train": {"epochs": 1, "batch_size": 50, "log_every": 5, "stats_every": 5,
                      "device": "cpu", "tensorboard": False},
        }
    )  # fmt: skip

    def on_step(step: int) -> None:
        if step == 12:
            raise StopRun("enough")

    run = nnlab.train(cfg, runs_dir=tmp_path, on_step=on_step)
    assert run.status == "completed"
    assert [r["step"] for r in run.metrics] == [5, 10]
    assert json.loads((run.path / "meta.json").read_text())["stopped"]["step"] == 12
    assert (run.path / "model.pt").is_file()


class _Heard(Hooks):
    """A callback of one's own, given to a trainer as its hooks: the events it hears."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []

    def on_train_start(self) -> None:
        self.events.append("start")

    def on_row(self, row: dict) -> None:
        self.events.append(dict(row))

    def on_epoch_end(self, epoch: int) -> None:
        self.events.append(epoch)

    def on_train_end(self) -> None:
        self.events.append("end")


BOTH_KINDS = {
    "mlp": {
        "data": {"name": "moons", "test_size": 0.2, "val_size": 0.2},
        "model": {"layers": [2, 3, 2]},
        "train": {"optimizer": "sgd", "epochs": 4, "batch_size": 32, "log_every": 2},
    },
    "dcn": {
        "model": {"kind": "dcn", "conv_channels": [4], "fc_units": 16},
        "data": {"name": "digits", "val_size": 50},
        "train": {"epochs": 2, "batch_size": 100, "log_every": 5, "eval_every": 8,
                  "stats_every": 4, "device": "cpu", "tensorboard": False},
    },
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BOTH_KINDS))
def test_a_callback_of_ones_own_hears_every_row_and_every_epoch_end(tmp_path, kind):
    raw = BOTH_KINDS[kind]
    heard = _Heard()
    build(load_config(raw)).fit(tmp_path, heard)
    events, epochs = heard.events, raw["train"]["epochs"]
    assert events[0] == "start" and events[-1] == "end"
    assert [e for e in events if isinstance(e, int)] == list(range(1, epochs + 1))
    for epoch in range(1, epochs + 1):  # each epoch ends on its row, with held-out metrics
        row = events[events.index(epoch) - 1]
        assert row["epoch"] == epoch and {"val_loss", "test_loss"} <= set(row)
    rows = [e for e in events if isinstance(e, dict)]
    run = nnlab.train(raw, runs_dir=tmp_path / "runs")  # the rows are those a run keeps
    assert [r["step"] for r in rows] == [r["step"] for r in run.metrics]
    assert [set(r) for r in rows] == [set(r) for r in run.metrics]
