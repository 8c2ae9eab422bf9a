"""The library entry point behind ``nnlab train``: one config, trained into one run folder.

Works for every model kind through the trainer interface (nnlab.models). Usable from a
notebook: nothing here prints or exits; progress goes to optional callbacks.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nnlab.config import dump_config, load_config
from nnlab.errors import Diverged, NnlabError, RunStorageError
from nnlab.files import atomic_write_text
from nnlab.models import Hooks, StopRun, Trainer, build, kind_of, kinds
from nnlab.runs import RUNS_DIR, Run, RunRecorder, create_run_dir, load_run, make_exact_dir

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


class _HeldSignals:
    """Hold Ctrl-C and SIGTERM from the moment a run folder is made until its meta.json says
    ``running``: a signal in between is noted, and :meth:`release` hands it to the handler
    it was meant for, inside the run, which then ends ``interrupted`` — never leaving a
    folder without meta.json. (Python runs signal handlers in the main thread only, so this
    holds whatever threads the libraries started.)"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> _HeldSignals:
        self._old: dict[int, Any] = {}
        self._pending: int | None = None
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self._pending = signum

    def release(self) -> None:
        old, self._old = self._old, {}
        for sig, handler in old.items():
            signal.signal(sig, handler)
        signum, self._pending = self._pending, None
        if signum is None or old.get(signum) == signal.SIG_IGN:
            return
        if callable(old.get(signum)):
            old[signum](signum, None)  # Python's Ctrl-C handler, or the CLI's SIGTERM one
        else:
            signal.raise_signal(signum)  # the default action

    def __exit__(self, *exc: object) -> None:
        self.release()


def train(
    config: ConfigSource | None = None,
    overrides: Overrides = None,
    runs_dir: str | Path = RUNS_DIR,
    progress: Callable[..., None] | None = None,
    on_row: Callable[[dict[str, float]], None] | None = None,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Run:
    """Train one experiment and leave its run folder under ``runs_dir``.

    Everything the user gave is validated, and the data loaded, before the folder is created,
    so bad input (:class:`nnlab.errors.NnlabError`) leaves nothing behind. A run that
    diverges or fails returns a Run with that status; Ctrl-C raises :class:`RunInterrupted`
    after marking the folder. ``progress(done, total, desc=None, unit="it")`` is called as work
    is done, ``on_row(row)`` with every metric row and ``on_step(step)`` after every optimizer
    step; either may raise :class:`nnlab.models.StopRun` to end the run early (its status and
    reason are recorded). ``run_dir`` puts the run in exactly that new folder instead of a
    timestamped one under ``runs_dir`` (sweeps use it for their jobs). ``resume`` names an
    interrupted run folder of a resumable kind (the DCN) to continue in place from its last
    checkpoint (``config`` and ``overrides`` must then be left out).
    """
    if resume is not None:
        if config is not None or overrides:
            raise NnlabError(
                "--resume continues a run with its saved config; give no CONFIG "
                "or -s overrides with it"
            )
        return _resume(Path(resume), _hooks(on_row, on_step, progress))
    cfg = load_config(config, overrides)
    trainer = build(cfg)
    with _HeldSignals() as held:
        path = make_exact_dir(Path(run_dir)) if run_dir else create_run_dir(runs_dir, cfg["name"])
        recorder = RunRecorder(path, cfg, dump_config(cfg), trainer.metric_columns)
        return _execute(trainer, recorder, _hooks(on_row, on_step, progress), held)


def _hooks(on_row, on_step, progress) -> Hooks:
    """Hooks from the callbacks given (the others do nothing)."""
    given = {"row": on_row, "step": on_step, "progress": progress}
    return Hooks(**{name: fn for name, fn in given.items() if fn is not None})


RESUMABLE = ("interrupted", "failed", "running")  # running: the process was killed outright


def _resume(path: Path, hooks: Hooks) -> Run:
    if not (path / "meta.json").is_file():
        raise NnlabError(f"{path} is not a run folder (no meta.json), so it cannot be resumed")
    previous = load_run(path)
    cfg = load_config(path / "config.yaml")
    if not kind_of(cfg).trainer_class().resumable:
        can = [n.upper() for n, k in kinds().items() if k.trainer_class().resumable]
        raise NnlabError(
            f"{path} is a {cfg['model']['kind']} run; only {' and '.join(can)} runs checkpoint "
            f"and resume (a {cfg['model']['kind']} run is quick to repeat)"
        )
    if previous.status not in RESUMABLE:
        raise NnlabError(
            f"{path} is a {previous.status} run; only an interrupted, failed or "
            "killed run can be resumed"
        )
    trainer = build(cfg)  # loads the data: only once the run is known to be resumable
    rows = trainer.load_checkpoint(path)
    with _HeldSignals() as held:
        recorder = RunRecorder.reopen(path, cfg, trainer.metric_columns, rows)
        seconds = previous.summary.get("train_seconds") or 0.0
        return _execute(trainer, recorder, hooks, held, previous_seconds=seconds)


def _storage_error(path: Path, reason: str, status: str, error: str | None) -> RunStorageError:
    return RunStorageError(
        f"run folder {path} cannot be written any more ({reason}); the run "
        f"ended {status}" + (f": {error}" if error else "")
    )


def _recording(recorder: RunRecorder, hooks: Hooks) -> tuple[Hooks, list[int]]:
    """The caller's hooks with every row written to metrics.csv first, and the last step
    seen kept (to say where a run stopped)."""
    last = [0]

    def row(r: dict[str, float]) -> None:
        recorder.metrics(r)
        last[0] = int(r["step"])
        hooks.row(r)

    def step(s: int) -> None:
        last[0] = s
        hooks.step(s)

    return Hooks(row, step, hooks.progress), last


def _execute(
    trainer: Trainer,
    recorder: RunRecorder,
    hooks: Hooks,
    held: _HeldSignals,
    previous_seconds: float = 0.0,
) -> Run:
    """Run the trainer's loop, then save the model, the figures and an honest status. Signals
    held while the folder was set up are let through first thing in the loop's try."""
    recording, last_step = _recording(recorder, hooks)
    status, error, interrupted = "completed", None, False
    t0 = time.perf_counter()
    try:
        held.release()
        trainer.fit(recorder.path, recording)
    except StopRun as exc:
        status = exc.status
        recorder.meta["stopped"] = {"reason": exc.reason, "step": last_step[0]}
    except Diverged as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error, interrupted = "interrupted", "interrupted by the user", True
    except Exception as exc:  # a bug or resource fault: keep the folder honest, report it
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):  # the disk may be why it failed
            atomic_write_text(recorder.path / "error.log", traceback.format_exc())
    train_seconds = previous_seconds + time.perf_counter() - t0

    with _no_sigint():
        if not (recorder.path / "config.yaml").is_file():  # never recreate a removed folder
            raise _storage_error(recorder.path, "it was removed", status, error)
        try:
            trainer.save_model(recorder.path)
        except OSError as exc:  # a full disk, a folder gone: the status still says so
            status, error = (
                ("failed" if status == "completed" else status),
                (error or f"saving the model failed: {exc}"),
            )
        if recorder.metrics.rows and status != "failed":
            try:
                trainer.figures(recorder.metrics.rows, recorder.path / "plots", recorder.path)
            except Exception as exc:
                recorder.meta["warnings"] = [f"plotting failed: {type(exc).__name__}: {exc}"]
        try:
            run = recorder.finish(
                status, trainer.n_params, train_seconds, error, trainer.summary_extra()
            )
        except OSError as exc:
            raise _storage_error(recorder.path, exc.strerror or str(exc), status, error) from None
    if interrupted:
        raise RunInterrupted(run)
    return run
