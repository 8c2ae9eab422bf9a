"""Conditional search spaces: a ``params:`` entry with ``when: {key: choice}`` is sampled only
for the trials where that key took that choice, checked in one line, recorded in sweep.yaml,
and honoured by the trial records, the importances, the figures and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nnlab.config.resolve import load_config
from nnlab.figures import plots
from nnlab.figures.search import importance_groups
from nnlab.sweeps.folder import load_sweep_folder
from nnlab.sweeps.search.results import trial_records
from nnlab.sweeps.search.space import parse_search
from nnlab.sweeps.search.study import Study
from nnlab.sweeps.spec import _check_key
from nnlab.sweeps.summary import comparison_plots
from tests.conftest import CONFIGS, nnlab, run_dir_of
from tests.sweeps.test_search import load_study
from tests.sweeps.test_sweep import state_of

BASE = load_config(CONFIGS / "moons_tanh.yaml", ["data.val_size=0.25"])
PARAMS = {
    "train.optimizer": {"choices": ["gd", "sgd"]},
    "train.momentum": {"low": 0.0, "high": 0.9, "when": {"train.optimizer": "sgd"}},
    "train.epsilon": {"low": 1e-3, "high": 0.3, "log": True},
}


def _spec(params=PARAMS, method="random", trials=30):
    search = {"method": method, "trials": trials, "metric": "val_acc", "seed": 0}
    return parse_search(search, params, Path("s.yaml"), BASE, _check_key)


@pytest.mark.parametrize("method", ["random", "tpe"])
def test_a_conditional_param_is_sampled_only_where_its_condition_holds(method, tmp_path):
    spec = _spec(method=method)
    assert spec.order() == ["train.optimizer", "train.momentum", "train.epsilon"]
    runs = []
    for name in "ab":
        (tmp_path / name).mkdir()
        study, out = Study(tmp_path / name, spec), []
        for _ in range(30):
            number, params = study.ask()
            out.append(params)
            study.tell(number, params["train.epsilon"], "complete")
            load_config(BASE, params)  # every trial is a valid config
        runs.append(out)
    assert runs[0] == runs[1]  # seeded: the same trials
    kinds = {p["train.optimizer"] for p in runs[0]}
    assert kinds == {"gd", "sgd"}
    for p in runs[0]:
        assert ("train.momentum" in p) == (p["train.optimizer"] == "sgd")
    # the study itself holds no momentum for the gd trials (define-by-run)
    trials = load_study(tmp_path / "a").trials
    assert all(("train.momentum" in t.params) == (t.params["train.optimizer"] == "sgd")
               for t in trials)  # fmt: skip


def test_a_condition_orders_the_sampling_and_nests():
    params = {
        "train.nesterov": {"choices": [True, False], "when": {"train.momentum": 0.9}},
        "train.momentum": {"choices": [0.5, 0.9], "when": {"train.optimizer": "sgd"}},
        "train.optimizer": {"choices": ["gd", "sgd"]},
    }
    spec = _spec(params)
    assert spec.order() == ["train.optimizer", "train.momentum", "train.nesterov"]
    assert list(spec.params) == list(params)  # shown in the file's order
    nesterov = spec.params["train.nesterov"]
    assert nesterov.applies({"train.optimizer": "sgd", "train.momentum": 0.9})
    assert not nesterov.applies({"train.optimizer": "gd"})
    assert spec.info()["train.nesterov"] == {
        "kind": "choice", "scale": "categorical", "choices": [True, False],
        "when": {"train.momentum": 0.9},
    }  # fmt: skip
    assert (
        spec.params["train.momentum"].describe()
        == "one of 0.5, 0.9; only when train.optimizer = sgd"
    )


BAD = {
    "unknown param": (
        {"train.optimiser": "sgd"},
        "sweep.params.train.momentum.when: unknown key train.optimiser (did you mean "
        "train.optimizer?) (a condition names another param of the search, one with "
        "choices); allowed: train.optimizer",
    ),
    "value not a choice": (
        {"train.optimizer": "rmsprop"},
        "sweep.params.train.momentum.when.train.optimizer must be one of its choices: gd, sgd; "
        "got 'rmsprop'",
    ),
    "a range": ({"train.epsilon": 0.01}, "when names train.epsilon, a range"),
    "itself": ({"train.momentum": 0.5}, "names train.momentum itself"),
    "not a mapping": ("sgd", "when must be a mapping of other params to one of their choices"),
}


def _run_bad(tmp_path: Path, params: dict):
    body = {"base": str(CONFIGS / "moons_tanh.yaml"), "params": params}
    body["search"] = {"method": "random", "trials": 2, "metric": "val_acc"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"sweep": body}, sort_keys=False))
    args = ("sweep", tmp_path / "s.yaml", "--runs-dir", "runs", "-s", "data.val_size=0.25")
    result = nnlab(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not (tmp_path / "runs").exists()
    return lines[0]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_condition_is_a_one_line_error_before_anything_runs(case, tmp_path):
    when, message = BAD[case]
    params = json.loads(json.dumps(PARAMS))
    params["train.momentum"]["when"] = when
    assert message in _run_bad(tmp_path, params)


def test_a_cycle_and_a_contradiction_are_refused(tmp_path):
    cycle = {
        "train.optimizer": {"choices": ["gd", "sgd"], "when": {"model.activation": "relu"}},
        "model.activation": {"choices": ["tanh", "relu"], "when": {"train.optimizer": "sgd"}},
    }
    line = _run_bad(tmp_path, cycle)
    assert "go round in a cycle: train.optimizer -> model.activation -> train.optimizer" in line
    never = {
        "train.optimizer": {"choices": ["gd", "sgd"]},
        "model.activation": {"choices": ["tanh", "relu"], "when": {"train.optimizer": "sgd"}},
        "train.momentum": {
            "low": 0.0,
            "high": 0.9,
            "when": {"model.activation": "relu", "train.optimizer": "gd"},
        },
    }
    line = _run_bad(tmp_path, never)
    assert "train.momentum.when can never hold: it needs train.optimizer = sgd" in line


def test_without_its_condition_momentum_is_refused_for_gradient_descent(tmp_path):
    """The base runs gd, which takes no momentum: the range is valid only under its
    condition, and its values are checked with it."""
    params = json.loads(json.dumps(PARAMS))
    del params["train.momentum"]["when"]
    line = _run_bad(tmp_path, params)
    assert "sweep.params.train.momentum: the value 0.9 is refused" in line
    assert "this config's optimizer is gd" in line
    assert "takes `when:`, e.g. train.momentum: {..., when: {train.optimizer: sgd}}" in line


SWEEP = """sweep:
  name: cond
  base: {base}
  search: {{method: random, trials: 10, metric: val_acc, seed: 2}}
  params:
    train.optimizer: {{choices: [gd, sgd]}}
    train.momentum: {{low: 0.0, high: 0.9, when: {{train.optimizer: sgd}}}}
    train.epsilon: {{low: 0.01, high: 0.3, log: true}}
    model.activation: {{choices: [tanh, relu]}}
"""
ARGS = ["-s", "data.val_size=0.25", "-s", "train.iterations=200", "-s", "train.epochs=2"]
ARGS += ["-s", "train.log_every=100"]


@pytest.mark.slow
def test_a_conditional_search_end_to_end_through_the_cli(tmp_path, monkeypatch):
    path = tmp_path / "cond.yaml"
    path.write_text(SWEEP.format(base=CONFIGS / "moons_tanh.yaml"))
    result = nnlab("sweep", path, "--runs-dir", "runs", "--jobs", "2", "-q", *ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    jobs = state_of(folder)["jobs"]
    assert len(jobs) == 10
    optimizers = {j["overrides"]["train.optimizer"] for j in jobs.values()}
    assert optimizers == {"gd", "sgd"}
    for job in jobs.values():  # recorded honestly: a gd trial has no momentum
        sgd = job["overrides"]["train.optimizer"] == "sgd"
        assert ("train.momentum" in job["overrides"]) == sgd
        config = yaml.safe_load((folder / job["run"] / "config.yaml").read_text())
        if not sgd:  # the run kept the base config's value
            assert config["train"]["momentum"] == 0.0
        else:
            assert config["train"]["momentum"] == job["overrides"]["train.momentum"]
    # sweep.yaml records the condition; the folder reads it back
    recorded = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert recorded["sweep"]["search"]["params"]["train.momentum"]["when"] == {
        "train.optimizer": "sgd"
    }
    sweep, state = load_sweep_folder(folder)
    assert sweep.search.params["train.momentum"].when == {"train.optimizer": "sgd"}
    records = trial_records(sweep, state)
    assert all(("train.momentum" in r.params) == (r.params["train.optimizer"] == "sgd")
               for r in records)  # fmt: skip
    groups = importance_groups(records, sweep.search.params)
    assert "train.momentum" not in groups[0].scores
    assert len(groups) == 2 and groups[1].condition == "train.optimizer = sgd"
    assert "train.momentum" in groups[1].scores  # scored among the sgd trials only
    # the ranked table shows — for momentum where it did not apply, and says why
    summary = (folder / "summary.md").read_text()
    gd_rows = [line for line in summary.splitlines() if "| gd | — |" in line]
    assert len(gd_rows) == sum(o["overrides"]["train.optimizer"] == "gd" for o in jobs.values())
    assert "its condition did not hold for that trial" in summary
    # a resume reads the space back; a changed condition is refused
    again = nnlab("sweep", "--resume", folder, "-q", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to resume" in again.stderr, again.stderr
    # a trial of each optimizer cut short re-runs with its own params, momentum or none
    cut = {next(k for k, o in jobs.items() if o["overrides"]["train.optimizer"] == opt)
           for opt in ("gd", "sgd")}  # fmt: skip
    raw = json.loads((folder / "state.json").read_text())
    for k in cut:
        raw["jobs"][k]["status"] = "interrupted"
    (folder / "state.json").write_text(json.dumps(raw))
    resumed = nnlab("sweep", "--resume", folder, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((folder / "state.json").read_text())["jobs"]
    for k in cut:
        assert after[k]["status"] == "completed" and after[k]["attempts"] == 2
        assert after[k]["overrides"] == jobs[k]["overrides"]
    changed = "when: {train.optimizer: sgd, model.activation: tanh}"
    path.write_text(path.read_text().replace("when: {train.optimizer: sgd}", changed))
    refused = nnlab("sweep", path, "--resume", folder, "-q", *ARGS, cwd=tmp_path)
    assert refused.returncode == 2 and "the search changed" in refused.stderr, refused.stderr
    # the report lists the space, condition included
    report = nnlab("report", folder, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (folder / "report.md").read_text()
    assert "- train.momentum: float, uniform from 0 to 0.9; only when train.optimizer = sgd" in text
    assert "- train.epsilon: float, log-uniform from 0.01 to 0.3" in text
    assert "- train.optimizer: one of gd, sgd" in text
    assert "train.momentum = 0 wherever train.optimizer = sgd does not hold" in text
    # the per-trial small multiples: numbered titles in trial order that never overlap
    seen = []
    real_save = plots._save

    def save(fig, out):
        fig.canvas.draw()
        axes = [ax for ax in fig.axes if ax.get_visible()]
        boxes = [ax.title.get_window_extent(fig.canvas.get_renderer()) for ax in axes]
        seen.append((out.name, [ax.get_title() for ax in axes], boxes))
        return real_save(fig, out)

    monkeypatch.setattr(plots, "_save", save)
    comparison_plots(folder, sweep, state, tmp_path / "figs")
    _, titles, boxes = next(s for s in seen if s[0] == "loss.png")
    assert [t.split(":")[0] for t in titles] == [f"trial {i}" for i in range(10)]
    assert all("momentum=" in t for t in titles if "optimizer=sgd" in t)
    assert not any("momentum=" in t for t in titles if "optimizer=gd" in t)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_the_shipped_dcn_search_asks_for_momentum_only_for_sgd():
    from nnlab.sweeps import load_sweep

    sweep = load_sweep(CONFIGS / "sweeps" / "digits_dcn_search.yaml", [])
    momentum = sweep.search.params["train.momentum"]
    assert momentum.when == {"train.optimizer": "sgd"}
    assert sweep.search.info()["train.momentum"]["scale"] == "linear"
    assert sweep.search.info()["train.epsilon"]["scale"] == "log"
