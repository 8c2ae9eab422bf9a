"""`nnlab compare`: exactly the config keys that differ, the metrics side by side, the right
differences to the first run; runs of different kinds compare on what they share."""

import csv
import io
import json
import subprocess

import pytest

import nnlab
from tests.conftest import CONFIGS, check_run, run_dir_of
from tests.conftest import nnlab as run_nnlab
from tests.test_sweep import state_of


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three moons runs: the base, another activation and learning rate, another seed."""
    folder = tmp_path_factory.mktemp("compare")
    quick = {"train.iterations": 600, "train.log_every": 200}
    made = [
        nnlab.train(CONFIGS / "moons_tanh.yaml", quick, runs_dir=folder),
        nnlab.train(
            CONFIGS / "moons_tanh.yaml",
            quick | {"model.activation": "relu", "train.epsilon": 0.02},
            runs_dir=folder,
        ),
        nnlab.train(CONFIGS / "moons_tanh.yaml", quick | {"seed": 3}, runs_dir=folder),
    ]
    return [r.path for r in made]


def _json(*args) -> dict:
    result = run_nnlab("compare", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compare_lists_exactly_the_differing_keys_and_the_deltas(runs):
    out = _json(*runs)
    assert out["runs"] == [p.name for p in runs]
    assert out["config"] == {
        "model.activation": ["tanh", "relu", "tanh"],
        "train.epsilon": [0.01, 0.02, 0.01],
        "seed": [0, 0, 3],
    }
    summaries = [json.loads((p / "summary.json").read_text()) for p in runs]
    for part in ("final", "best"):
        assert set(out[part]) == {"train_loss", "train_acc"}
        for metric, values in out[part].items():
            assert values == [s[part][metric] for s in summaries]
    table = run_nnlab("compare", *runs[:2]).stdout
    first, second = (summaries[i]["final"]["train_loss"] for i in (0, 1))
    assert f"({second - first:+.4g})" in table  # the difference to the first run
    acc = (summaries[1]["final"]["train_acc"] - summaries[0]["final"]["train_acc"]) * 100
    assert f"({acc:+.2f} pt)" in table
    assert "seed" not in table.split("final")[0]  # only what differs between these two


def test_compare_formats_say_the_same(runs):
    out = _json(*runs)
    text = run_nnlab("compare", *runs, "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", *out["runs"]]
    assert ["config", "model.activation", "tanh", "relu", "tanh"] in rows
    md = run_nnlab("compare", *runs, "--format", "md").stdout.splitlines()
    assert md[0].startswith("|  | ") and md[1].startswith("|---|")
    assert any(line.startswith("| train.epsilon | 0.01 | 0.02 | 0.01 |") for line in md)


def test_runs_of_different_kinds_compare_on_what_they_share(runs, tmp_path):
    dcn = nnlab.train(
        CONFIGS / "digits_dcn.yaml",
        {
            "model.conv_channels": [4, 8],
            "model.fc_units": 16,
            "train.epochs": 1,
            "train.stats_every": 0,
            "train.tensorboard": False,
        },
        runs_dir=tmp_path,
    )
    out = _json(runs[0], dcn.path)
    assert "model.kind" in out["config"] and "data.name" in out["config"]
    assert "model.activation" not in out["config"]  # the DCN has none
    assert "model.fc_units" not in out["config"]  # the MLP has none
    assert set(out["final"]) == {"train_loss", "train_acc"}  # the MLP logs no val/test here


def test_a_sweep_job_folder_stands_for_its_last_attempt_and_bad_folders_are_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: two\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
    )
    done = nnlab.sweep(path, {"train.iterations": 300}, runs_dir=tmp_path / "runs", jobs=1)
    jobs = state_of(done.path)["jobs"]
    folders = [done.path / "jobs" / job_id for job_id in jobs]
    out = _json(*folders)
    assert out["runs"] == [f"{job_id}/attempt-1" for job_id in jobs]
    assert list(out["config"]) == ["model.activation"]
    bad = run_nnlab("compare", folders[0], tmp_path)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a run folder or a sweep job folder" in lines[0]
    one = run_nnlab("compare", folders[0])
    assert one.returncode == 2 and "at least two" in one.stderr


def _git(repo, *args):
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


def test_provenance_records_the_commit_clean_and_dirty_and_compare_notices(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "moons.yaml").write_text((CONFIGS / "moons_tanh.yaml").read_text())
    (repo / "notes.txt").write_text("first\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "start")
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    sets = ["-s", "train.iterations=100", "--runs-dir", tmp_path / "runs", "-q"]
    clean = run_dir_of(run_nnlab("train", repo / "moons.yaml", *sets, cwd=tmp_path), tmp_path)
    meta = json.loads((clean / "meta.json").read_text())
    assert meta["git"] == {"repo": str(repo), "commit": head, "branch": "main", "dirty": False}
    assert not (clean / "git.diff").exists()

    (repo / "notes.txt").write_text("first\nsecond\n")  # a tracked file changed
    dirty = run_dir_of(run_nnlab("train", repo / "moons.yaml", *sets, cwd=tmp_path), tmp_path)
    meta = json.loads((dirty / "meta.json").read_text())
    assert meta["git"]["dirty"] is True and meta["git"]["commit"] == head
    assert "+second" in (dirty / "git.diff").read_text()
    check_run(clean, dirty)

    out = _json(clean, dirty)
    assert out["same_code"] is False and out["code"] == [head[:8], out["code"][1]]
    assert out["code"][1].startswith(f"{head[:8]} + diff ")
    assert "code (differs!)" in run_nnlab("compare", clean, dirty).stdout
    assert _json(clean, clean)["same_code"] is True

    outside = tmp_path / "plain.yaml"  # not in a repository: nothing recorded
    outside.write_text((CONFIGS / "moons_tanh.yaml").read_text())
    loose = run_dir_of(run_nnlab("train", outside, *sets, cwd=tmp_path), tmp_path)
    assert "git" not in json.loads((loose / "meta.json").read_text())
