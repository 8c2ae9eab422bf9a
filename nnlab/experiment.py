"""The library entry point behind ``nnlab train``: one config, trained into one run folder.

Works for every model kind through the trainer interface (nnlab.models). Usable from a
notebook: nothing here prints or exits; progress goes to optional callbacks.
"""

from __future__ import annotations

import contextlib
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_text
from nnlab.common.signals import HeldSignals
from nnlab.common.status import RunStatus
from nnlab.config.resolve import dump_config, load_config
from nnlab.errors import Diverged, FigureNote, NnlabError, RunStorageError
from nnlab.models import Hooks, StopRun, Trainer, build, kind_of, kinds
from nnlab.runfolder import environment
from nnlab.runfolder.environment import applied_threads, with_threads
from nnlab.runfolder.fingerprint import fingerprint
from nnlab.runfolder.liveness import Heartbeat, refuse_if_alive
from nnlab.runfolder.memo import copy_run, find_completed
from nnlab.runfolder.provenance import DIFF_FILE, git_state
from nnlab.runfolder.runs import (
    RUNS_DIR,
    Run,
    RunRecorder,
    create_run_dir,
    load_run,
    make_exact_dir,
    run_folder,
)
from nnlab.runfolder.types import Stopped

ConfigSource = str | Path | Mapping[str, Any]
Overrides = Mapping[str, Any] | Iterable[str] | None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM via the CLI) stopped a run; ``run`` is its folder, with every file
    whole. Its status is ``interrupted``, or, when the signal came while a run that had
    finished was saving its files, the status it finished with (``completed``, say)."""

    def __init__(self, run: Run):
        super().__init__(f"run interrupted: {run.path}")
        self.run = run


def train(
    config: ConfigSource | None = None,
    overrides: Overrides = None,
    runs_dir: str | Path = RUNS_DIR,
    progress: Callable[..., None] | None = None,
    on_row: Callable[[dict[str, float]], None] | None = None,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
    on_step: Callable[[int], None] | None = None,
    repeat_of: str | Path | None = None,
    reuse: bool | str | Path = False,
) -> Run:
    """Train one experiment and leave its run folder under ``runs_dir``.

    Everything the user gave is validated, and the data loaded, before the folder is created,
    so bad input (:class:`nnlab.errors.NnlabError`) leaves nothing behind. A run that
    diverges or fails returns a Run with that status; Ctrl-C (or SIGTERM with a handler that
    raises KeyboardInterrupt, as the CLI's does) raises :class:`RunInterrupted` after marking
    the folder, or, when it comes while a finished run saves its files, after saving them
    whole under the status the run finished with. ``progress(done, total, desc=None,
    unit="it")`` is called as work is done, ``on_row(row)`` with every metric row and
    ``on_step(step)`` after every optimizer step; either may raise
    :class:`nnlab.models.StopRun` to end the run early (its status and reason are recorded).
    ``run_dir`` puts the run in exactly that new folder instead of a timestamped one under
    ``runs_dir`` (sweeps use it for their jobs). ``resume`` names an interrupted run folder
    of a resumable kind (the DCN) to continue in place from its last checkpoint (``config``
    and ``overrides`` must then be left out). ``reuse`` (True: look under ``runs_dir``; a
    path: under that folder) takes a completed run with the same fingerprint
    (nnlab.runfolder.fingerprint) instead of training: with ``run_dir``, that folder is made a
    copy of it; without, the matching run itself is returned. Either way the Run's
    ``reused_from`` names the match, and nothing is trained.
    """
    if resume is not None:
        if config is not None or overrides:
            raise NnlabError(
                "--resume continues a run with its saved config; give no CONFIG "
                "or -s overrides with it"
            )
        return _resume(Path(resume), _hooks(on_row, on_step, progress))
    cfg = with_threads(load_config(config, overrides))  # config.yaml records the count
    with applied_threads(cfg):
        trainer = build(cfg)
        env = environment.record(cfg, trainer)
        extra: dict[str, Any] = {"environment": env}
        fprint = _fingerprint(cfg, env)
        if fprint is not None:
            extra["fingerprint"] = fprint
            if reuse is not False and reuse is not None:
                where = Path(runs_dir) if reuse is True else Path(reuse)
                exclude = Path(run_dir) if run_dir else None
                source = find_completed(where, fprint["sha256"], exclude)
                if source is not None:
                    return _reused(source, cfg, run_dir)
        if cfg["train"]["threads"] > environment.usable_cores():
            extra["warnings"] = [
                f"train.threads is {cfg['train']['threads']} but this process may use "
                f"{environment.usable_cores()} cores: the threads share them, which is slower"
            ]
        if repeat_of is not None:
            extra["repeat_of"] = str(Path(repeat_of).resolve())
        # the code that runs: the repository holding the config file (a mapping: the cwd)
        git, diff = git_state(Path(config) if isinstance(config, str | Path) else Path.cwd())
        # held from the folder's making until meta.json says running, and through every
        # final write (model, figures, summary, meta): a signal waits until the files are whole
        with HeldSignals() as held:
            path = (
                make_exact_dir(Path(run_dir)) if run_dir else create_run_dir(runs_dir, cfg["name"])
            )
            if diff:
                try:
                    atomic_write_text(path / DIFF_FILE, diff)
                except OSError as exc:  # a full disk: the run says so when it writes, honestly
                    git["diff"] = f"not saved: {exc.strerror or exc}"
            if git:
                extra["git"] = git
            recorder = RunRecorder(path, cfg, dump_config(cfg), trainer.metric_columns, extra)
            return _execute(trainer, recorder, _hooks(on_row, on_step, progress), held)


def _fingerprint(cfg: dict[str, Any], env: dict[str, Any]) -> dict[str, Any] | None:
    """The run's fingerprint for meta.json; None when it cannot be made (a file gone
    unreadable, git failing oddly): a fingerprint describes a run, it must not stop one."""
    try:
        return fingerprint(cfg, env)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _reused(source: Path, cfg: dict[str, Any], run_dir: str | Path | None) -> Run:
    """The completed run ``source`` in place of training: a copy in ``run_dir`` (a sweep's
    attempt folder), else the run itself; ``reused_from`` names it."""
    if run_dir is None:
        run = load_run(source)
    else:
        with HeldSignals():  # a copy is whole, or has no meta.json (no run)
            run = copy_run(source, Path(run_dir), cfg["name"], dump_config(cfg))
    run.reused_from = source.resolve()
    return run


def _hooks(on_row, on_step, progress) -> Hooks:
    """Hooks from the callbacks given (the others do nothing)."""
    given = {"row": on_row, "step": on_step, "progress": progress}
    return Hooks(**{name: fn for name, fn in given.items() if fn is not None})


# running: if its process is gone (liveness)
RESUMABLE = (RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.RUNNING)


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
    refuse_if_alive(previous.meta, path, "resume it")  # running: killed, or still training?
    cfg = with_threads(cfg)  # a run from before threads were recorded: today's rule
    with applied_threads(cfg):
        trainer = build(cfg)  # loads the data: only once the run is known to be resumable
        rows = trainer.load_checkpoint(path)
        with HeldSignals() as held:
            recorder = RunRecorder.reopen(path, cfg, trainer.metric_columns, rows)
            env = environment.record(cfg, trainer)
            recorder.meta.update(environment=env)
            fprint = _fingerprint(cfg, env)
            if fprint is not None:
                recorder.meta.update(fingerprint=fprint)
            seconds = (previous.summary and previous.summary.train_seconds) or 0.0
            return _execute(trainer, recorder, hooks, held, previous_seconds=seconds)


def _storage_error(path: Path, reason: str, status: str, error: str | None) -> RunStorageError:
    return RunStorageError(
        f"run folder {path} cannot be written any more ({reason}); the run "
        f"ended {status}" + (f": {error}" if error else "")
    )


@dataclass
class _Ending:
    """How the training loop ended: the run's status, its error, and whether a signal (or
    Ctrl-C) stopped it."""

    status: RunStatus
    error: str | None = None
    interrupted: bool = False


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


def _fit(trainer: Trainer, recorder: RunRecorder, hooks: Hooks, held: HeldSignals) -> _Ending:
    """Run the trainer's loop with the signals let through (a noted one first of all), and
    say how it ended; the signals are held again before anything else is done."""
    recording, last_step = _recording(recorder, hooks)
    try:
        with held.released():
            trainer.fit(recorder.path, recording)
    except StopRun as exc:
        recorder.meta.update(stopped=Stopped(exc.reason, last_step[0]))
        return _Ending(exc.status)
    except Diverged as exc:
        return _Ending(RunStatus.DIVERGED, str(exc))
    except KeyboardInterrupt:
        return _Ending(RunStatus.INTERRUPTED, "interrupted by the user", interrupted=True)
    except Exception as exc:  # a bug or resource fault: keep the folder honest, report it
        with contextlib.suppress(OSError):  # the disk may be why it failed
            atomic_write_text(recorder.path / "error.log", traceback.format_exc())
        return _Ending(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
    return _Ending(RunStatus.COMPLETED)


def _save(trainer: Trainer, recorder: RunRecorder, ending: _Ending, train_seconds: float) -> Run:
    """The final writes: the model, the figures, summary.json and meta.json with the status
    they bear out (the caller holds the signals throughout)."""
    status, error = ending.status, ending.error
    if not (recorder.path / "config.yaml").is_file():  # never recreate a removed folder
        raise _storage_error(recorder.path, "it was removed", status, error)
    try:
        trainer.save_model(recorder.path)
    except OSError as exc:  # a full disk, a folder gone: the status still says so
        status = RunStatus.FAILED if status == RunStatus.COMPLETED else status
        error = error or f"saving the model failed: {exc}"
    if recorder.metrics.rows and status != RunStatus.FAILED:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", FigureNote)
            try:
                trainer.figures(recorder.metrics.rows, recorder.path / "plots", recorder.path)
            except Exception as exc:
                said.append(f"plotting failed: {type(exc).__name__}: {exc}")
        notes = _figure_notes(said)
        if notes:
            recorder.meta.update(warnings=[*(recorder.meta.warnings or []), *notes])
    try:
        extra = trainer.summary_extra()
        chance = trainer.chance_accuracy()
        if chance is not None:
            extra["chance_acc"] = round(chance, 6)
        return recorder.finish(status, trainer.n_params, train_seconds, error, extra)
    except OSError as exc:
        raise _storage_error(recorder.path, exc.strerror or str(exc), status, error) from None


def _execute(
    trainer: Trainer,
    recorder: RunRecorder,
    hooks: Hooks,
    held: HeldSignals,
    previous_seconds: float = 0.0,
) -> Run:
    """Run the trainer's loop, then save the model, the figures and an honest status.

    Only the loop itself takes Ctrl-C and SIGTERM as they come: the final writes run with
    both held, so a signal can never leave a run ``running`` without its summary. One that
    came meanwhile ends the process once they are done (:class:`RunInterrupted`, exit 130),
    the run keeping the status its files bear out — a run that had finished training is
    ``completed``, with its model, figures and summary whole, not ``interrupted``: nothing in
    it was cut short, and a DCN's checkpoint is gone by then, so there is nothing to resume.
    """
    t0 = time.perf_counter()
    with Heartbeat(recorder.path):  # until the final meta.json: others can tell it lives
        ending = _fit(trainer, recorder, hooks, held)
        run = _save(trainer, recorder, ending, previous_seconds + time.perf_counter() - t0)
    try:
        held.release()  # a signal noted while saving is acted on now
    except KeyboardInterrupt:
        raise RunInterrupted(run) from None
    if ending.interrupted:
        raise RunInterrupted(run)
    return run


def repeat(run: str | Path, runs_dir: str | Path = RUNS_DIR, **callbacks: Any) -> tuple[Run, Run]:
    """Train a finished run's config.yaml again — its seed, its thread count and every other
    key as it ran — into a new folder under ``runs_dir``; ``run`` is a run folder or a sweep
    job folder (its last attempt). Returns (the original, the repeat); :func:`sameness` says
    how they compare. ``callbacks`` are :func:`train`'s (progress, on_row, on_step)."""
    original = load_run(run_folder(run))
    if not (original.path / "config.yaml").is_file():
        raise NnlabError(f"{original.path} has no config.yaml to repeat")
    again = train(original.path / "config.yaml", runs_dir=runs_dir, repeat_of=original.path,
                  **callbacks)  # fmt: skip
    return original, again


def sameness(original: Run, again: Run) -> tuple[bool, list[str]]:
    """Whether a repeat logged exactly the original's metric rows, and the lines that say
    where not: the first differing row and where the environments differ."""
    if original.meta.environment is None:
        lines = [f"{original.path} records no environment (an older nnlab made it)"]
    else:
        lines = [
            f"environment {line}"
            for line in environment.differences(original.meta.environment, again.meta.environment)
            if not line.split(":")[0].endswith("threads") or line.startswith("threads")
        ]  # a pool's count follows from the run's threads, which are shown themselves
    same = original.metrics == again.metrics
    if not same:
        for i, (a, b) in enumerate(zip(original.metrics, again.metrics, strict=False)):
            if a != b:
                diff = ", ".join(f"{k} {a.get(k)} → {b.get(k)}" for k in a if a.get(k) != b.get(k))
                lines.insert(0, f"metric row {i + 1} (step {a.get('step')}) differs: {diff}")
                break
        else:
            lines.insert(0, f"{len(original.metrics)} metric rows before, {len(again.metrics)} now")
    return same, lines


def _figure_notes(said: list) -> list[str]:
    """What the figures could not draw (FigureNotes and a failure, as text); any other
    warning caught with them is shown as it would have been."""
    notes = []
    for item in said:
        if isinstance(item, str):
            notes.append(item)
        elif issubclass(item.category, FigureNote):
            notes.append(str(item.message))
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    return notes


def gradcheck(config: Any, overrides: Any = None, batch: int = 16) -> list:
    """``nnlab gradcheck``: an MLP config's hand-derived gradients against central finite
    differences, per parameter array (nnlab.models.mlp.gradcheck); ``config`` a path or a
    mapping, as for :func:`train`."""
    from nnlab.models.mlp import gradcheck as check  # NumPy: only when asked

    where = "this config" if isinstance(config, Mapping) else str(config)
    return check.gradcheck(load_config(config, overrides), where, batch=batch)
