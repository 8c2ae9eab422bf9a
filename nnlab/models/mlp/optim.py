"""The MLP's update rules on the flat parameter vector θ and its gradient g (docs/math.md,
'MLP optimizers'), written as in-place NumPy operations on buffers allocated once.

``g`` is the gradient of the summed objective on the step's examples (docs/math.md, 'MLP
equations'); ``lr`` is the learning rate of the step (``train.epsilon`` under the schedule):

- gd, and sgd without momentum: ``θ ← θ - lr g``;
- sgd with momentum μ: ``v ← μ v + g``, then ``θ ← θ - lr v``, or with Nesterov
  ``θ ← θ - lr (g + μ v)``; ``v`` starts at 0 (so the first ``v`` is ``g``, as in
  ``torch.optim.SGD``);
- adam: ``m ← β1 m + (1 - β1) g``, ``v ← β2 v + (1 - β2) g²``, and at step t (from 1)
  ``θ ← θ - lr m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 - β1^t)``, ``v̂ = v / (1 - β2^t)`` — computed
  as ``θ ← θ - lr_t m / (√v + ε_t)``, ``lr_t = lr √(1 - β2^t) / (1 - β1^t)``,
  ``ε_t = ε √(1 - β2^t)`` (the same number, one pass over memory fewer).

Adam, the rule with the most passes over memory (twelve), has a second form with the same
bits: :meth:`Adam.fused`, one compiled pass (:mod:`.fused`, numba) that reads and writes each
parameter once. :meth:`Adam.ops` takes it for a run that makes at least ``FUSED_FROM``
parameter updates, where what it saves repays numba's start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Adam runs as one compiled pass (fused.py) in a run of at least this many parameter updates
# (parameters × planned steps). Measured on 2 cores of an AMD EPYC (Zen 4), 2026-12-06
# (bench/mlp_update.py): the pass saves 2.0 ns a parameter a step in float64 (203,530
# parameters: 579-583 → 180 µs) and 0.9-1.0 ns in float32 (241-260 → 60 µs), while numba
# costs each process 0.48-0.56 s to start (import and compilation; fused.py caches nothing):
# from 6e8 updates on, the pass has repaid that start in float32 and twice over in float64.
FUSED_FROM = 600_000_000


class Update:
    """An update rule: ``ops()`` is the list of (function, arguments) that applies it to θ
    given g; ``before_step()`` runs once per step before them. ``lr`` is a 0-d array the
    schedule writes into."""

    def __init__(self, theta: np.ndarray, grad: np.ndarray, epsilon: float):
        self.theta, self.grad = theta, grad
        self.lr = np.array(epsilon, dtype=theta.dtype)

    def ops(self, steps: int = 0) -> list[tuple]:
        """The operations of one step, in a run of ``steps`` steps."""
        return self.passes()

    def passes(self) -> list[tuple]:
        """The rule as in-place NumPy operations."""
        # g ← lr g, θ ← θ - g
        return [
            (np.multiply, self.grad, self.lr, self.grad),
            (np.subtract, self.theta, self.grad, self.theta),
        ]

    def before_step(self) -> None:
        return None


class Momentum(Update):
    def __init__(self, theta, grad, epsilon: float, momentum: float, nesterov: bool):
        super().__init__(theta, grad, epsilon)
        self.mu, self.nesterov = momentum, nesterov
        self.v = np.zeros_like(theta)

    def passes(self) -> list[tuple]:
        g, v, tmp, theta = self.grad, self.v, np.empty_like(self.theta), self.theta
        ops = [(np.multiply, v, self.mu, v), (np.add, v, g, v)]  # v ← μ v + g
        if self.nesterov:  # g ← g + μ v, θ ← θ - lr g
            ops += [(np.multiply, v, self.mu, tmp), (np.add, g, tmp, g)]
            ops += [(np.multiply, g, self.lr, g), (np.subtract, theta, g, theta)]
        else:  # θ ← θ - lr v
            ops += [(np.multiply, v, self.lr, tmp), (np.subtract, theta, tmp, theta)]
        return ops


class Adam(Update):
    def __init__(self, theta, grad, epsilon: float, beta1: float, beta2: float, eps: float):
        super().__init__(theta, grad, epsilon)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.lr_t = np.zeros((), dtype=theta.dtype)
        self.eps_t = np.zeros((), dtype=theta.dtype)

    def before_step(self) -> None:
        self.t += 1
        root = math.sqrt(1 - self.beta2**self.t)
        self.lr_t[...] = float(self.lr) * root / (1 - self.beta1**self.t)
        self.eps_t[...] = self.eps * root

    def ops(self, steps: int = 0) -> list[tuple]:
        """One compiled pass in a run of at least FUSED_FROM parameter updates."""
        return self.fused() if self.theta.size * steps >= FUSED_FROM else self.passes()

    def fused(self) -> list[tuple]:
        """The rule as one compiled pass, with the passes' bits (fused.py)."""
        from nnlab.models.mlp import fused

        b1, b2 = self.beta1, self.beta2
        # the constants as numbers of θ's dtype, as NumPy casts a Python float
        numbers = [self.theta.dtype.type(x) for x in (b1, 1 - b1, b2, 1 - b2)]
        rates = [self.lr_t.reshape(1), self.eps_t.reshape(1)]  # views: before_step writes them
        arrays = [self.theta, self.grad, self.m, self.v]
        # compiled (or loaded from numba's cache) now, not in the first step: on no elements
        fused.adam(*(a[:0] for a in arrays), *rates, *numbers)
        return [(fused.adam, *arrays, *rates, *numbers)]

    def passes(self) -> list[tuple]:
        g, m, v, tmp, theta = self.grad, self.m, self.v, np.empty_like(self.theta), self.theta
        b1, b2 = self.beta1, self.beta2
        return [
            (np.multiply, m, b1, m),  # m ← β1 m + (1 - β1) g
            (np.multiply, g, 1 - b1, tmp),
            (np.add, m, tmp, m),
            (np.multiply, v, b2, v),  # v ← β2 v + (1 - β2) g²
            (np.multiply, g, g, tmp),
            (np.multiply, tmp, 1 - b2, tmp),
            (np.add, v, tmp, v),
            (np.sqrt, v, tmp),  # θ ← θ - lr_t m / (√v + ε_t)
            (np.add, tmp, self.eps_t, tmp),
            (np.divide, m, tmp, tmp),
            (np.multiply, tmp, self.lr_t, tmp),
            (np.subtract, theta, tmp, theta),
        ]


def make_update(train_cfg: dict[str, Any], theta: np.ndarray, grad: np.ndarray) -> Update:
    """The update rule ``train.optimizer`` names, with its keys."""
    name, epsilon = train_cfg["optimizer"], train_cfg["epsilon"]
    if name == "adam":
        return Adam(
            theta, grad, epsilon, train_cfg["beta1"], train_cfg["beta2"], train_cfg["adam_eps"]
        )
    if name == "sgd" and train_cfg["momentum"] > 0:
        return Momentum(theta, grad, epsilon, train_cfg["momentum"], train_cfg["nesterov"])
    return Update(theta, grad, epsilon)
