"""Files nnlab reads back — meta.json, summary.json, config.yaml, metrics.csv, sweep.yaml,
state.json — hand-edited, foreign, truncated or garbage: every reader (`runs`, `report`,
`plot`, `sweep --resume`) gives one line naming the file and the field, never a traceback;
`nnlab runs` marks the broken folder and lists the others, one line each whatever the
names. And `plot --out` and `--metric`: a file is never taken for a folder, a metric never
silently ignored; a sweep table of a metric its runs never log says so."""

import json
import os
import shutil
from pathlib import Path

import pytest

import nnlab
from nnlab.runfolder.render import WIDEST
from tests.conftest import CONFIGS
from tests.conftest import nnlab as run_nnlab

QUICK = {"train.iterations": 300, "train.log_every": 100}
GARBAGE = bytes(range(256)) * 4  # not UTF-8, holds NUL and every control byte


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An MLP run and a finished two-job sweep, made once; tests corrupt copies of them."""
    root = tmp_path_factory.mktemp("records")
    run = nnlab.train(CONFIGS / "moons_tanh.yaml", QUICK, runs_dir=root / "runs")
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: pair\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
        "  table: {rows: model.layers, cols: model.activation}\n"
    )
    sweep = nnlab.sweep(sweep_file, overrides=QUICK, runs_dir=root / "sweeps", jobs=2)
    return {"run": run.path, "sweep": sweep.path}


def _json_edit(change):
    """A corruption that rewrites a JSON file after ``change(data)`` (which may return a
    replacement for the whole document)."""

    def edit(path: Path) -> None:
        data = json.loads(path.read_text())
        replaced = change(data)
        path.write_text(json.dumps(data if replaced is None else replaced))

    return edit


def _text(text: str):
    return lambda path: path.write_text(text)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(GARBAGE)


def _set(key, value):
    return _json_edit(lambda d: d.__setitem__(key, value))


def _set_in(outer, key, value):
    return _json_edit(lambda d: d[outer].__setitem__(key, value))


# (case id, file, corruption, what the error must name besides the file)
RUN_CASES = [
    ("meta-a-list", "meta.json", _text("[1, 2]"), "JSON object"),
    ("meta-start-time-a-number", "meta.json", _set("start_time", 5), "start_time"),
    ("meta-duration-a-string", "meta.json", _set("duration_seconds", "long"), "duration_seconds"),
    ("meta-status-unknown", "meta.json", _set("status", "exploded"), "status"),
    ("meta-name-a-list", "meta.json", _set("name", ["a"]), "name"),
    ("meta-command-a-string", "meta.json", _set("command", "nnlab train"), "command"),
    ("meta-versions-a-list", "meta.json", _set("versions", [1]), "versions"),
    ("meta-stopped-a-string", "meta.json", _set("stopped", "yes"), "stopped"),
    ("meta-nan", "meta.json", _text('{"status": "completed", "duration_seconds": NaN}'), "NaN"),
    ("meta-truncated", "meta.json", _truncate, "meta.json"),
    ("meta-garbage", "meta.json", _garbage, "UTF-8"),
    ("meta-deep", "meta.json", _text("[" * 100_000), "meta.json"),
    ("summary-a-list", "summary.json", _text("[]"), "JSON object"),
    ("summary-final-a-string", "summary.json", _set("final", "good"), "final"),
    ("summary-loss-a-string", "summary.json", _set_in("final", "train_loss", "low"), "train_loss"),
    ("summary-best-a-list", "summary.json", _set("best", []), "best"),
    ("summary-step-a-float", "summary.json", _set_in("final", "step", 2.5), "step"),
    ("summary-early-row", "summary.json", _set("early_stopping", {"row": 3}), "early_stopping"),
    ("summary-nan", "summary.json", _text('{"status": "completed", "final": {"a": NaN}}'), "NaN"),
    ("summary-truncated", "summary.json", _truncate, "summary.json"),
    ("summary-garbage", "summary.json", _garbage, "UTF-8"),
    ("metrics-ragged", "metrics.csv", _text("step,train_loss,train_acc\n0,0.5,0.9,7\n"), "line 2"),
    ("metrics-text-cell", "metrics.csv", _text("step,train_loss\n0,0.5\n100,low\n"), "train_loss"),
    ("metrics-float-step", "metrics.csv", _text("step,train_loss\n0.5,0.5\n"), "step"),
    ("metrics-no-step", "metrics.csv", _text("train_loss,train_acc\n0.5,0.9\n"), "step"),
    ("metrics-garbage", "metrics.csv", _garbage, "UTF-8"),
    ("metrics-nul", "metrics.csv", _text("step,train_loss\n0,0.5\x00\n"), "metrics.csv"),
    ("config-a-list", "config.yaml", _text("- 1\n- 2\n"), "mapping"),
    ("config-truncated", "config.yaml", _text("model: {layers: [2, 3\n"), "config.yaml"),
    ("config-garbage", "config.yaml", _garbage, "config.yaml"),
    ("config-bad-value", "config.yaml", _text("model: {layers: many}\n"), "model.layers"),
    ("config-bad-kind", "config.yaml", _text("model: {kind: 3}\n"), "model.kind"),
]
# the files `nnlab runs` reads: it must mark these; the others it never opens
LISTED_FILES = ("meta.json", "summary.json")


def _corrupt_copy(source: Path, dest: Path, file: str, corruption) -> Path:
    shutil.copytree(source, dest)
    corruption(dest / file)
    return dest


def _one_error_line(result, *names: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnlab: error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _broken_copies(source: Path, root: Path, cases: list) -> dict[str, Path]:
    """One corrupted copy of ``source`` per case, in a folder named by the case id."""
    return {case: _corrupt_copy(source, root / case, file, c) for case, file, c, _ in cases}


def _error_lines_by_case(result, copies: dict[str, Path], cases: list) -> None:
    """Each case's folder has exactly one error line, naming its file and field."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    for case, file, _, names in cases:
        named = [line for line in lines if str(copies[case] / file) in line]
        assert len(named) == 1, (case, result.stderr)
        assert named[0].startswith("nnlab: error: ") and names in named[0], (case, named[0])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "plot"])
def test_every_broken_run_file_is_one_line_naming_file_and_field(folders, tmp_path, command):
    """All the corruptions in one call: one line each, exit 2 (plot, given several folders,
    then says that none was left to overlay)."""
    copies = _broken_copies(folders["run"], tmp_path, RUN_CASES)
    before = {case: (copies[case] / file).read_bytes() for case, file, _, _ in RUN_CASES}
    out = ["--out", tmp_path / "overlay"] if command == "plot" else []
    result = run_nnlab(command, *copies.values(), *out)
    assert result.returncode == 2, result.stderr
    _error_lines_by_case(result, copies, RUN_CASES)
    assert len(result.stderr.strip().splitlines()) == len(RUN_CASES) + (command == "plot")
    after = {case: (copies[case] / file).read_bytes() for case, file, _, _ in RUN_CASES}
    assert after == before  # nothing written over what was there


@pytest.mark.parametrize(
    "file, corruption, names", [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES]
)
def test_plot_of_a_broken_run_is_one_line_naming_file_and_field(
    folders, tmp_path, file, corruption, names
):
    run = _corrupt_copy(folders["run"], tmp_path / "run", file, corruption)
    result = run_nnlab("plot", run)
    assert result.returncode == 2, result.stderr
    _one_error_line(result, str(run / file), names)


def _listed(result) -> dict[str, str]:
    """`nnlab runs` output: each row by its folder (the last column)."""
    return {row.split()[-1]: row for row in result.stdout.strip().splitlines()[1:]}


def test_runs_marks_each_broken_folder_and_lists_the_others(folders, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(folders["run"], runs / "good")
    shutil.copytree(folders["sweep"], runs / "sweep")
    copies = _broken_copies(folders["run"], runs, RUN_CASES)
    result = run_nnlab("runs", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = _listed(result)
    assert len(rows) == 2 + len(RUN_CASES), result.stdout
    assert "completed" in rows["good"] and "completed" in rows["sweep"]
    warnings = result.stderr.strip().splitlines()
    assert all(w.startswith("nnlab: warning: ") for w in warnings), warnings
    for case, file, _, names in RUN_CASES:
        named = [w for w in warnings if str(copies[case] / file) in w]
        if file in LISTED_FILES:  # the files `runs` reads
            assert " unreadable " in rows[case], (case, rows[case])
            assert len(named) == 1 and names in named[0], (case, warnings)
        else:
            assert "completed" in rows[case] and not named, case


def _job_edit(change):
    """A corruption of state.json's first job entry."""

    def edit(data):
        first = next(iter(data["jobs"]))
        replaced = change(data["jobs"][first])
        if replaced is not None:
            data["jobs"][first] = replaced

    return _json_edit(edit)


def _yaml_edit(change):
    def edit(path: Path) -> None:
        import yaml

        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data))

    return edit


def _first_job_gone(data):
    data["jobs"].pop(next(iter(data["jobs"])))


SWEEP_CASES = [
    ("state-a-list", "state.json", _text("[]"), "JSON object"),
    ("state-jobs-a-list", "state.json", _set("jobs", ["a"]), "jobs"),
    ("state-job-a-list", "state.json", _job_edit(lambda e: [1, 2]), "activation=tanh"),
    ("state-job-status", "state.json", _job_edit(lambda e: e.update(status="odd")), "status"),
    ("state-job-attempts", "state.json", _job_edit(lambda e: e.update(attempts="1")), "attempts"),
    ("state-job-final", "state.json", _job_edit(lambda e: e["final"].update(train_acc="x")),
     "train_acc"),
    ("state-job-run-outside", "state.json", _job_edit(lambda e: e.update(run="../../..")), "run"),
    ("state-job-overrides", "state.json", _job_edit(lambda e: e.update(overrides=[1])),
     "overrides"),
    ("state-nan", "state.json", _job_edit(lambda e: e["final"].update(train_acc=float("nan"))),
     "NaN"),
    ("state-job-missing", "state.json", _json_edit(_first_job_gone), "activation=tanh"),
    ("state-truncated", "state.json", _truncate, "state.json"),
    ("state-garbage", "state.json", _garbage, "UTF-8"),
    ("sweep-jobs-a-list", "sweep.yaml", _yaml_edit(lambda d: d.update(jobs=["a", "b"])), "jobs"),
    ("sweep-a-string", "sweep.yaml", _yaml_edit(lambda d: d.update(sweep="x")), "sweep"),
    ("sweep-grid-a-list", "sweep.yaml", _yaml_edit(lambda d: d["sweep"].update(grid=[1])),
     "grid"),
    ("sweep-seeds-text", "sweep.yaml", _yaml_edit(lambda d: d["sweep"].update(seeds="x")),
     "seeds"),
    ("sweep-table-value", "sweep.yaml",
     _yaml_edit(lambda d: d["sweep"]["table"][0].update(value="f1")), "value"),
    ("sweep-no-file", "sweep.yaml", _yaml_edit(lambda d: d["sweep"].pop("file")), "file"),
    ("sweep-base-config-a-list", "sweep.yaml", _yaml_edit(lambda d: d.update(base_config=[1])),
     "base_config"),
    ("sweep-base-config-value", "sweep.yaml",
     _yaml_edit(lambda d: d["base_config"]["model"].update(layers="many")), "model.layers"),
    ("sweep-job-overrides", "sweep.yaml",
     _yaml_edit(lambda d: d["jobs"].update({"activation=tanh": 5})), "activation=tanh"),
    ("sweep-truncated", "sweep.yaml", _text("sweep: {name: [pair\n"), "sweep.yaml"),
    ("sweep-garbage", "sweep.yaml", _garbage, "sweep.yaml"),
]  # fmt: skip


def test_report_names_the_file_and_field_of_every_broken_sweep(folders, tmp_path):
    copies = _broken_copies(folders["sweep"], tmp_path, SWEEP_CASES)
    result = run_nnlab("report", *copies.values())
    assert result.returncode == 2, result.stderr
    _error_lines_by_case(result, copies, SWEEP_CASES)
    assert len(result.stderr.strip().splitlines()) == len(SWEEP_CASES)


@pytest.mark.parametrize("command", ["plot", "sweep --resume"])
@pytest.mark.parametrize(
    "file, corruption, names", [c[1:] for c in SWEEP_CASES], ids=[c[0] for c in SWEEP_CASES]
)
def test_a_broken_sweep_file_is_one_line_naming_file_and_field(
    folders, tmp_path, command, file, corruption, names
):
    sweep = _corrupt_copy(folders["sweep"], tmp_path / "sweep", file, corruption)
    before = {p.name: p.read_bytes() for p in sweep.iterdir() if p.is_file()}
    args = {"plot": ["plot"], "sweep --resume": ["sweep", "-q", "--resume"]}[command]
    result = run_nnlab(*args, sweep)
    assert result.returncode == 2, result.stderr
    _one_error_line(result, str(sweep / file), names)
    after = {p.name: p.read_bytes() for p in sweep.iterdir() if p.is_file()}
    assert after == before  # a refused resume changes nothing; nothing is lost


def test_runs_marks_each_broken_sweep_and_lists_the_others(folders, tmp_path):
    # what `runs` reads of a sweep: state.json alone (a job missing is against sweep.yaml)
    cases = [c for c in SWEEP_CASES if c[1] == "state.json" and c[0] != "state-job-missing"]
    runs = tmp_path / "runs"
    shutil.copytree(folders["run"], runs / "good")
    copies = _broken_copies(folders["sweep"], runs, cases)
    result = run_nnlab("runs", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    rows = _listed(result)
    assert set(rows) == {"good", *copies} and "completed" in rows["good"]
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == len(cases), warnings
    for case, file, _, names in cases:
        named = [w for w in warnings if str(copies[case] / file) in w]
        assert " unreadable " in rows[case], (case, rows[case])
        assert len(named) == 1 and named[0].startswith("nnlab: warning: "), (case, warnings)
        assert names in named[0], (case, named[0])


def test_runs_keeps_one_line_per_run_whatever_the_names(folders, tmp_path):
    runs = tmp_path / "runs"
    names = {"newline": "two\nlines\r\x1b[31mred", "long": "x" * 5000, "plain": "moons"}
    for folder, name in names.items():
        shutil.copytree(folders["run"], runs / folder)
        meta = json.loads((runs / folder / "meta.json").read_text())
        meta["name"] = name
        (runs / folder / "meta.json").write_text(json.dumps(meta))
    result = run_nnlab("runs", "--runs-dir", runs)
    assert result.returncode == 0 and not result.stderr, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 + 3, result.stdout
    assert all(len(line) < 200 for line in lines), max(map(len, lines))
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    rows = {line.split()[-1]: line for line in lines[1:]}
    assert "two\\nlines" in rows["newline"] and "…" in rows["long"]
    # the long name is cut at the name column's width, not padded to 5000 characters
    assert lines[0].index(" kind ") < 19 + 2 + WIDEST["name"] + 2


@pytest.mark.slow
@pytest.mark.parametrize("what", ["run", "two runs", "sweep"])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_plot_out_that_is_a_file_is_refused_and_the_file_kept(folders, tmp_path, what, where):
    existing = tmp_path / "notes.txt"
    existing.write_text("my notes\n")
    out = existing if where == "a file" else existing / "figures"
    targets = {
        "run": [folders["run"]],
        "two runs": [folders["run"], folders["run"]],
        "sweep": [folders["sweep"]],
    }[what]
    copies = []
    for i, target in enumerate(targets):
        copies.append(tmp_path / f"folder{i}")
        shutil.copytree(target, copies[-1])
    result = run_nnlab("plot", *copies, "--out", out)
    assert result.returncode == 2, result.stderr
    _one_error_line(result, "--out", str(out), "not a folder")
    assert existing.read_text() == "my notes\n"


@pytest.mark.slow
def test_a_sweep_table_of_a_metric_the_runs_never_log_says_so(tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  name: noval\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
        "  table: {rows: model.layers, cols: model.activation, value: val_acc}\n"
    )
    args = ["-q", "-s", "train.iterations=200", "--runs-dir", tmp_path / "runs"]
    result = run_nnlab("sweep", sweep_file, *args)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    report = run_nnlab("report", folder)
    assert report.returncode == 0, report.stderr
    for text in (result.stdout, *((folder / f).read_text() for f in ("summary.md", "report.md"))):
        assert "no completed job" not in text
        assert "the runs do not log val_acc" in text.lower() and "train_acc, train_loss" in text


@pytest.mark.slow
@pytest.mark.parametrize("what", ["run", "sweep"])
def test_plot_metric_a_folder_does_not_log_is_refused_with_what_it_logs(folders, tmp_path, what):
    folder = tmp_path / what
    shutil.copytree(folders[what], folder)
    before = sorted(os.listdir(folder / "plots"))
    result = run_nnlab("plot", folder, "--metric", "bogus", "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    _one_error_line(result, "'bogus'", "train_acc, train_loss")
    assert not (tmp_path / "out").exists() and sorted(os.listdir(folder / "plots")) == before
    drawn = run_nnlab("plot", folder, "--metric", "train_acc", "--out", tmp_path / "out")
    assert drawn.returncode == 0, drawn.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["train_acc.png"]


# -- hostile folders: what is not a regular file where nnlab reads one -----------------------


def _fifo(path: Path) -> None:
    """A named pipe with no writer: opening it to read would wait forever."""
    _remove(path)
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    """A link to /dev/zero: a read never ends (MemoryError after filling memory)."""
    _remove(path)
    path.symlink_to("/dev/zero")


def _a_folder(path: Path) -> None:
    _remove(path)
    path.mkdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


HOSTILE = [("fifo", _fifo, "named pipe"), ("dev-zero", _dev_zero, "not a regular file"),
           ("folder", _a_folder, "is a folder")]  # fmt: skip
# every file a run's `report` or `plot` reads back, and what each command reads
HOSTILE_FILES = {
    "meta.json": ("runs", "report", "plot", "compare"),
    "summary.json": ("runs", "report", "plot", "compare"),
    "metrics.csv": ("report", "plot", "compare"),
    "config.yaml": ("report", "plot", "compare"),
    "model.npz": ("plot one",),  # plot of several folders overlays curves: no model
    "plots/loss.png": ("report",),
}
HOSTILE_CASES = [
    (f"{file.replace('/', '-')}-{kind}", file, make, text)
    for file in HOSTILE_FILES
    for kind, make, text in HOSTILE
]
HANG = 120  # seconds: a reader that blocks on a FIFO fails the test instead of hanging it


def _hostile(command: str) -> list:
    return [c for c in HOSTILE_CASES if command in HOSTILE_FILES[c[1]]]


def test_runs_lists_a_fifo_device_or_folder_in_a_run_as_unreadable_and_the_others(
    folders, tmp_path
):
    runs = tmp_path / "runs"
    shutil.copytree(folders["run"], runs / "good")
    shutil.copytree(folders["sweep"], runs / "sweep")
    cases = _hostile("runs")
    cases += [(f"state-{kind}", "state.json", make, text) for kind, make, text in HOSTILE]
    copies = {case: runs / case for case, *_ in cases}
    for case, file, make, _ in cases:
        shutil.copytree(folders["sweep" if file == "state.json" else "run"], copies[case])
        make(copies[case] / file)
    for where in ([], ["--where", "model.activation=tanh"]):  # config keys read too
        result = run_nnlab("runs", "--runs-dir", runs, *where, timeout=HANG)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        rows = _listed(result)
        assert "completed" in rows["good"]
        warnings = result.stderr.strip().splitlines()
        assert len(warnings) == len(cases), warnings
        for case, file, _, text in cases:
            named = [w for w in warnings if str(copies[case] / file) in w]
            assert len(named) == 1 and named[0].startswith("nnlab: warning: "), (case, warnings)
            assert text in named[0], (case, named[0])
            if not where:
                assert " unreadable " in rows[case], (case, rows[case])


@pytest.mark.parametrize("command", ["report", "plot"])
def test_a_fifo_device_or_folder_in_a_run_is_one_line_in_report_and_plot(
    folders, tmp_path, command
):
    """Every file the command reads back, as a FIFO, a link to /dev/zero and a folder, in one
    call: one line each naming the file, exit 2, no hang, nothing else in the folder lost."""
    cases = _hostile(command)
    copies = {}
    for case, file, make, _ in cases:
        copies[case] = shutil.copytree(folders["run"], tmp_path / case)
        make(copies[case] / file)
    before = {c: sorted(p.name for p in copies[c].rglob("*")) for c in copies}
    out = ["--out", tmp_path / "overlay"] if command == "plot" else []
    result = run_nnlab(command, *copies.values(), *out, timeout=HANG)
    assert result.returncode == 2, result.stderr
    _error_lines_by_case(result, copies, [(c, f, m, t) for c, f, m, t in cases])
    assert len(result.stderr.strip().splitlines()) == len(cases) + (command == "plot")
    assert before == {c: sorted(p.name for p in copies[c].rglob("*")) for c in copies}


@pytest.mark.slow
def test_a_fifo_device_or_folder_as_the_model_is_one_line_in_plot(folders, tmp_path):
    for case, file, make, text in _hostile("plot one"):
        run = shutil.copytree(folders["run"], tmp_path / case)
        make(run / file)
        result = run_nnlab("plot", run, timeout=HANG)
        assert result.returncode == 2, result.stderr
        _one_error_line(result, str(run / file), text)


@pytest.mark.parametrize("case, file, make, text", _hostile("compare"),
                         ids=[c[0] for c in _hostile("compare")])  # fmt: skip
def test_a_fifo_device_or_folder_in_a_run_is_one_line_in_compare(
    folders, tmp_path, case, file, make, text
):
    run = shutil.copytree(folders["run"], tmp_path / case)
    make(run / file)
    result = run_nnlab("compare", folders["run"], run, timeout=HANG)
    assert result.returncode == 2, result.stderr
    _one_error_line(result, str(run / file), text)


@pytest.mark.slow
@pytest.mark.parametrize("kind, make, text", HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("file", ["state.json", "sweep.yaml"])
def test_a_fifo_device_or_folder_in_a_sweep_is_one_line(folders, tmp_path, kind, make, text, file):
    sweep = shutil.copytree(folders["sweep"], tmp_path / "sweep")
    make(sweep / file)
    for args in (["report"], ["plot"], ["sweep", "-q", "--resume"]):
        result = run_nnlab(*args, sweep, timeout=HANG)
        assert result.returncode == 2, (args, result.stderr)
        _one_error_line(result, str(sweep / file), text)
