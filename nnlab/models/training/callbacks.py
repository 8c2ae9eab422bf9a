"""The one vocabulary of what happens while a trainer fits: :class:`Callback`.

Everything that watches or acts on a training loop is a callback — the caller's
:class:`Hooks` (metrics.csv, the progress bar, a sweep's pruning), early stopping
(:mod:`nnlab.models.training.early_stopping`), and the DCN's checkpoints, TensorBoard and
layer statistics (:mod:`nnlab.models.dcn.callbacks`). A loop holds them in one
:class:`Callbacks` and calls its events; it never calls them one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nnlab.common.status import RunStatus


class StopRun(Exception):
    """Raised by a callback to end a run early and on purpose: the run is not failed, it ends
    with ``status`` and the ``reason`` goes to meta.json with the step it stopped at."""

    STATUSES = (RunStatus.COMPLETED, RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.PRUNED)

    def __init__(self, reason: str, status: str = RunStatus.COMPLETED):
        if status not in self.STATUSES:
            raise ValueError(f"StopRun status must be one of {', '.join(self.STATUSES)}")
        super().__init__(reason)
        self.reason, self.status = reason, RunStatus(status)


class Callback:
    """What a training loop tells the things that watch it; every event does nothing here,
    and a subclass overrides the ones it needs.

    The extension contract — what a loop promises, and what a callback may do:

    - :meth:`on_train_start` once per :meth:`~nnlab.models.base.Trainer.fit`, before its first
      step (a resumed run's session included), and :meth:`on_train_end` once after its last,
      however the loop ended (a :class:`StopRun`, an error, Ctrl-C): release what the callback
      holds there, and finish what it started (a file written by a thread).
    - :meth:`on_step_start` before an optimizer step's forward pass and :meth:`on_step_end`
      after the update (and after the step's row, when it has one); ``step`` is the step's
      number in the run's metric rows (the MLP's full-batch steps count from 0, every other
      loop's from 1).
    - :meth:`on_row` with every metric row, final (``step`` at least, and what metrics.csv
      gets), before the step's :meth:`on_step_end`. Every event reaches the callbacks in
      the order the loop lists them: one that must see a row even when another ends the run
      there comes before it.
    - :meth:`on_epoch_end` after each epoch (``epoch`` epochs done; one full-batch step is
      one epoch), after the epoch's last row: a resumed run goes on from there.
    - :meth:`on_progress` as work is done: ``done`` of ``total`` (in ``unit``, e.g. ``img``),
      ``desc`` naming the part (``epoch 2/5``), or None.

    A callback may raise :class:`StopRun` from any event but :meth:`on_train_end` to end the
    run on purpose; the loop lets it through, then :meth:`on_train_end` runs. It must not
    change what the loop computes — the weights, the random numbers it draws, the rows —
    but at :meth:`on_train_end`, where early stopping puts the best weights back.
    """

    def on_train_start(self) -> None:
        """Before the first step of this fit."""

    def on_step_start(self, step: int) -> None:
        """Before the step's forward pass."""

    def on_step_end(self, step: int) -> None:
        """After the step's optimizer update."""

    def on_row(self, row: dict[str, float]) -> None:
        """A metric row, final."""

    def on_epoch_end(self, epoch: int) -> None:
        """After ``epoch`` epochs."""

    def on_progress(self, done: int, total: int, desc: str | None = None, unit: str = "it") -> None:
        """``done`` of ``total`` units of work."""

    def on_train_end(self) -> None:
        """After the last step, however the loop ended."""


class Callbacks(Callback):
    """The callbacks of one loop, each event passed to every one of them in order."""

    def __init__(self, callbacks: Iterable[Callback | None]):
        self.callbacks = [cb for cb in callbacks if cb is not None]

    def on_train_start(self) -> None:
        for cb in self.callbacks:
            cb.on_train_start()

    def on_step_start(self, step: int) -> None:
        for cb in self.callbacks:
            cb.on_step_start(step)

    def on_step_end(self, step: int) -> None:
        for cb in self.callbacks:
            cb.on_step_end(step)

    def on_row(self, row: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_row(row)

    def on_epoch_end(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch)

    def on_progress(self, done: int, total: int, desc: str | None = None, unit: str = "it") -> None:
        for cb in self.callbacks:
            cb.on_progress(done, total, desc, unit)

    def on_train_end(self) -> None:
        for cb in self.callbacks:
            cb.on_train_end()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


@dataclass
class Hooks(Callback):
    """The caller's callback, given to :meth:`~nnlab.models.base.Trainer.fit`, made of plain
    functions: ``row(row)`` with every metric row (the caller writes it to metrics.csv),
    ``step(step)`` after every optimizer step, ``progress(done, total, desc=None,
    unit="it")`` as work is done; any of them may raise :class:`StopRun`.

    A trainer with callbacks of its own lists the hooks among them; one without (a
    kind's simple loop) may call ``hooks.row``, ``hooks.step`` and ``hooks.progress``
    directly — the same events.
    """

    row: Callable[[dict[str, float]], None] = _ignore
    step: Callable[[int], None] = _ignore
    progress: Callable[..., None] = _ignore

    def on_row(self, row: dict[str, float]) -> None:
        self.row(row)

    def on_step_end(self, step: int) -> None:
        self.step(step)

    def on_progress(self, done: int, total: int, desc: str | None = None, unit: str = "it") -> None:
        self.progress(done, total, desc=desc, unit=unit)
