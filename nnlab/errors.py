"""Exceptions that carry a message meant for the user, and how a signal becomes one.

Anything raised as an :class:`NnlabError` is reported by the CLI as one line,
``nnlab: error: <message>``, with its exit status — never as a traceback (docs/run-folder.md,
'Exit codes').
"""

from typing import Any


class NnlabError(Exception):
    """A problem with the user's input (config, overrides, data, folders)."""

    exit_code = 2


class RunStorageError(NnlabError):
    """A run's folder could not be written to the end (disk full, folder removed)."""

    exit_code = 1


class ConfigError(NnlabError):
    """The experiment config is missing, malformed or invalid."""


class DataError(NnlabError):
    """The data set cannot be loaded or does not fit the model."""


class FigureNote(UserWarning):
    """What a figure could not draw, in one line (values too extreme for an axis); the CLI
    prints it as ``nnlab: warning: ...`` and a run records it in meta.json's warnings."""


class Diverged(Exception):
    """Training produced a non-finite loss or gradient; ``step`` is where it was seen.

    Not an NnlabError: a diverged run is a result (status ``diverged``, exit 1), not bad input.
    """

    def __init__(self, step: int, what: str):
        super().__init__(
            f"training diverged at step {step}: {what} is not finite (try a smaller train.epsilon)"
        )
        self.step = step


def raise_interrupt(signum: int, frame: Any) -> None:
    """A signal handler that turns SIGTERM into Ctrl-C, so a run ends ``interrupted``."""
    raise KeyboardInterrupt
