"""A third model kind, defined here and nowhere in nnlab, runs through every command.

The kind — a NumPy softmax regression — is written to a temporary folder as a module with an
``nnlab.kinds`` entry point (a ``.dist-info`` folder, as pip would install it), and the real
``nnlab`` command runs it in subprocesses: ``train``, ``sweep`` (in worker processes), ``plot``,
``report`` and ``runs``. Nothing in nnlab's modules names it: the trainer interface and the
registry are the whole contract.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, check_run, nnlab, run_dir_of

TOY_MODULE = '''
"""A toy model kind: softmax regression by full-batch gradient descent, in NumPy."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nnlab.common.constraints import Integer, Number, OneOf
from nnlab.config.options import Option
from nnlab.models import Kind, Trainer


class SoftmaxRegression(Trainer):
    def __init__(self, cfg):
        from sklearn.datasets import make_blobs, make_moons

        self.cfg = cfg
        data = cfg["data"]
        if data["name"] == "moons":
            X, y = make_moons(data["n_samples"], noise=0.2, random_state=cfg["seed"])
        else:
            X, y = make_blobs(data["n_samples"], random_state=cfg["seed"])
        k = int(y.max()) + 1
        self.data = SimpleNamespace(
            X_train=X, y_train=y, X_test=None, y_test=None, class_names=[str(c) for c in range(k)]
        )
        self.W, self.b = np.zeros((2, k)), np.zeros(k)

    @property
    def n_params(self):
        return self.W.size + self.b.size

    def _proba(self, X):
        z = X @ self.W + self.b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return np.argmax(X @ self.W + self.b, axis=1)

    def fit(self, run_dir, hooks):
        X, y = self.data.X_train, self.data.y_train
        Y = np.eye(self.W.shape[1])[y]
        t = self.cfg["train"]
        for step in range(t["iterations"]):
            P = self._proba(X)
            self.W -= t["epsilon"] * X.T @ (P - Y) / len(y)
            self.b -= t["epsilon"] * (P - Y).mean(axis=0)
            if step % t["log_every"] == 0 or step == t["iterations"] - 1:
                P = self._proba(X)
                loss = float(-np.log(P[np.arange(len(y)), y]).mean())
                acc = float((P.argmax(axis=1) == y).mean())
                hooks.row({"step": step, "train_loss": loss, "train_acc": acc})
            hooks.progress(step + 1, t["iterations"])

    def save_model(self, run_dir):
        np.savez(Path(run_dir) / "model.npz", W=self.W, b=self.b)

    def load_model(self, run_dir):
        with np.load(Path(run_dir) / "model.npz") as state:
            self.W, self.b = state["W"], state["b"]

    def figures(self, rows, out_dir, run_dir, ext="png"):
        from nnlab.figures import plots

        title = f"{self.cfg['name']}: softmax regression"
        made = [
            plots.loss_curve(rows, Path(out_dir) / f"loss.{ext}", title),
            plots.decision_boundary(
                self.predict, self.data.X_train, self.data.y_train,
                Path(out_dir) / f"decision_boundary.{ext}", title,
            ),
        ]
        return [p for p in made if p is not None]

    def predictor(self):
        return self.predict, self.data


class SoftmaxRegressionKind(Kind):
    def describe(self, cfg):
        return "a NumPy softmax regression (TOY-KIND)"


KIND = SoftmaxRegressionKind(
    "logreg",
    {
        "data.name": Option("moons", OneOf(("moons", "blobs")), "data set"),
        "data.n_samples": Option(100, Integer(2), "points"),
        "train.epsilon": Option(0.5, Number(0, low_open=True), "learning rate"),
        "train.iterations": Option(300, Integer(1), "steps"),
        "train.log_every": Option(50, Integer(1), "steps between rows"),
    },
    SoftmaxRegression,
)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy kind installed as pip would: a module and a dist-info folder with the entry
    point, on PYTHONPATH for the nnlab subprocesses (sweep workers inherit it)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "nnlab_toy_kind.py").write_text(TOY_MODULE)
    info = site / "nnlab_toy_kind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnlab-toy-kind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nnlab.kinds]\nlogreg = nnlab_toy_kind:KIND\n")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


@pytest.mark.slow
@pytest.mark.usefixtures("plugin")
def test_a_kind_nnlab_does_not_know_runs_through_every_command(tmp_path):
    runs = tmp_path / "runs"
    config = tmp_path / "toy.yaml"
    config.write_text("model: {kind: logreg}\ntrain: {epsilon: 1.0}\n")

    trained = nnlab("train", config, "--runs-dir", runs, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = run_dir_of(trained, tmp_path)
    check_run(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["n_params"] == 6
    assert summary["final"]["step"] == 299 and summary["final"]["train_acc"] > 0.8
    assert "kind: logreg" in (run / "config.yaml").read_text()

    bad = nnlab("train", config, "-s", "model.layers=[2,2]", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "nnlab: error: model.layers applies only to model.kind mlp, and this config's "
        "model.kind is logreg"
    )

    sweep_file = tmp_path / "toy_sweep.yaml"
    sweep_file.write_text(
        textwrap.dedent(
            f"""\
            sweep:
              name: toy
              base: {config}
              grid:
                train.epsilon: [0.05, 1.0]
                data.n_samples: [60, 120]
              table: {{rows: train.epsilon, cols: data.n_samples, value: train_acc}}
            """
        )
    )
    swept = nnlab("sweep", sweep_file, "-q", "--jobs", "2", "--runs-dir", runs)
    assert swept.returncode == 0, swept.stderr
    folder = Path(swept.stdout.strip().splitlines()[-1])
    check_run(folder)
    state = json.loads((folder / "state.json").read_text())
    assert len(state["jobs"]) == 4
    assert {j["status"] for j in state["jobs"].values()} == {"completed"}
    assert (folder / "plots" / "decision_boundaries.png").is_file()  # through predictor()

    replotted = nnlab("plot", run, "--out", tmp_path / "again")
    assert replotted.returncode == 0, replotted.stderr
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "decision_boundary.png",
        "loss.png",
    ]

    reported = nnlab("report", run, folder)
    assert reported.returncode == 0, reported.stderr
    assert "a NumPy softmax regression (TOY-KIND)" in (run / "report.md").read_text()
    assert "Sweep toy" in (folder / "summary.md").read_text()

    listed = nnlab("runs", "--runs-dir", runs)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if run.name in line)
    assert " logreg " in line and "completed" in line


def test_without_the_plugin_the_kind_is_a_clear_error(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text("model: {kind: logreg}\n")
    result = nnlab("train", config, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "nnlab: error: model.kind must be one of mlp, dcn; got 'logreg'"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_broken_plugin_breaks_only_its_own_kind(tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "nnlab_broken_kind-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnlab-broken-kind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nnlab.kinds]\nbroken = no_such_module:KIND\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    ok = nnlab("train", "-q", CONFIGS / "moons_tanh.yaml", "-s", "train.iterations=10",
               "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    config = tmp_path / "broken.yaml"
    config.write_text("model: {kind: broken}\n")
    bad = nnlab("train", config, "--runs-dir", tmp_path / "runs2")
    assert bad.returncode == 2
    assert bad.stderr.startswith("nnlab: error: model.kind 'broken': entry point no_such_module")
    assert len(bad.stderr.strip().splitlines()) == 1
