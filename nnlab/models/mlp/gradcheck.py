"""Backpropagation against central finite differences, per parameter array (``nnlab
gradcheck``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnlab.config import load_config
from nnlab.errors import ConfigError
from nnlab.models.mlp.math import backprop, loss, one_hot
from nnlab.models.mlp.trainer import MLPTrainer

TOLERANCE = 1e-6  # a relative error above this fails the check


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


def gradcheck(config, overrides=None, batch: int = 16, h: float = 1e-6) -> list[GradCheck]:
    """Compare hand-derived gradients with finite differences of J = N * L, per array.

    Uses the config's network at its initial weights and ``batch`` training examples drawn
    with the config's seed. Only the MLP has hand-derived gradients to check.
    """
    cfg = load_config(config, overrides)
    if cfg["model"]["kind"] != "mlp":
        raise ConfigError(
            "gradcheck checks the NumPy MLP's hand-derived gradients; this config's "
            f"model.kind is {cfg['model']['kind']}"
        )
    trainer = MLPTrainer(cfg)
    data, m = trainer.data, trainer.model
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
