"""nnlab: a command-line experiment runner for neural-network lab work.

    import nnlab
    run = nnlab.train("configs/moons_tanh.yaml", overrides={"model.activation": "relu"})
    run.path, run.status, run.summary["final"]["train_loss"], run.metrics
    nnlab.load_run(run.path)

The heavy modules (NumPy, scikit-learn, matplotlib) load on first use, so that importing nnlab,
and ``nnlab --help``, stay fast.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": "nnlab.experiment",
    "gradcheck": "nnlab.models.mlp.gradcheck",
    "RunInterrupted": "nnlab.experiment",
    "load_run": "nnlab.runfolder.runs",
    "sweep": "nnlab.sweeps",
    "Sweep": "nnlab.sweeps",
    "SweepInterrupted": "nnlab.sweeps",
    "Run": "nnlab.runfolder.runs",
    "load_config": "nnlab.config.options",
    "StopRun": "nnlab.models",
    "register": "nnlab.models",
    "Kind": "nnlab.models",
    "Trainer": "nnlab.models",
    "Hooks": "nnlab.models",
    "NnlabError": "nnlab.errors",
    "ConfigError": "nnlab.errors",
    "DataError": "nnlab.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nnlab' has no attribute {name!r}")
