"""Backpropagation against central finite differences, per parameter array (``nnlab
gradcheck``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    checked: int  # entries compared (all of them, or a seeded sample of a large array)


def numeric_gradient(
    f: Callable[[], float], x: np.ndarray, h: float = 1e-6, entries: list | None = None
) -> np.ndarray:
    """Central differences of ``f()`` with respect to every entry of ``x`` (perturbed in
    place), or to the ``entries`` given (index tuples; the others stay 0)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape) if entries is None else entries:
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def sample_entries(shape: tuple[int, ...], most: int, rng: np.random.RandomState) -> list | None:
    """Up to ``most`` distinct entries of an array of ``shape``, drawn with ``rng``; None (every
    entry) when the array has no more than that."""
    size = int(np.prod(shape))
    if size <= most:
        return None
    flat = rng.choice(size, size=most, replace=False)
    return [tuple(int(v) for v in np.unravel_index(i, shape)) for i in sorted(flat)]


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)``, 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


MAX_ENTRIES = 200  # per array: larger arrays are checked on a seeded sample of entries


def _check_hand_derived(cfg: dict, source: str) -> None:
    """Refuse a kind whose gradients nnlab does not derive by hand: the DCN's come from
    PyTorch's autograd, and finite differences across its ReLU and max-pool kinks stray
    from them (by ~1e-3 along random directions, on correct code): a false failure."""
    kind = cfg["model"]["kind"]
    if kind != "mlp":
        raise ConfigError(
            f"{source}: model.kind is {kind}, but gradcheck checks the hand-derived backprop "
            f"of the NumPy MLP (model.kind mlp); {kind}'s gradients come from autograd, with "
            "nothing derived by hand to check"
        )


def gradcheck(
    cfg: dict[str, Any],
    where: str = "this config",
    batch: int = 16,
    h: float = 1e-6,
    most: int = MAX_ENTRIES,
) -> list[GradCheck]:
    """Compare hand-derived gradients with finite differences of J = N * L, per array.

    ``cfg`` is a resolved config (``where`` names it in errors). Uses the config's network at
    its initial weights, in float64 whatever ``train.dtype`` says, and ``batch`` training
    examples drawn with the config's seed; an array of more than ``most`` entries is compared
    on ``most`` of them, drawn with the seed. Only the MLP has hand-derived gradients to
    check.
    """
    _check_hand_derived(cfg, where)
    trainer = MLPTrainer(cfg)
    data, m = trainer.data, trainer.model
    rng = np.random.RandomState(cfg["seed"])
    idx = rng.choice(len(data.y_train), size=min(batch, len(data.y_train)), replace=False)
    X, y = data.X_train[idx].astype(np.float64), data.y_train[idx]
    lam = cfg["train"]["reg_lambda"]
    dW, db = backprop(m.W, m.b, X, one_hot(y, m.layers[-1]), m.activation, lam)

    def objective() -> float:
        return len(y) * loss(m.W, m.b, X, y, m.activation, lam)

    results = []
    for i in range(len(m.W)):
        for name, param, grad in ((f"W{i + 1}", m.W[i], dW[i]), (f"b{i + 1}", m.b[i], db[i])):
            entries = sample_entries(param.shape, most, rng)
            numeric = numeric_gradient(objective, param, h, entries)
            if entries is not None:  # compare the sampled entries only
                picked = tuple(np.array(entries).T)
                grad, numeric = grad[picked], numeric[picked]
            checked = param.size if entries is None else len(entries)
            results.append(GradCheck(name, param.shape, relative_error(grad, numeric), checked))
    return results
