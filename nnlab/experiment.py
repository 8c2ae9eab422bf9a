"""The library entry points behind the CLI: train a config into a run folder, check gradients.

Usable from a notebook: nothing here prints or exits; progress goes to an optional callback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.config import dump_config, load_config
from nnlab.data import Dataset, check_fits, load_data
from nnlab.errors import Diverged, NnlabError, RunStorageError
from nnlab.mlp import MLP, backprop, fit, loss, one_hot
from nnlab.runs import Run, RunRecorder, create_run_dir, make_exact_dir

ConfigSource = str | Path | Mapping[str, Any]
Overrides = Mapping[str, Any] | Iterable[str] | None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM via the CLI) stopped a run; ``run`` is its folder, marked interrupted."""

    def __init__(self, run: Run):
        super().__init__(f"run interrupted: {run.path}")
        self.run = run


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """Hold off a second Ctrl-C while the run's final files are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def title(cfg: dict[str, Any]) -> str:
    """What a figure's title says about the run, e.g. 'moons_tanh: [2, 3, 2] tanh'."""
    model = cfg["model"]
    return f"{cfg['name']}: {model['layers']} {model['activation']}"


def render_plots(
    cfg: dict[str, Any],
    rows: list[dict],
    model: MLP,
    data: Dataset,
    out_dir: Path,
    ext: str = "png",
) -> list[Path]:
    """Every figure of an MLP run, as PNG files in ``out_dir``."""
    from nnlab import plots

    name = title(cfg)
    made = [
        plots.loss_curve(rows, out_dir / f"loss.{ext}", name),
        plots.accuracy_curve(rows, out_dir / f"accuracy.{ext}", name),
    ]
    if data.n_features == 2:
        label = " (standardized)" if cfg["data"]["standardize"] else ""
        made.append(
            plots.decision_boundary(
                model.predict,
                data.X_train,
                data.y_train,
                out_dir / f"decision_boundary.{ext}",
                name,
                X_test=data.X_test,
                y_test=data.y_test,
                axis_labels=[f + label for f in data.feature_names],
            )
        )
    if data.X_test is not None:
        made.append(
            plots.confusion_matrix(
                data.y_test,
                model.predict(data.X_test),
                data.class_names,
                out_dir / f"confusion_matrix.{ext}",
                name,
            )
        )
    return [p for p in made if p is not None]


def _save_model(model: MLP, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **model.state())
    os.replace(tmp, path)


class MLPJob:
    """One NumPy MLP run: data and initial network, built and validated up front."""

    metric_columns = None  # the first row's keys: step, train_*, test_* with a test split

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.data = load_data(cfg)
        check_fits(cfg, self.data)
        model = cfg["model"]
        self.model = MLP.create(model["layers"], model["activation"], model["init"], cfg["seed"])

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def fit(
        self,
        run_dir: Path,
        on_row: Callable[[dict], None],
        progress: Callable[..., None] | None = None,
    ) -> None:
        total = self.cfg["train"]["iterations"]
        tick = None if progress is None else (lambda done: progress(done, total))
        fit(self.model, self.data, self.cfg["train"], on_row, tick)

    def save_model(self, run_dir: Path) -> None:
        _save_model(self.model, run_dir / "model.npz")

    def extra_summary(self) -> dict[str, Any]:
        return {}

    def load_model(self, run_dir: Path) -> None:
        """Take the trained weights from a finished run's model.npz."""
        with np.load(run_dir / "model.npz") as state:
            self.model = MLP.from_state(dict(state), self.cfg["model"]["activation"])

    def render_plots(
        self, rows: list[dict], out_dir: Path, run_dir: Path, ext: str = "png"
    ) -> list[Path]:
        return render_plots(self.cfg, rows, self.model, self.data, out_dir, ext)


def make_job(cfg: dict[str, Any]):
    """The trainer for the config's model kind; loads and checks the data (NnlabError if bad)."""
    if cfg["model"]["kind"] == "dcn":
        from nnlab.dcn import DCNJob

        return DCNJob(cfg)
    return MLPJob(cfg)


def train(
    config: ConfigSource | None = None,
    overrides: Overrides = None,
    runs_dir: str | Path = "runs",
    progress: Callable[..., None] | None = None,
    on_row: Callable[[dict[str, float]], None] | None = None,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> Run:
    """Train one experiment and leave its run folder under ``runs_dir``.

    Everything the user gave is validated, and the data loaded, before the folder is created,
    so bad input (:class:`nnlab.errors.NnlabError`) leaves nothing behind. A run that
    diverges or fails returns a Run with that status; Ctrl-C raises :class:`RunInterrupted`
    after marking the folder. ``progress(done, total, desc=None, unit="it")`` is called as work
    is done. ``run_dir`` puts the run in exactly that new folder instead of a timestamped one
    under ``runs_dir`` (sweeps use it for their jobs). ``resume`` names an interrupted DCN run
    folder to continue in place from its last epoch-end checkpoint (``config`` and
    ``overrides`` must then be left out).
    """
    if resume is not None:
        if config is not None or overrides:
            raise NnlabError(
                "--resume continues a run with its saved config; give no CONFIG "
                "or -s overrides with it"
            )
        return _resume(Path(resume), progress, on_row)
    cfg = load_config(config, overrides)
    job = make_job(cfg)
    path = make_exact_dir(Path(run_dir)) if run_dir else create_run_dir(runs_dir, cfg["name"])
    recorder = RunRecorder(path, cfg, dump_config(cfg), job.metric_columns)
    return _execute(job, recorder, progress, on_row)


RESUMABLE = ("interrupted", "failed", "running")  # running: the process was killed outright


def _resume(path: Path, progress, on_row) -> Run:
    from nnlab.runs import load_run

    if not (path / "meta.json").is_file():
        raise NnlabError(f"{path} is not a run folder (no meta.json), so it cannot be resumed")
    previous = load_run(path)
    cfg = load_config(path / "config.yaml")
    if cfg["model"]["kind"] != "dcn":
        raise NnlabError(
            f"{path} is a {cfg['model']['kind']} run; only DCN runs checkpoint "
            "and resume (an MLP run is quick to repeat)"
        )
    if previous.status not in RESUMABLE:
        raise NnlabError(
            f"{path} is a {previous.status} run; only an interrupted, failed or "
            "killed run can be resumed"
        )
    job = make_job(cfg)
    rows = job.load_checkpoint(path)
    recorder = RunRecorder.reopen(path, cfg, job.metric_columns, rows)
    return _execute(
        job,
        recorder,
        progress,
        on_row,
        previous_seconds=previous.summary.get("train_seconds") or 0.0,
    )


def _storage_error(path: Path, reason: str, status: str, error: str | None) -> RunStorageError:
    return RunStorageError(
        f"run folder {path} cannot be written any more ({reason}); the run "
        f"ended {status}" + (f": {error}" if error else "")
    )


def _execute(job, recorder: RunRecorder, progress, on_row, previous_seconds: float = 0.0) -> Run:
    """Run a job's training loop, then save the model, the figures and an honest status."""

    def log_row(row: dict[str, float]) -> None:
        recorder.metrics(row)
        if on_row is not None:
            on_row(row)

    status, error, interrupted = "completed", None, False
    t0 = time.perf_counter()
    try:
        job.fit(recorder.path, log_row, progress)
    except Diverged as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error, interrupted = "interrupted", "interrupted by the user", True
    except Exception as exc:  # a bug or resource fault: keep the folder honest, report it
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):  # the disk may be why it failed
            (recorder.path / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    train_seconds = previous_seconds + time.perf_counter() - t0

    with _no_sigint():
        if not (recorder.path / "config.yaml").is_file():  # never recreate a removed folder
            raise _storage_error(recorder.path, "it was removed", status, error)
        try:
            job.save_model(recorder.path)
        except OSError as exc:  # a full disk, a folder gone: the status still says so
            status, error = (
                ("failed" if status == "completed" else status),
                (error or f"saving the model failed: {exc}"),
            )
        if recorder.metrics.rows and status != "failed":
            try:
                job.render_plots(recorder.metrics.rows, recorder.path / "plots", recorder.path)
            except Exception as exc:
                recorder.meta["warnings"] = [f"plotting failed: {type(exc).__name__}: {exc}"]
        try:
            run = recorder.finish(status, job.n_params, train_seconds, error, job.extra_summary())
        except OSError as exc:
            raise _storage_error(recorder.path, exc.strerror or str(exc), status, error) from None
    if interrupted:
        raise RunInterrupted(run)
    return run


@dataclass
class GradCheck:
    """Backprop against central finite differences for one parameter array."""

    name: str
    shape: tuple[int, ...]
    rel_error: float


def numeric_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``f()`` with respect to every entry of ``x`` (perturbed in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)``, 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def gradcheck(
    config: ConfigSource, overrides: Overrides = None, batch: int = 16, h: float = 1e-6
) -> list[GradCheck]:
    """Compare hand-derived gradients with finite differences of J = N * L, per array.

    Uses the config's network at its initial weights and ``batch`` training examples drawn
    with the config's seed.
    """
    cfg = load_config(config, overrides)
    job = MLPJob(cfg)
    data, m = job.data, job.model
    rng = np.random.RandomState(cfg["seed"])
    idx = rng.choice(len(data.y_train), size=min(batch, len(data.y_train)), replace=False)
    X, y = data.X_train[idx], data.y_train[idx]
    lam = cfg["train"]["reg_lambda"]
    dW, db = backprop(m.W, m.b, X, one_hot(y, m.layers[-1]), m.activation, lam)

    def objective() -> float:
        return len(y) * loss(m.W, m.b, X, y, m.activation, lam)

    results = []
    for i in range(len(m.W)):
        for name, param, grad in ((f"W{i + 1}", m.W[i], dW[i]), (f"b{i + 1}", m.b[i], db[i])):
            numeric = numeric_gradient(objective, param, h)
            results.append(GradCheck(name, param.shape, relative_error(grad, numeric)))
    return results
