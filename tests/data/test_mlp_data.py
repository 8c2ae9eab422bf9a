"""Data for the MLP through the real command: MNIST-format images, the user's CSV and NPZ files,
validation splits, string labels, and one-line errors for bad files."""

import json
import os

import numpy as np
import pytest
import yaml

import nnlab
from nnlab.config.resolve import load_config
from nnlab.data.tabular import load_data
from nnlab.models.mlp.math import MLP
from tests.conftest import CONFIGS, ROOT, check_run, run_dir_of, small_mnist
from tests.conftest import nnlab as run_nnlab

QUICK = ["-s", "train.epochs=2", "-s", "train.log_every=5"]


def _write(path, text):
    path.write_text(text)
    return path


def _csv_config(tmp_path, csv_name="t.csv", **data):
    cfg = {
        "data": {"name": "csv", "path": csv_name, "test_size": 0.25, **data},
        "model": {"layers": [2, 4, 3]},
        "train": {"optimizer": "adam", "epochs": 3, "batch_size": 8},
    }
    return _write(tmp_path / "cfg.yaml", yaml.safe_dump(cfg))


def _table(n=60, labels=("ant", "bee", "cat"), seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, len(labels), n)
    X = rng.randn(n, 2) + 3 * y[:, None]
    lines = ["length,width,kind"] + [
        f"{float(a)!r},{float(b)!r},{labels[k]}" for (a, b), k in zip(X, y, strict=True)
    ]
    return "\n".join(lines) + "\n", X, y


BAD_FILES = {
    "non-numeric cell": ("length,width,kind\n1,2,ant\n3,x7,bee\n", ["line 3", "width", "'x7'"]),
    "empty cell": ("length,width,kind\n1,2,ant\n3,,bee\n", ["line 3", "width"]),
    "missing target": ("length,height,label\n1,2,ant\n3,4,bee\n", ["kind"]),
    "ragged row": ("length,width,kind\n1,2,ant\n3,4,5,bee\n", ["line 3", "4"]),
    "single class": ("length,width,kind\n1,2,ant\n3,4,ant\n", ["one class", "ant"]),
    "NaN": ("length,width,kind\n1,2,ant\nnan,4,bee\n", ["line 3", "length"]),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_each_csv_defect_is_exit_2_one_line_naming_file_line_column_and_no_run(tmp_path, case):
    text, names = BAD_FILES[case]
    _write(tmp_path / "t.csv", text)
    config = _csv_config(tmp_path, target="kind")
    result = run_nnlab("train", config, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    assert "t.csv" in lines[0] and "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_string_labels_round_trip_through_a_run(tmp_path):
    text, X, y = _table(labels=("zebra", "ant", "bee"))
    _write(tmp_path / "t.csv", text)
    config = _csv_config(tmp_path, target="kind", test_size=0.0)
    result = run_nnlab("train", config, "--runs-dir", "runs", "-s", "train.epochs=40", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = run_dir_of(result, tmp_path)
    check_run(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["classes"] == ["ant", "bee", "zebra"]  # the label order, sorted
    with np.load(run / "model.npz") as z:
        model = MLP.from_state(dict(z), "tanh")
    names = np.array(summary["classes"])[model.predict(X)]
    truth = np.array(["zebra", "ant", "bee"])[y]
    assert np.mean(names == truth) > 0.9  # the run's labels map back to the file's strings
    assert (run / "plots" / "loss.png").is_file()


@pytest.mark.slow
def test_a_relative_data_path_is_relative_to_the_config_file(tmp_path):
    text, _, _ = _table()
    (tmp_path / "conf").mkdir()
    _write(tmp_path / "conf" / "t.csv", text)
    cfg = _csv_config(tmp_path / "conf", target="kind")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_nnlab("train", cfg, "--runs-dir", "runs", *QUICK, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    run = run_dir_of(result, elsewhere)
    saved = load_config(run / "config.yaml")
    assert saved["data"]["path"] == str(tmp_path / "conf" / "t.csv")
    # the saved config repeats the run from anywhere
    again = run_nnlab("train", run / "config.yaml", "--runs-dir", "runs", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    first = (run / "metrics.csv").read_bytes()
    assert (run_dir_of(again, tmp_path) / "metrics.csv").read_bytes() == first


def test_an_override_path_is_relative_to_the_working_directory(tmp_path):
    text, _, _ = _table()
    _write(tmp_path / "mine.csv", text)
    cfg = load_config(CONFIGS / "moons_tanh.yaml", ["data.name=csv", "data.path=mine.csv"])
    assert cfg["data"]["path"].endswith("mine.csv")


def test_npz_files_train(tmp_path):
    rng = np.random.RandomState(0)
    y = np.repeat(["no", "yes"], 40)
    X = rng.randn(80, 3) + (y == "yes")[:, None] * 2.5
    np.savez(tmp_path / "d.npz", X=X, y=y)
    run = nnlab.train(
        {
            "data": {"name": "npz", "path": str(tmp_path / "d.npz"), "val_size": 0.25},
            "model": {"layers": [3, 4, 2]},
            "train": {"optimizer": "sgd", "momentum": 0.9, "epsilon": 0.01, "epochs": 20},
        },
        runs_dir=tmp_path / "runs",
    )
    assert run.status == "completed" and run.summary.classes == ["no", "yes"]
    assert run.summary.final["val_acc"] > 0.8 and "test_acc" in run.summary.final
    check_run(run.path)


def test_mnist_format_images_are_flattened_and_scaled(tmp_path):
    root = small_mnist(tmp_path / "mnist", n_train=200, n_test=50)
    cfg = load_config(
        {
            "data": {"name": "mnist", "root": str(root), "val_size": 20},
            "model": {"layers": [784, 16, 10]},
        }
    )
    data = load_data(cfg)
    assert data.X_train.shape == (180, 784) and data.X_val.shape == (20, 784)
    assert data.X_test.shape == (50, 784) and data.n_classes == 10
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0
    standardized = load_data(load_config(cfg, ["data.standardize=true"]))
    assert abs(standardized.X_train.mean()) < 1e-9


@pytest.mark.slow
def test_an_mlp_trains_on_mnist_format_files_through_the_cli(tmp_path):
    root = small_mnist(tmp_path / "mnist", n_train=300, n_test=100)
    args = ["-s", "data.name=mnist", "-s", f"data.root={root}", "-s", "data.val_size=50"]
    args += ["-s", "model.layers=[784,32,10]", "-s", "model.activation=relu"]
    args += ["-s", "train.optimizer=adam", "-s", "train.epsilon=0.003", *QUICK]
    result = run_nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "--runs-dir", "runs", *args, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    run = run_dir_of(result, tmp_path)
    check_run(run)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,lr,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc"
    assert (run / "plots" / "confusion_matrix.png").is_file()
    assert not (run / "plots" / "decision_boundary.png").exists()  # 784 inputs: no boundary
    grad = run_nnlab("gradcheck", CONFIGS / "moons_tanh.yaml", *args[:-4], cwd=tmp_path)
    assert grad.returncode == 0, grad.stdout + grad.stderr
    assert "sampled" in grad.stdout and "FAIL" not in grad.stdout


@pytest.mark.slow
def test_gradcheck_covers_csv_data(tmp_path):
    text, _, _ = _table()
    _write(tmp_path / "t.csv", text)
    config = _csv_config(tmp_path, target="kind")
    result = run_nnlab("gradcheck", config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == 4


def test_the_shipped_wine_csv_config_trains_offline(tmp_path):
    run = nnlab.train(CONFIGS / "wine_csv.yaml", runs_dir=tmp_path)
    assert run.status == "completed"
    assert run.summary.classes == ["class_0", "class_1", "class_2"]
    assert run.summary.final["test_acc"] >= 0.9
    assert (ROOT / "data" / "wine.csv").is_file()


RULES = {
    "csv without a path": (["data.name=csv"], "set data.path"),
    "path with moons": (["data.path=x.csv"], "data.path applies to data.name csv or npz"),
    "target with moons": (["data.target=kind"], "data.target applies to data.name csv only"),
    "nesterov without momentum": (
        ["train.optimizer=sgd", "train.nesterov=true"],
        "train.nesterov needs optimizer sgd with momentum > 0",
    ),
    "early stopping without validation": (
        ["train.early_stopping.metric=val_loss"],
        "no validation split",
    ),
    "val_size a wrong number": (["data.val_size=1.5"], "data.val_size must be a fraction"),
    "unknown optimizer": (["train.optimizer=rmsprop"], "one of gd, sgd, adam"),
    "momentum with adam": (
        ["train.optimizer=adam", "train.momentum=0.9"],
        "train.momentum applies to optimizer sgd; this config's optimizer is adam",
    ),
}


@pytest.mark.parametrize("case", RULES)
def test_rules_between_keys_are_one_line_errors(case, tmp_path):
    overrides, message = RULES[case]
    args = [a for o in overrides for a in ("-s", o)]
    result = run_nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "--runs-dir", "runs", *args, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_sweep_grid_s_data_paths_are_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sweeps" / "csv").mkdir(parents=True)
    for name, seed in (("a.csv", 0), ("b.csv", 1)):
        _write(tmp_path / "sweeps" / "csv" / name, _table(seed=seed)[0])
    base = _csv_config(tmp_path, csv_name=str(tmp_path / "sweeps" / "csv" / "a.csv"))
    _write(
        tmp_path / "sweeps" / "s.yaml",
        f"sweep:\n  base: {base}\n  grid:\n    data.path: [csv/a.csv, csv/b.csv]\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_nnlab(
        "sweep", tmp_path / "sweeps" / "s.yaml", "--runs-dir", "runs", "-q", cwd=elsewhere
    )
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, elsewhere)
    state = json.loads((folder / "state.json").read_text())
    paths = sorted(j["overrides"]["data.path"] for j in state["jobs"].values())
    assert paths == [str(tmp_path / "sweeps" / "csv" / n) for n in ("a.csv", "b.csv")]
    assert all(j["status"] == "completed" for j in state["jobs"].values())


# -- data files are opened as files: regular files only, the parser's limits as one line -------


def _one_line(result) -> str:
    """The single `nnlab: error:` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    return lines[0]


def _not_files(tmp_path):
    """Paths that are not regular files: a FIFO nobody writes to (opening it for reading
    would wait forever), a device that never ends, a folder."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    return {"FIFO": (fifo, "named pipe (FIFO)"), "device": ("/dev/zero", "device"),
            "folder": (tmp_path, "folder")}  # fmt: skip


@pytest.mark.parametrize("name", ["csv", "npz"])
@pytest.mark.parametrize("kind", ["FIFO", "device", "folder"])
def test_only_regular_files_are_read_as_data(tmp_path, name, kind):
    path, what = _not_files(tmp_path)[kind]
    cfg = _csv_config(tmp_path, str(path), name=name)
    for command in (["train", cfg, "--runs-dir", tmp_path / "runs"], ["gradcheck", cfg]):
        line = _one_line(run_nnlab(*command, cwd=tmp_path, timeout=60))
        assert f"{path}: is a {what}, not a regular file" in line
    assert not (tmp_path / "runs").exists()


def _cells(n: int, row: str) -> str:
    return "\n".join(row.format(i=i, k=("ant", "bee")[i % 2]) for i in range(n)) + "\n"


HUGE = "9" * 200_000
CSV_LIMITS = {  # text, what the line must say
    "a huge cell": ("length,width,kind\n" + _cells(20, "{i},1,{k}") + f"7,{HUGE},bee\n",
                    ["line 22, column 'width' (index 1)", "200000 characters"]),
    "a huge quoted cell": ('length,width,kind\n' + _cells(20, '{i},"1",{k}') + f'7,"x{HUGE}",bee\n',
                           ["line 22, column 'width' (index 1)", "is not a number"]),
    "a huge header cell": (f"length,{HUGE}\n1,2\n", ["(200000 characters) (index 1)", "one class"]),
    "a NUL byte": ("length,width,kind\n1,2,ant\n3,\x004,bee\n", ["line 3, column index 1", "NUL"]),
    "a NUL byte, quoted": ('length,width,kind\n1,2,"ant"\n3,4,"b\x00"\n',
                           ["line 3, column index 2", "NUL"]),
    "text after a quote": ('length,width,kind\n1,2,ant\n3,4,bee\n5,"6"x,bee\n',
                           ["line 4, column 'width' (index 1)", "cannot be parsed as CSV"]),
    "text after a quote in line 2": ('length,width,kind\n1,"2"x,ant\n3,4,bee\n5,6,ant\n',
                                     ["line 2, column index 1", "cannot be parsed as CSV"]),
    "a quote not closed": ('length,width,kind\n1,2,ant\n3,4,bee\n5,6,"ant\n7,8,bee\n',
                           ["line 4, target column 'kind' (index 2)", "cannot be parsed"]),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", CSV_LIMITS)
def test_csv_parser_limits_are_one_line_naming_file_line_and_column(tmp_path, case):
    text, says = CSV_LIMITS[case]
    _write(tmp_path / "t.csv", text)
    result = run_nnlab("train", _csv_config(tmp_path), "--runs-dir", "runs", cwd=tmp_path)
    line = _one_line(result)
    assert str(tmp_path / "t.csv") in line and len(line) < 400  # a long cell is cut
    for part in says:
        assert part in line, (part, line)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["lone CR line endings", "a 20,000-column header"])
def test_csv_files_the_csv_module_reads_train(tmp_path, shape):
    if shape == "lone CR line endings":  # (classic Mac OS)
        text, _, _ = _table()
        _write(tmp_path / "t.csv", text.replace("\n", "\r"))
        layers = "[2,4,3]"
    else:
        names = ",".join(f"pixel_{j}" for j in range(19_999))
        rows = [",".join(["0.5"] * 19_999 + [k]) for k in ("ant", "bee") * 20]
        _write(tmp_path / "t.csv", "\n".join([names + ",kind", *rows]) + "\n")
        layers = "[19999,2,2]"
    config = _csv_config(tmp_path)
    result = run_nnlab("train", config, "--runs-dir", "runs", "-s", f"model.layers={layers}",
                       *QUICK, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_run(run_dir_of(result, tmp_path))


def _zip_field(data: bytes, local: int, central: int, value: int) -> bytes:
    """``data`` (a zip file) with a 2-byte field of every member's headers set to ``value``:
    at offset ``local`` of each local header, ``central`` of each central-directory entry."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = out.find(signature)
        while at >= 0:
            out[at + offset : at + offset + 2] = value.to_bytes(2, "little")
            at = out.find(signature, at + 4)
    return bytes(out)


NPZ_MEMBERS = {  # the zip headers' field: (local offset, central offset, value), the message
    "encrypted": ((6, 8, 0x1), "member 'X.npy' is encrypted"),
    "an unsupported compression": ((8, 10, 99), "member 'X.npy' uses zip compression method 99"),
}


@pytest.mark.parametrize("case", NPZ_MEMBERS)
def test_npz_members_that_zipfile_cannot_read_are_one_line(tmp_path, case):
    (local, central, value), says = NPZ_MEMBERS[case]
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "d.npz", X=rng.randn(40, 2), y=np.arange(40) % 2)
    data = _zip_field((tmp_path / "d.npz").read_bytes(), local, central, value)
    (tmp_path / "d.npz").write_bytes(data)
    cfg = _csv_config(tmp_path, "d.npz", name="npz")
    line = _one_line(run_nnlab("train", cfg, "--runs-dir", "runs", cwd=tmp_path))
    assert str(tmp_path / "d.npz") in line and says in line
    assert not (tmp_path / "runs").exists()


# -- labels that float64 cannot tell apart -------------------------------------------------------

BIG = 2**53  # 9007199254740992: float64 reads 2**53 + 1 as 2**53
LABELS = {  # the label texts of the two classes, the class names
    "integers above 2**53": ((f"{BIG}", f"{BIG + 1}"), [f"{BIG}", f"{BIG + 1}"]),
    "an integer and a float": ((f"{BIG + 1}", f"{BIG}.0"), [f"{BIG}", f"{BIG + 1}"]),
    "long decimals": (("0.1", "0.10000000000000000001"), ["0.1", "0.10000000000000000001"]),
    "one number, two spellings": (("1", "1.0"), None),  # one class: refused as such
}


@pytest.mark.slow
@pytest.mark.parametrize("case", LABELS)
@pytest.mark.parametrize("name", ["csv", "npz"])
def test_labels_float64_cannot_tell_apart_stay_distinct_classes(tmp_path, case, name):
    (a, b), classes = LABELS[case]
    text, _, y = _table(labels=(a, b))
    if name == "csv":
        _write(tmp_path / "t.csv", text)
    else:  # string labels in an npz archive: the same rule
        rows = [line.split(",") for line in text.splitlines()[1:]]
        X = np.array([[float(r[0]), float(r[1])] for r in rows])
        np.savez(tmp_path / "t.npz", X=X, y=np.array([r[2] for r in rows]))
    config = _csv_config(tmp_path, f"t.{name}", name=name, test_size=0.0)
    result = run_nnlab("train", config, "--runs-dir", "runs", "-s", "model.layers=[2,4,2]",
                       *QUICK, cwd=tmp_path)  # fmt: skip
    if classes is None:
        assert "holds only one class '1'" in _one_line(result)
        return
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir_of(result, tmp_path) / "summary.json").read_text())
    assert summary["classes"] == classes
