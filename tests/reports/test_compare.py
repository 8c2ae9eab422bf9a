"""`nnlab compare`: exactly the config keys that differ, the metrics side by side, the right
differences to the first run; runs of different kinds compare on what they share."""

import csv
import io
import json
import shutil
import statistics
import subprocess

import pytest
from scipy import stats as sps

import nnlab
from nnlab.common.stats import mean_ci, seeds_needed
from tests.conftest import CONFIGS, check_run, run_dir_of
from tests.conftest import nnlab as run_nnlab
from tests.sweeps.test_sweep import state_of


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_compare_formats_say_the_same(runs):
    out = _json(*runs)
    text = run_nnlab("compare", *runs, "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", *out["runs"]]
    assert ["config", "model.activation", "tanh", "relu", "tanh"] in rows
    md = run_nnlab("compare", *runs, "--format", "md").stdout.splitlines()
    assert md[0].startswith("|  | ") and md[1].startswith("|---|")
    assert any(line.startswith("| train.epsilon | 0.01 | 0.02 | 0.01 |") for line in md)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- groups of runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A small real sweep: tanh and relu, three seeds each; the folder and each activation's
    run folders (in seed order)."""
    folder = tmp_path_factory.mktemp("groups")
    path = folder / "s.yaml"
    path.write_text(
        f"sweep:\n  name: seeded\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n  seeds: [0, 1, 2]\n"
    )
    quick = {"train.iterations": 300, "train.log_every": 100}
    done = nnlab.sweep(path, quick, runs_dir=folder / "runs", jobs=2)
    jobs = state_of(done.path)["jobs"]
    act = [j["overrides"]["model.activation"] for j in jobs.values()]
    by = {a: [j for j, b in zip(jobs.values(), act, strict=True) if b == a] for a in act}
    return done.path, {a: [done.path / j["run"] for j in by[a]] for a in ("tanh", "relu")}


def _final(folders, metric="train_acc"):
    return [json.loads((f / "summary.json").read_text())["final"][metric] for f in folders]


@pytest.mark.slow
def test_group_by_gives_scipys_statistics_of_the_seeds(seeded):
    folder, runs = seeded
    out = _json(folder, "--group-by", "model.activation")
    assert out["metric"] == "train_acc" and out["higher_is_better"] is True  # no test split
    assert out["group_by"] == "model.activation" and out["reference"] == "tanh"
    assert out["spread_over"] == ["seed"] and out["left_out"] == {}
    tanh, relu = (_final(runs[a]) for a in ("tanh", "relu"))
    first, second = out["groups"]
    assert (first["group"], first["n"], first["reference"]) == ("tanh", 3, True)
    assert first["difference"] is None and first["p_improvement"] is None
    assert first["mean"] == pytest.approx(statistics.mean(tanh))
    assert first["std"] == pytest.approx(statistics.stdev(tanh))
    assert first["ci"] == pytest.approx(list(mean_ci(tanh, metric="train_acc")))
    assert (second["group"], second["n"], second["reference"]) == ("relu", 3, False)
    assert second["difference"] == pytest.approx(statistics.mean(relu) - statistics.mean(tanh))
    ci = sps.ttest_ind(relu, tanh, equal_var=False).confidence_interval(0.95)
    assert second["difference_ci"] == pytest.approx([ci.low, ci.high])
    pairs = [1.0 if r > t else 0.5 if r == t else 0.0 for r in relu for t in tanh]
    assert second["p_improvement"] == pytest.approx(sum(pairs) / 9)
    welch = sps.ttest_ind(relu, tanh, equal_var=False)
    assert [second["welch_t"], second["welch_p"]] == pytest.approx([welch.statistic, welch.pvalue])
    assert second["seeds_needed"] == seeds_needed(relu, tanh)
    assert second["runs"] == [f"{p.parent.name}/{p.name}" for p in runs["relu"]]

    # the other formats carry the same numbers
    text = run_nnlab("compare", folder, "--group-by", "model.activation", "--format", "csv")
    rows = list(csv.reader(io.StringIO(text.stdout)))
    assert rows[0][:4] == ["model.activation", "n", "mean", "std"]
    assert rows[2][0] == "relu" and float(rows[2][1 + rows[0][1:].index("p_improvement")]) == (
        pytest.approx(second["p_improvement"])
    )
    table = run_nnlab("compare", folder, "--group-by", "model.activation").stdout
    mean, std = 100 * first["mean"], 100 * first["std"]
    assert f"tanh              3  {mean:.2f} ± {std:.2f}" in table
    assert "Δ vs tanh" in table and "P(better)" in table and "seeds needed" in table
    assert "mean ± std over seeds in each group" in table and "higher is better" in table
    md = run_nnlab("compare", folder, "--group-by", "model.activation", "--format", "md")
    assert "| model.activation | n | mean ± std | 95% CI | Δ vs tanh |" in md.stdout


@pytest.mark.slow
def test_the_reference_and_explicit_sets_of_runs(seeded):
    folder, runs = seeded
    by = _json(folder, "--group-by", "model.activation", "--reference", "relu")
    assert by["reference"] == "relu" and by["groups"][1]["reference"] is True
    tanh = by["groups"][0]
    assert tanh["difference"] == pytest.approx(-_json(folder, "--group-by", "model.activation")[
        "groups"][1]["difference"])  # fmt: skip
    # A --vs B: B is the reference, the same numbers as grouping by the key
    vs = _json(*runs["tanh"], "--vs", *runs["relu"])
    assert vs["group_by"] == "runs" and vs["reference"] == "B"
    assert [g["group"] for g in vs["groups"]] == ["A", "B"]
    for key in ("difference", "difference_ci", "p_improvement", "welch_p", "seeds_needed"):
        assert vs["groups"][0][key] == tanh[key]
    # a loss: lower is better, so the probability of improvement turns around
    loss = _json(*runs["tanh"], "--vs", *runs["relu"], "--metric", "train_loss")
    assert loss["higher_is_better"] is False
    a, b = _final(runs["tanh"], "train_loss"), _final(runs["relu"], "train_loss")
    wins = sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in a for y in b)
    assert loss["groups"][0]["p_improvement"] == pytest.approx(wins / 9)
    best = _json(folder, "--group-by", "model.activation", "--reference", "best")
    means = {g["group"]: g["mean"] for g in best["groups"]}
    assert best["reference"] == max(means, key=means.get)
    also = _json(*runs["tanh"], "--vs", *runs["relu"], "--metric", "best.train_acc")
    assert also["groups"][0]["mean"] == pytest.approx(
        statistics.mean(
            json.loads((p / "summary.json").read_text())["best"]["train_acc"] for p in runs["tanh"]
        )  # fmt: skip
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["--group-by", "model.activaton"],
         ["--group-by model.activaton: not a config key", "did you mean model.activation?",
          "keys that vary between them: seed, model.activation"]),
        (["--group-by", "data.name"], ["every run has data.name = moons, one group"]),
        (["--group-by", "model.activation", "--metric", "test_acc"],
         ["--metric test_acc: not a metric every run logs", "train_loss, train_acc"]),
        (["--group-by", "model.activation", "--reference", "gelu"],
         ["--reference gelu: not a group; groups: tanh, relu (or best)"]),
        (["--group-by", "seed", "--vs", "."], ["--group-by KEY or --vs, not both"]),
        (["--metric", "train_acc"], ["--metric and --reference compare groups"]),
        (["--vs"], ["--vs needs at least one run or sweep folder"]),
    ],
)  # fmt: skip
def test_bad_group_comparisons_are_one_line(seeded, args, words):
    folder, _ = seeded
    result = run_nnlab("compare", folder, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_a_group_of_one_run_has_no_statistics(seeded):
    _, runs = seeded
    result = run_nnlab("compare", *runs["tanh"][:2], "--vs", runs["relu"][0])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "nnlab: error: --vs: group B has 1 completed run(s); the statistics need at least two "
        "(seeds) in every group"
    )
    one = run_nnlab("compare", runs["tanh"][0], runs["relu"][0], "--group-by", "model.activation")
    assert "group tanh has 1 completed run(s)" in one.stderr and one.returncode == 2


# -- code and environment ------------------------------------------------------------------


def _copy(run, folder, name, **meta):
    """A copy of the run folder ``run`` with meta.json's keys set (None: removed)."""
    copy = shutil.copytree(run, folder / name)
    data = json.loads((copy / "meta.json").read_text())
    data.update(meta)
    data = {k: v for k, v in data.items() if v is not None}
    (copy / "meta.json").write_text(json.dumps(data))
    return copy


ENV = {
    "threads": 2,
    "torch": {"intra_op_threads": 2, "cpu_capability": "AVX2"},
    "device": "cpu",
    "precision": "float32",
    "libraries": {"numpy": "2.1.0", "torch": "2.14.1"},
    "variables": {"OMP_NUM_THREADS": "2"},
}


@pytest.mark.slow
def test_compare_shows_the_environment_keys_that_differ(runs, tmp_path):
    other = json.loads(json.dumps(ENV))
    other["torch"]["intra_op_threads"] = 1
    other["libraries"]["torch"] = "2.15.0"
    del other["variables"]
    a = _copy(runs[0], tmp_path, "a", environment=ENV)
    b = _copy(runs[0], tmp_path, "b", environment=other)
    old = _copy(runs[0], tmp_path, "old", environment=None)  # before environments were kept
    out = _json(a, b)
    assert out["environment"] == {
        "torch.intra_op_threads": [2, 1],
        "libraries.torch": ["2.14.1", "2.15.0"],
        "variables.OMP_NUM_THREADS": ["2", None],
    }
    assert out["environment_recorded"] == [True, True]
    table = run_nnlab("compare", a, b).stdout.splitlines()
    assert ["environment", "torch.intra_op_threads", "2", "1"] in [line.split() for line in table]
    assert any(line.split() == ["environment", "variables.OMP_NUM_THREADS", "2", "—"]
               for line in table)  # fmt: skip
    assert not any("device" in line or "precision" in line for line in table)  # the same
    same = run_nnlab("compare", a, _copy(runs[0], tmp_path, "a2", environment=ENV)).stdout
    assert ["(environment)", "same", "same"] in [line.split() for line in same.splitlines()]

    mixed = run_nnlab("compare", a, old, "--format", "md").stdout
    assert "| (environment) | recorded | not recorded |" in mixed
    assert _json(a, old)["environment"] == {}  # one recorded environment: nothing differs
    assert "| environment torch.intra_op_threads | 2 | 1 | not recorded |" in (
        run_nnlab("compare", a, b, old, "--format", "md").stdout
    )
    rows = list(csv.reader(io.StringIO(run_nnlab("compare", a, b, "--format", "csv").stdout)))
    assert ["environment", "torch.intra_op_threads", "2", "1"] in rows
    none = run_nnlab("compare", old, _copy(runs[0], tmp_path, "old2", environment=None)).stdout
    assert ["(environment)", "not", "recorded", "not", "recorded"] in [
        line.split() for line in none.splitlines()
    ]


@pytest.mark.slow
def test_groups_say_when_code_or_environment_differ(runs, tmp_path):
    other = ENV | {"torch": {"intra_op_threads": 1, "cpu_capability": "AVX2"}}
    ones = [_copy(runs[0], tmp_path, f"a{i}", environment=ENV) for i in range(2)]
    twos = [_copy(runs[2], tmp_path, f"b{i}", environment=other) for i in range(2)]
    out = _json(*ones, "--vs", *twos)
    assert out["warnings"] == ["the runs' environment differs in: torch.intra_op_threads"]
    assert out["spread_over"] == []  # each group: copies of one run
    assert "note: the runs' environment differs in: torch.intra_op_threads" in (
        run_nnlab("compare", *ones, "--vs", *twos).stdout
    )
    git = {"repo": "/lab", "commit": "c" * 40, "branch": "main", "dirty": False}
    twos = [_copy(runs[2], tmp_path, f"c{i}", environment=ENV, git=git) for i in range(2)]
    assert any("different code" in w for w in _json(*ones, "--vs", *twos)["warnings"])


@pytest.mark.slow
def test_runs_without_git_say_no_git_not_differs(runs, tmp_path):
    a = _copy(runs[0], tmp_path, "a", git=None)
    b = _copy(runs[1], tmp_path, "b", git=None)
    table = run_nnlab("compare", a, b).stdout
    assert "differs!" not in table
    assert table.splitlines()[1].split() == ["code", "no", "git", "no", "git"]
    assert _json(a, b)["same_code"] is None  # nothing says whether the code is the same
    git = {"repo": "/lab", "commit": "c" * 40, "branch": "main", "dirty": False}
    c = _copy(runs[1], tmp_path, "c", git=git)
    mixed = run_nnlab("compare", a, c).stdout
    assert "code (not all recorded)  no git" in mixed and "cccccccc" in mixed
    assert _json(a, c)["same_code"] is None
    d = _copy(runs[1], tmp_path, "d", git=git | {"commit": "d" * 40})
    assert "code (differs!)" in run_nnlab("compare", c, d).stdout
    assert _json(c, _copy(runs[0], tmp_path, "e", git=git))["same_code"] is True


@pytest.mark.slow
def test_a_run_named_twice_counts_once_and_cannot_be_on_both_sides(seeded):
    folder, by_activation = seeded
    tanh, relu = by_activation["tanh"], by_activation["relu"]
    once = _json(folder, "--group-by", "model.activation")
    twice = _json(folder, folder, *tanh, "--group-by", "model.activation")
    assert [g["n"] for g in twice["groups"]] == [g["n"] for g in once["groups"]] == [3, 3]
    assert twice["groups"] == once["groups"]
    result = run_nnlab("compare", *tanh, "--vs", tanh[0], *relu)
    assert result.returncode == 2 and "are on both sides" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_runs_left_out_are_counted_in_their_own_group(seeded, tmp_path):
    folder, by_activation = seeded
    tanh, relu = by_activation["tanh"], by_activation["relu"]
    lost = _copy(relu[0], tmp_path, "lost", status="diverged", error="loss became nan")
    out = _json(*tanh, *relu, lost, "--group-by", "model.activation")
    assert [g["n"] for g in out["groups"]] == [3, 3]
    assert out["left_out"] == {"relu": {"diverged": 1}}
    table = run_nnlab("compare", *tanh, *relu, lost, "--group-by", "model.activation").stdout
    assert "left out (not completed), so n counts fewer runs there: relu: 1 diverged" in table
