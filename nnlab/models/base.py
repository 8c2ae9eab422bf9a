"""The trainer interface every model kind implements (docs/models.md, 'Adding a model kind').

A *model kind* (``model.kind`` in a config) is declared by a :class:`Kind`: its name, the
config keys it reads, its policies (a one-line description, a memory estimate, a sweep
pre-check, a thread policy, cluster resources) and its :class:`Trainer`, which runs one
config. nnlab's commands only ever talk to these two, so a new kind needs no change to them:

- ``nnlab train`` resolves the config against the kind's schema, builds the trainer (which
  loads and checks the data, creating no files), then calls :meth:`Trainer.fit` with its
  :class:`~nnlab.models.training.callbacks.Hooks` (a callback, in the one vocabulary of
  :class:`~nnlab.models.training.callbacks.Callback`), :meth:`Trainer.save_model`,
  :meth:`Trainer.figures` and :meth:`Trainer.summary_extra`;
- every run is kept to its config's ``train.threads`` through :meth:`Kind.limit_threads`
  (and meta.json records :meth:`Trainer.environment`; nnlab.runfolder.environment);
- ``nnlab train --resume`` needs ``resumable = True`` and :meth:`Trainer.load_checkpoint`;
- both refuse a config whose :meth:`Kind.memory` is above the limit before building anything
  (:mod:`nnlab.models.bounds`);
- ``nnlab sweep`` calls :meth:`Kind.precheck` on every job's config before the first
  starts, :meth:`Kind.resources` for a cluster, and
  :meth:`Trainer.predictor` for the grid of decision boundaries of 2-D data;
- ``nnlab plot`` and ``nnlab report`` call :meth:`Trainer.load_model`, :meth:`Trainer.figures`
  and :meth:`Kind.describe`.

Install a kind from a package through the ``nnlab.kinds`` entry-point group
(``mykind = mypackage:KIND``): every nnlab process finds it, sweep workers included. In one
process (a notebook) :func:`nnlab.models.register` is enough for ``train``, ``plot`` and
``report``; a sweep's worker processes only know entry-point kinds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from nnlab.config.options import Option
    from nnlab.models.bounds import Need
    from nnlab.models.training.callbacks import Hooks


class Trainer(ABC):
    """One run of a model kind, built and validated from a resolved config.

    Subclasses set ``metric_columns`` when a run's metrics.csv has fixed columns (else the
    first row's keys are the columns) and ``resumable`` when they implement checkpoints.
    """

    metric_columns: ClassVar[list[str] | None] = None
    resumable: ClassVar[bool] = False

    @abstractmethod
    def __init__(self, cfg: dict[str, Any]):
        """Load the data and build the model; raise :class:`nnlab.errors.NnlabError` naming
        the key or file for bad input. Creates no files."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Number of trained parameters."""

    @abstractmethod
    def fit(self, run_dir: Path, hooks: Hooks) -> None:
        """Train, passing every metric row to ``hooks.row`` (or, with the hooks among the
        loop's callbacks, every event: ``on_row``, ``on_step_end``, ``on_progress``). Raise
        :class:`nnlab.errors.Diverged` on a non-finite loss; let KeyboardInterrupt and
        :class:`~nnlab.models.training.callbacks.StopRun` through (the caller records the
        status)."""

    @abstractmethod
    def save_model(self, run_dir: Path) -> None:
        """Write the trained parameters into the run folder (atomically)."""

    @abstractmethod
    def load_model(self, run_dir: Path) -> None:
        """Take the parameters a finished run saved (for figures after the fact)."""

    @abstractmethod
    def figures(
        self, rows: list[dict[str, float]], out_dir: Path, run_dir: Path, ext: str = "png"
    ) -> list[Path]:
        """Render the run's figures into ``out_dir``; return the files made."""

    def summary_extra(self) -> dict[str, Any]:
        """Kind-specific fields for summary.json."""
        return {}

    def environment(self) -> dict[str, Any]:
        """What this run computes on, for meta.json's ``environment`` (nnlab.runfolder.environment):
        ``device`` and ``precision`` at least."""
        return {"device": "cpu", "precision": "float64"}

    def chance_accuracy(self) -> float | None:
        """The accuracy of always answering the training split's most frequent class (what
        a run that learned nothing scores), or None when the kind cannot say."""
        return None

    def predictor(self) -> tuple[Callable[[np.ndarray], np.ndarray], Any] | None:
        """For 2-D inputs: (a function from points ``(n, 2)`` to class indices, the data set
        with X_train, y_train, X_test, y_test, class_names), for decision-boundary grids."""
        return None

    @classmethod
    def sweep_figures(
        cls, groups: list[tuple[str, list[Path]]], out: Path, ext: str, title: str
    ) -> list[Path]:
        """A kind's own figures of a sweep, beyond the curves, from the run folders of its
        finished jobs (``groups``: a label and the run folders of each group of jobs that
        differ only in their seed) into ``out``; none here."""
        return []

    def load_checkpoint(self, run_dir: Path) -> list[dict[str, float]]:
        """Resumable kinds: restore the last checkpoint; return the metric rows so far."""
        raise NotImplementedError(f"{type(self).__name__} does not resume")


@dataclass(frozen=True)
class Kind:
    """A model kind: its name, the config keys it reads beyond ``name``, ``seed`` and
    ``model.kind`` (dotted key -> :class:`nnlab.config.options.Option`, in the order config.yaml
    lists them), and its trainer — the class, or ``"module:Class"`` imported on first use so
    that validating a config never imports a heavy library."""

    name: str
    schema: Mapping[str, Option]
    trainer: type[Trainer] | str
    doc: str = ""
    _loaded: dict = field(default_factory=dict, compare=False, repr=False)

    def trainer_class(self) -> type[Trainer]:
        if isinstance(self.trainer, type):
            return self.trainer
        if "class" not in self._loaded:
            module, _, name = self.trainer.partition(":")
            self._loaded["class"] = getattr(import_module(module), name)
        return self._loaded["class"]

    # The kind's policies: what the commands ask of a kind without building a run. A kind
    # overrides them in a subclass; they must not import its trainer's heavy libraries
    # for nothing (a sweep's driver asks them of every job).

    def describe(self, cfg: dict[str, Any]) -> str:
        """One line naming the network, e.g. 'a NumPy MLP [2, 3, 2] with tanh hidden units'."""
        return f"a {self.name} model ({self.doc})" if self.doc else f"a {self.name} model"

    def check_config(self, cfg: dict[str, Any]) -> None:
        """Rules between keys of a resolved config that no single key states (e.g. early
        stopping needs a validation split); raise :class:`nnlab.errors.ConfigError`."""
        return None

    def memory(self, cfg: dict[str, Any], cache: dict[str, Any]) -> list[Need]:
        """What a run of this config needs in memory, estimated from the config (and at most
        the headers of its data files) before anything is allocated, each
        :class:`nnlab.models.bounds.Need` naming the config keys that set its size. ``nnlab train``
        and ``nnlab sweep`` refuse a config whose needs add up to more than the limit
        (docs/reliability.md, 'Resource bounds'). ``cache`` is shared by a sweep's jobs of this
        kind. The default, no needs, checks nothing."""
        return []

    def precheck(self, cfg: dict[str, Any], cache: dict[str, Any]) -> None:
        """Cheap checks of one sweep job's config before any job starts; raise NnlabError.
        ``cache`` is shared by the sweep's jobs of this kind (e.g. for data loaded once)."""
        return None

    @contextmanager
    def limit_threads(self, cfg: dict[str, Any], threads: int) -> Iterator[None]:
        """Keep a run to ``threads`` CPU threads (its config's ``train.threads``). BLAS and
        OpenMP pools are limited for every kind (nnlab.runfolder.environment.applied_threads);
        a kind with a thread pool of its own (PyTorch's intra-op threads) limits it here."""
        yield

    def resources(self, cfg: dict[str, Any]) -> dict[str, float]:
        """What one run asks a cluster for beyond CPUs: ``{"gpus": n}`` is honoured."""
        return {}

    def numeric_libraries(self) -> tuple[str, ...]:
        """The packages whose versions can change this kind's numbers (a run's fingerprint,
        nnlab.runfolder.fingerprint): NumPy and scikit-learn here."""
        return ("numpy", "scikit-learn")
