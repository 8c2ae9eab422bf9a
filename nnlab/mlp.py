"""The NumPy multilayer perceptron, with backpropagation derived by hand.

Notation follows DESIGN.md: for layer l = 1..L, ``z_l = a_{l-1} W_l + b_l`` and ``a_l = f(z_l)``,
softmax on the last layer; ``a_0 = X``. Shapes: ``X (N, n_0)``, ``W_l (n_{l-1}, n_l)``,
``b_l (n_l,)``. Gradients are those of the *summed* objective

    J = N * L = -sum_i log yhat_{i, y_i} + (reg_lambda / 2) * sum_l ||W_l||^2

(summed over examples, biases not penalised — the classic course convention), so the update is
``W -= epsilon * dW``. Everything is float64.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.errors import Diverged


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-z) overflows to inf for z < -709; 1 / (1 + inf) = 0 is the right limit.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


# Each activation: f(z), and f'(z) written in terms of a = f(z) (what backprop has saved).
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (_sigmoid, lambda a: a * (1.0 - a)),
    "tanh": (np.tanh, lambda a: 1.0 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype)),
}


def init_params(
    layers: list[int], init: str, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights drawn layer by layer from ``RandomState(seed)``, biases zero.

    classic: ``randn(fan_in, fan_out) / sqrt(fan_in)``; xavier: Glorot normal,
    ``randn * sqrt(2 / (fan_in + fan_out))``; he: ``randn * sqrt(2 / fan_in)``.
    """
    rng = np.random.RandomState(seed)
    W, b = [], []
    for fan_in, fan_out in zip(layers[:-1], layers[1:], strict=True):
        draw = rng.randn(fan_in, fan_out)
        if init == "classic":
            W.append(draw / np.sqrt(fan_in))  # divided, not scaled: bit-equal to the course code
        elif init == "xavier":
            W.append(draw * np.sqrt(2.0 / (fan_in + fan_out)))
        elif init == "he":
            W.append(draw * np.sqrt(2.0 / fan_in))
        else:
            raise ValueError(f"unknown init {init!r}")
        b.append(np.zeros(fan_out))
    return W, b


def forward(
    W: list[np.ndarray], b: list[np.ndarray], X: np.ndarray, activation: str
) -> tuple[list[np.ndarray], np.ndarray]:
    """Activations ``[a_0 = X, a_1, ..., a_{L-1}]`` of the input and hidden layers, and the
    output logits ``z_L`` of shape ``(N, n_L)``."""
    f = ACTIVATIONS[activation][0]
    a = [X]
    for W_l, b_l in zip(W[:-1], b[:-1], strict=True):
        a.append(f(a[-1] @ W_l + b_l))
    return a, a[-1] @ W[-1] + b[-1]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax: finite even where a probability underflows to 0."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _objective(z: np.ndarray, y: np.ndarray, W: list[np.ndarray], reg_lambda: float) -> float:
    """L from the output logits z: mean cross-entropy plus (reg_lambda / 2N) sum ||W_l||^2."""
    nll = -log_softmax(z)[np.arange(len(y)), y].sum()
    penalty = 0.5 * reg_lambda * sum(float(np.sum(W_l * W_l)) for W_l in W)
    return float((nll + penalty) / len(y))


def loss(
    W: list[np.ndarray],
    b: list[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    reg_lambda: float,
) -> float:
    """``L = (1/N) [ -sum_i log yhat_{i,y_i} + (reg_lambda/2) sum_l ||W_l||^2 ]``."""
    return _objective(forward(W, b, X, activation)[1], y, W, reg_lambda)


def backprop(
    W: list[np.ndarray],
    b: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    activation: str,
    reg_lambda: float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gradients ``dW, db`` of the summed objective J = N * L for one-hot targets ``Y (N, n_L)``.

    ``delta_L = yhat - Y``; ``dW_l = a_{l-1}^T delta_l + reg_lambda W_l``;
    ``db_l = sum_i delta_l``; ``delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1})``.
    """
    dfa = ACTIVATIONS[activation][1]
    a, z = forward(W, b, X, activation)
    delta = softmax(z) - Y
    dW: list[np.ndarray] = [None] * len(W)  # type: ignore[list-item]
    db: list[np.ndarray] = [None] * len(W)  # type: ignore[list-item]
    for l in reversed(range(len(W))):  # noqa: E741 - the equations' index
        dW[l] = a[l].T @ delta + reg_lambda * W[l]
        db[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ W[l].T) * dfa(a[l])
    return dW, db


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


@dataclass
class MLP:
    """A trained or training network: its shape, activation and parameters."""

    layers: list[int]
    activation: str
    W: list[np.ndarray] = field(repr=False)
    b: list[np.ndarray] = field(repr=False)

    @classmethod
    def create(cls, layers: list[int], activation: str, init: str, seed: int) -> MLP:
        W, b = init_params(layers, init, seed)
        return cls(list(layers), activation, W, b)

    @property
    def n_params(self) -> int:
        return sum(W_l.size + b_l.size for W_l, b_l in zip(self.W, self.b, strict=True))

    def logits(self, X: np.ndarray) -> np.ndarray:
        # a diverged network's weights may be inf: its (meaningless) output must not warn
        with np.errstate(over="ignore", invalid="ignore"):
            return forward(self.W, self.b, X, self.activation)[1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self.logits(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(X), axis=1)

    def state(self) -> dict[str, np.ndarray]:
        """Parameters by name (W1, b1, W2, ...), as saved in model.npz."""
        out = {}
        for i, (W_l, b_l) in enumerate(zip(self.W, self.b, strict=True), start=1):
            out[f"W{i}"], out[f"b{i}"] = W_l, b_l
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], activation: str) -> MLP:
        n = len([k for k in state if k.startswith("W")])
        W = [np.asarray(state[f"W{i}"], dtype=np.float64) for i in range(1, n + 1)]
        b = [np.asarray(state[f"b{i}"], dtype=np.float64) for i in range(1, n + 1)]
        layers = [W[0].shape[0]] + [W_l.shape[1] for W_l in W]
        return cls(layers, activation, W, b)


def evaluate(model: MLP, X: np.ndarray, y: np.ndarray, reg_lambda: float) -> tuple[float, float]:
    """(loss L as in DESIGN.md, accuracy as a fraction) of the model on (X, y)."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = model.logits(X)
        value = _objective(z, y, model.W, reg_lambda)
    return value, float(np.mean(np.argmax(z, axis=1) == y))


class Engine:
    """Full-batch gradient descent on one training set, as fast as NumPy allows.

    The same float64 operations as :func:`backprop`, in the same order — every BLAS call and
    every reduction sees the same operands in the same memory layout — so the engine's
    parameters equal the plain equations' bit for bit (some classic runs are chaotic: a
    last-bit difference grows to the third decimal within a thousand steps). The speed comes
    from what leaves the arithmetic alone:

    - every buffer is allocated once and every operation writes in place; the one-hot
      targets are built once;
    - all parameters live in one flat array (``model.W`` and ``model.b`` become views of it),
      and so do their gradients, so the L2 term and the update are two operations each, not
      four per layer;
    - a step is a precompiled list of NumPy calls on those buffers, so a step at [2, 3, 2]
      costs little more than the ~25 calls themselves;
    - the softmax's max and sum over two classes are element-wise operations between two
      columns; activation derivatives come from the saved activations;
    - no loss is computed in a step: the trainer evaluates it on logged steps only.
    """

    def __init__(self, model: MLP, X: np.ndarray, y: np.ndarray, epsilon: float, reg_lambda: float):
        n, sizes = X.shape[0], model.layers
        shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        n_weights = sum(a * b for a, b in shapes)
        self.theta = np.empty(model.n_params)  # [W1, W2, ..., b1, b2, ...]
        self.grad = np.empty_like(self.theta)
        W, b = self._views(self.theta, shapes), self._views(self.theta[n_weights:], sizes[1:])
        dW, db = self._views(self.grad, shapes), self._views(self.grad[n_weights:], sizes[1:])
        for dst, src in zip(W + b, model.W + model.b, strict=True):
            dst[...] = src
        model.W, model.b = W, b  # the model now trains in place, in the flat array
        self.weights, self.dweights = self.theta[:n_weights], self.grad[:n_weights]
        self.tmp = np.empty(n_weights)
        X = np.ascontiguousarray(X)
        Y = one_hot(y, sizes[-1])
        A = [np.empty((n, k)) for k in sizes[1:]]  # activations; the last: softmax, delta
        D = [np.empty((n, k)) for k in sizes[1:-1]]  # hidden deltas
        G = [np.empty((n, k)) for k in sizes[1:-1]]  # f'(z), from the activations
        mask = [np.empty((n, k), dtype=bool) for k in sizes[1:-1]]
        col = np.empty((n, 1))
        last = len(W) - 1
        plan: list[tuple] = []
        prev = X
        for l in range(last + 1):  # noqa: E741 - forward: z = a W + b, a = f(z)
            plan += [(np.matmul, prev, W[l], A[l]), (np.add, A[l], b[l], A[l])]
            if l < last:
                plan += self._activation(model.activation, A[l])
            prev = A[l]
        Z = A[last]  # softmax over the classes, shifted by the row maximum, minus the targets
        if sizes[-1] == 2:  # max and sum of two columns, element-wise: the same bits
            plan += [
                (np.maximum, Z[:, :1], Z[:, 1:], {"out": col}),
                (np.subtract, Z, col, Z),
                (np.exp, Z, Z),
                (np.add, Z[:, :1], Z[:, 1:], col),
            ]
        else:
            plan += [
                (_reduce(np.maximum), Z, col),
                (np.subtract, Z, col, Z),
                (np.exp, Z, Z),
                (_reduce(np.add), Z, col),
            ]
        plan += [(np.divide, Z, col, Z), (np.subtract, Z, Y, Z)]
        delta = Z
        for l in range(last, -1, -1):  # noqa: E741 - backward
            below = A[l - 1] if l > 0 else X
            plan += [(np.matmul, below.T, delta, dW[l]), (np.add.reduce, delta, 0, None, db[l])]
            if l > 0:
                plan += [(np.matmul, delta, W[l].T, D[l - 1])]
                plan += self._derivative(model.activation, A[l - 1], G[l - 1], mask[l - 1])
                plan += [
                    (
                        np.multiply,
                        D[l - 1],
                        G[l - 1] if model.activation != "relu" else mask[l - 1],
                        D[l - 1],
                    )
                ]
                delta = D[l - 1]
        # dW += reg_lambda W for every layer at once
        plan += [
            (np.multiply, reg_lambda, self.weights, self.tmp),
            (np.add, self.dweights, self.tmp, self.dweights),
        ]
        # the divergence check, then the update theta -= epsilon * grad
        self.check = np.empty(())
        plan += [
            (np.add.reduce, self.grad, 0, None, self.check),
            (np.multiply, self.grad, epsilon, self.grad),
            (np.subtract, self.theta, self.grad, self.theta),
        ]
        # (op, positional arguments, keywords): np.maximum takes its output by keyword only
        self.plan = [
            (
                op,
                tuple(a for a in args if not isinstance(a, dict)),
                next((a for a in args if isinstance(a, dict)), {}),
            )
            for op, *args in plan
        ]

    @staticmethod
    def _views(flat: np.ndarray, shapes: list) -> list[np.ndarray]:
        out, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(flat[start : start + size].reshape(shape))
            start += size
        return out

    @staticmethod
    def _activation(name: str, A: np.ndarray) -> list[tuple]:
        if name == "tanh":
            return [(np.tanh, A, A)]
        if name == "relu":
            return [(np.maximum, A, 0.0, {"out": A})]
        # sigmoid, in place and in _sigmoid's order: 1 / (1 + exp(-z))
        return [(np.negative, A, A), (np.exp, A, A), (np.add, A, 1.0, A), (np.divide, 1.0, A, A)]

    @staticmethod
    def _derivative(name: str, A: np.ndarray, G: np.ndarray, mask: np.ndarray) -> list[tuple]:
        if name == "tanh":  # 1 - a²
            return [(np.multiply, A, A, G), (np.subtract, 1.0, G, G)]
        if name == "relu":  # a > 0
            return [(np.greater, A, 0.0, mask)]
        return [(np.subtract, 1.0, A, G), (np.multiply, A, G, G)]  # a (1 - a)

    def step(self) -> float:
        """One gradient-descent step; returns the sum of the gradient, which is non-finite as
        soon as anything in the step was."""
        for op, args, kwargs in self.plan:
            op(*args, **kwargs)
        return float(self.check)


# Below this many hidden activations (n_samples × widest layer) a step's matrix products are
# too small for a second BLAS thread to pay (bench/mlp_scaling.py: it starts to help near
# 2,000 × 256), so they run on one; above, BLAS keeps the threads it was given (all cores, or
# one per worker in a sweep).
BLAS_THREADS_FROM = 500_000


def _blas_threads(elements: int):
    if elements >= BLAS_THREADS_FROM:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _reduce(ufunc) -> Callable:
    """``ufunc.reduce`` over the class axis, keeping it: ``f(Z, out)``."""
    return lambda Z, out: ufunc.reduce(Z, axis=1, keepdims=True, out=out)


def fit(
    model: MLP,
    data: Any,
    train_cfg: dict[str, Any],
    on_row: Callable[[dict[str, float]], None],
    on_tick: Callable[[int], None] | None = None,
) -> None:
    """Full-batch gradient descent on ``data.X_train``, updating ``model`` in place.

    A metric row is passed to ``on_row`` when ``step % log_every == 0`` and after the last
    step, computed *after* that step's update (the classic course semantics). ``on_tick(n)``
    reports that n steps are done, about a hundred times a run. Raises :class:`Diverged`.
    """
    X, y = data.X_train, data.y_train
    lam = train_cfg["reg_lambda"]
    iterations, log_every = train_cfg["iterations"], train_cfg["log_every"]
    engine = Engine(model, X, y, train_cfg["epsilon"], lam)
    tick = max(1, iterations // 100)
    with (
        _blas_threads(X.shape[0] * max(model.layers)),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        for step in range(iterations):
            if not math.isfinite(engine.step()):
                raise Diverged(step, "the gradient")
            if step % log_every == 0 or step == iterations - 1:
                row = {"step": step}
                row["train_loss"], row["train_acc"] = evaluate(model, X, y, lam)
                if data.X_test is not None:
                    row["test_loss"], row["test_acc"] = evaluate(
                        model, data.X_test, data.y_test, lam
                    )
                if not all(math.isfinite(v) for v in row.values()):
                    raise Diverged(step, "the loss")
                on_row(row)
            if on_tick is not None and ((step + 1) % tick == 0 or step == iterations - 1):
                on_tick(step + 1)
