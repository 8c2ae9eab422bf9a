"""Guarantees under faults: a full disk, a vanished folder, concurrent runs, hostile names and
checkpoints, determinism of every shipped config, and fuzzed configs through the CLI."""

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import nnlab
from tests.conftest import CONFIGS, check_run, nnlab_process, read_csv, run_child
from tests.conftest import nnlab as run_nnlab


def _all_json_parses(root: Path) -> int:
    count = 0
    for path in root.rglob("*.json"):
        json.loads(path.read_text())
        count += 1
    return count


@pytest.mark.slow
def test_a_full_disk_fails_the_run_honestly_and_corrupts_nothing(tmp_path):
    def limit_file_size():  # every file this process writes stops at 6 kB: a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    result = run_nnlab(
        "train",
        CONFIGS / "moons_tanh.yaml",
        "-q",
        "--runs-dir",
        tmp_path,
        "-s",
        "train.log_every=1",
        "-s",
        "train.iterations=5000",
        setup=limit_file_size,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "File too large" in result.stderr
    run = next(tmp_path.iterdir())
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "failed" and "File too large" in meta["error"]
    rows = read_csv(run / "metrics.csv")  # every row whole: the partial one was cut back
    assert rows and all(r["train_acc"] for r in rows)
    assert [int(r["step"]) for r in rows] == list(range(len(rows)))
    assert _all_json_parses(tmp_path) == 2
    check_run(run)


@pytest.mark.slow
def test_a_run_folder_removed_mid_run_is_a_clear_error(tmp_path):
    with nnlab_process(
        "train",
        CONFIGS / "moons_tanh.yaml",
        "--runs-dir",
        tmp_path,
        "-q",
        "-s",
        "train.iterations=100000000",
        "-s",
        "train.log_every=1000",
    ) as proc:
        deadline = time.time() + 60
        while time.time() < deadline and not any(
            len(read_csv(p)) >= 2 for p in tmp_path.glob("*/metrics.csv")
        ):
            time.sleep(0.1)
        shutil.rmtree(next(tmp_path.iterdir()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cannot be written any more" in lines[0]
    assert "the run ended interrupted" in lines[0]


@pytest.mark.slow
def test_a_runs_folder_that_cannot_be_made_is_exit_2(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = run_nnlab("train", CONFIGS / "moons_tanh.yaml", "--runs-dir", tmp_path / "file" / "x")
    assert result.returncode == 2
    assert result.stderr.startswith("nnlab: error: cannot create runs folder")


@pytest.mark.slow
def test_runs_started_together_with_one_name_get_distinct_folders(tmp_path):
    args = ["train", CONFIGS / "moons_tanh.yaml", "-q", "--runs-dir", tmp_path]
    args += ["-s", "train.iterations=200"]
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(nnlab_process(*args)) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    folders = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(folders) == 4 and len(list(tmp_path.iterdir())) == 4
    check_run(tmp_path)


@pytest.mark.slow
def test_two_sweeps_in_one_runs_folder_do_not_interfere(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: same\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n"
        "    model.activation: [tanh, relu]\n"
    )
    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", tmp_path / "runs"]
    args += ["-s", "train.iterations=300"]
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(nnlab_process(*args)) for _ in range(2)]
        outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    sweeps = sorted((tmp_path / "runs").glob("*-sweep-same*"))  # not the index beside them
    assert len(sweeps) == 2
    for folder in sweeps:
        state = json.loads((folder / "state.json").read_text())
        assert [j["status"] for j in state["jobs"].values()] == ["completed", "completed"]
    check_run(*sweeps)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../escape", "a/b/c", "/abs", ".hidden", "..", "<x>"])
def test_a_run_name_cannot_write_outside_the_runs_folder(tmp_path, name):
    runs = tmp_path / "inner" / "runs"
    run = nnlab.train(
        CONFIGS / "moons_tanh.yaml", {"name": name, "train.iterations": 10}, runs_dir=runs
    )
    assert run.path.parent == runs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner"]
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == ["runs"]


class Payload:  # noqa: D101 - an object a malicious checkpoint would smuggle in
    def __reduce__(self):
        return (os.system, ("touch /tmp/nnlab-pwned",))


@pytest.mark.slow
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    import torch

    from tests.conftest import small_mnist

    root = small_mnist(tmp_path / "mnist")
    cfg = {
        "model": {"kind": "dcn", "conv_channels": [4], "fc_units": 8},
        "data": {"name": "mnist", "root": str(root), "val_size": 10},
        "train": {"epochs": 2, "stats_every": 0, "tensorboard": False},
    }

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(nnlab.RunInterrupted) as exc:
        nnlab.train(cfg, runs_dir=tmp_path / "runs", on_row=stop)
    run = exc.value.run.path
    torch.save({"evil": Payload()}, run / "checkpoint.pt")
    Path("/tmp/nnlab-pwned").unlink(missing_ok=True)
    result = run_nnlab("train", "--resume", run)
    assert result.returncode == 2 and "not a usable checkpoint" in result.stderr
    assert not Path("/tmp/nnlab-pwned").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    # every MLP config whose data ships with scikit-learn or the repository (the
    # Fashion-MNIST one takes a minute and is not bundled; the mini-batch path is covered)
    sorted(
        p
        for p in CONFIGS.glob("*.yaml")
        if "kind: dcn" not in p.read_text() and "mnist" not in p.stem
    ),
    ids=lambda p: p.stem,
)
def test_every_shipped_mlp_config_is_bit_identical_across_two_runs(path, tmp_path):
    a = nnlab.train(path, runs_dir=tmp_path)
    b = nnlab.train(path, runs_dir=tmp_path)
    assert (a.path / "metrics.csv").read_bytes() == (b.path / "metrics.csv").read_bytes()
    assert (a.path / "model.npz").read_bytes() == (b.path / "model.npz").read_bytes()


def test_a_signal_while_the_run_folder_is_made_still_leaves_an_honest_folder(
    tmp_path, monkeypatch, moons_small
):
    """Ctrl-C (or a sweep worker's SIGTERM) in the moment between making the run folder and
    writing its meta.json is held and then ends the run `interrupted` — never a folder without
    meta.json (a sweep killed at that moment used to leave one behind)."""
    import nnlab.runfolder.runs

    make = nnlab.runfolder.runs.RunRecorder.__init__

    def signal_midway(self, path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # after the folder exists, before meta.json
        make(self, path, *args, **kwargs)

    monkeypatch.setattr(nnlab.runfolder.runs.RunRecorder, "__init__", signal_midway)
    # Ctrl-C handled as Python does by default (a background job's pytest ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        nnlab.train(moons_small, runs_dir=tmp_path)
        stopped = None
    except KeyboardInterrupt as exc:  # caught here: a bare one would end the whole session
        stopped = exc
    finally:
        signal.signal(signal.SIGINT, previous)
    assert isinstance(stopped, nnlab.RunInterrupted), f"not held: {stopped!r}"
    run = stopped.run.path
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert (run / "config.yaml").is_file()


# -- read-only and full disks: one line, nothing lost, no entry left running ------------------


def _read_only(folder: Path):
    """A ``setup`` for a child process to which ``folder`` is read-only: a read-only bind
    mount in a mount namespace of its own when run as root (for whom no mode bit is
    read-only), else the folder's mode. Skips the test where neither is possible."""
    import ctypes

    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    ms_rdonly, ms_remount, ms_bind, ms_rec, ms_private = 1, 32, 4096, 16384, 1 << 18
    target = os.fsencode(folder)

    def setup() -> None:
        if libc.unshare(0x20000) != 0:  # CLONE_NEWNS
            raise OSError(ctypes.get_errno(), "unshare")
        for args in ((b"none", b"/", None, ms_rec | ms_private, None),
                     (target, target, None, ms_bind, None),
                     (target, target, None, ms_bind | ms_remount | ms_rdonly, None)):  # fmt: skip
            if libc.mount(*args) != 0:
                raise OSError(ctypes.get_errno(), "mount")

    try:
        probe = run_child(["true"], setup=setup, timeout=30)
    except Exception as exc:  # no CAP_SYS_ADMIN here
        pytest.skip(f"cannot make a read-only folder as root here: {exc}")
    assert probe.returncode == 0
    return setup


@pytest.mark.slow
@pytest.mark.parametrize("what", ["run", "sweep"])
def test_report_on_a_read_only_folder_is_one_line_and_loses_nothing(tmp_path, what):
    quick = {"train.iterations": 200, "train.log_every": 100}
    if what == "run":
        folder = nnlab.train(CONFIGS / "moons_tanh.yaml", quick, runs_dir=tmp_path / "runs").path
    else:
        sweep_file = tmp_path / "pair.yaml"
        sweep_file.write_text(
            f"sweep:\n  name: pair\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
            "  grid:\n    model.activation: [tanh, relu]\n"
        )
        folder = nnlab.sweep(sweep_file, overrides=quick, runs_dir=tmp_path / "s", jobs=1).path
    assert run_nnlab("report", folder).returncode == 0  # an earlier report, to be kept
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    setup = _read_only(folder)
    result = run_nnlab("report", folder, setup=setup, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    assert str(folder) in lines[0] and "cannot write" in lines[0], lines[0]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def _tiny_disk(tmp_path: Path, size: str):
    """A tmpfs of ``size`` mounted at tmp_path/disk (unmounted on the way out); skips where
    this process cannot mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", disk],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    return disk


@pytest.mark.slow
@pytest.mark.parametrize("size", ["40k", "150k"])
def test_a_sweep_on_a_full_disk_is_one_line_and_leaves_no_entry_running(tmp_path, size):
    """Disks that fill at the start, mid-way and at the tables: one line naming the folder,
    exit 1, no traceback; state.json leaves nothing `running`; `--resume` after space is
    freed (the folder moved to a roomy disk) finishes the sweep."""
    sweep_file = tmp_path / "pair.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: pair\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
    )
    disk = _tiny_disk(tmp_path, size)
    try:
        args = ["-s", "train.log_every=1", "-s", "train.iterations=4000"]
        result = run_nnlab("sweep", sweep_file, "-q", "--runs-dir", disk, *args, timeout=300)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1, result.stderr
        (folder,) = [p for p in disk.iterdir() if p.name.endswith("-sweep-pair")]
        state = json.loads((folder / "state.json").read_text())
        errors = [line for line in result.stderr.splitlines() if line.startswith("nnlab: error:")]
        if errors:  # the sweep's own files could not be written: one line naming the folder
            assert len(errors) == 1 and "No space left" in errors[0], result.stderr
            assert str(folder) in errors[0]
        else:  # only the jobs' files: each job failed, saying why
            assert "job(s) failed" in result.stderr, result.stderr
            assert all("No space left" in j["error"] for j in state["jobs"].values())
        assert state["status"] != "running"
        assert all(j["status"] != "running" for j in state["jobs"].values()), state["jobs"]
        moved = shutil.copytree(folder, tmp_path / folder.name, symlinks=True)
    finally:
        subprocess.run(["umount", disk], check=False)
    resumed = run_nnlab("sweep", "-q", "--resume", moved, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((moved / "state.json").read_text())
    assert state["status"] == "completed" and not (moved / ".nnlab-reserve").exists()
