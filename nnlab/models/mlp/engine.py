"""The fast engine behind the MLP trainer: full-batch gradient descent as a precompiled plan.

It performs the float64 operations of :func:`nnlab.models.mlp.math.backprop` and the update,
in the same order — every BLAS call and every reduction sees the same operands in the same
memory layout — so its parameters equal the plain equations' bit for bit (some classic runs
are chaotic: a last-bit difference grows to the third decimal within a thousand steps). The
speed comes from what leaves the arithmetic alone:

- every buffer is allocated once and every operation writes in place; the one-hot targets
  are built once;
- all parameters live in one flat array (``model.W`` and ``model.b`` become views of it), and
  so do their gradients, so the L2 term and the update are two operations each, not four per
  layer;
- a step is a precompiled list of NumPy calls on those buffers, so a step at [2, 3, 2] costs
  little more than the ~25 calls themselves;
- the softmax's max and sum over two classes are element-wise operations between two columns;
  activation derivatives come from the saved activations;
- no loss is computed in a step: the trainer evaluates it on logged steps only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from nnlab.models.mlp.math import MLP, one_hot

# Below this many hidden activations (n_samples × widest layer) a step's matrix products are
# too small for a second BLAS thread to pay (bench/mlp_scaling.py: it starts to help near
# 2,000 × 256), so they run on one; above, BLAS keeps the threads it was given (all cores, or
# one per worker in a sweep).
BLAS_THREADS_FROM = 500_000


def blas_threads(elements: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for a network of fewer than BLAS_THREADS_FROM hidden activations."""
    if elements >= BLAS_THREADS_FROM:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _reduce(ufunc) -> Callable:
    """``ufunc.reduce`` over the class axis, keeping it: ``f(Z, out)``."""
    return lambda Z, out: ufunc.reduce(Z, axis=1, keepdims=True, out=out)


def _views(flat: np.ndarray, shapes: list) -> list[np.ndarray]:
    """Consecutive arrays of the given shapes, as views of one flat array."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _activation(name: str, A: np.ndarray) -> list[tuple]:
    """a = f(z), in place in A."""
    if name == "tanh":
        return [(np.tanh, A, A)]
    if name == "relu":
        return [(np.maximum, A, 0.0, {"out": A})]
    # sigmoid, in place and in the equations' order: 1 / (1 + exp(-z))
    return [(np.negative, A, A), (np.exp, A, A), (np.add, A, 1.0, A), (np.divide, 1.0, A, A)]


def _derivative(name: str, A: np.ndarray, G: np.ndarray, mask: np.ndarray) -> list[tuple]:
    """f'(z) from the saved activations a, into G (or, for relu, into the mask)."""
    if name == "tanh":  # 1 - a²
        return [(np.multiply, A, A, G), (np.subtract, 1.0, G, G)]
    if name == "relu":  # a > 0
        return [(np.greater, A, 0.0, mask)]
    return [(np.subtract, 1.0, A, G), (np.multiply, A, G, G)]  # a (1 - a)


def _softmax_minus_targets(Z: np.ndarray, Y: np.ndarray, col: np.ndarray) -> list[tuple]:
    """delta_L = softmax(z_L) - Y in place in Z, shifted by the row maximum."""
    if Z.shape[1] == 2:  # max and sum of two columns, element-wise: the same bits
        plan = [
            (np.maximum, Z[:, :1], Z[:, 1:], {"out": col}),
            (np.subtract, Z, col, Z),
            (np.exp, Z, Z),
            (np.add, Z[:, :1], Z[:, 1:], col),
        ]
    else:
        plan = [
            (_reduce(np.maximum), Z, col),
            (np.subtract, Z, col, Z),
            (np.exp, Z, Z),
            (_reduce(np.add), Z, col),
        ]
    return [*plan, (np.divide, Z, col, Z), (np.subtract, Z, Y, Z)]


class Engine:
    """Full-batch gradient descent on one training set, as fast as NumPy allows."""

    def __init__(self, model: MLP, X: np.ndarray, y: np.ndarray, epsilon: float, reg_lambda: float):
        n, sizes = X.shape[0], model.layers
        shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
        n_weights = sum(a * b for a, b in shapes)
        self.theta = np.empty(model.n_params)  # [W1, W2, ..., b1, b2, ...]
        self.grad = np.empty_like(self.theta)
        W, b = _views(self.theta, shapes), _views(self.theta[n_weights:], sizes[1:])
        dW, db = _views(self.grad, shapes), _views(self.grad[n_weights:], sizes[1:])
        for dst, src in zip(W + b, model.W + model.b, strict=True):
            dst[...] = src
        model.W, model.b = W, b  # the model now trains in place, in the flat array
        self.weights, self.dweights = self.theta[:n_weights], self.grad[:n_weights]
        self.tmp = np.empty(n_weights)
        self.check = np.empty(())
        X = np.ascontiguousarray(X)
        A = [np.empty((n, k)) for k in sizes[1:]]  # activations; the last: softmax, delta
        plan = self._forward(model.activation, X, W, b, A)
        plan += _softmax_minus_targets(A[-1], one_hot(y, sizes[-1]), np.empty((n, 1)))
        plan += self._backward(model.activation, X, W, A, dW, db)
        plan += self._regularise_and_update(reg_lambda, epsilon)
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
    def _forward(activation: str, X: np.ndarray, W: list, b: list, A: list) -> list[tuple]:
        """z_l = a_{l-1} W_l + b_l, a_l = f(z_l) on hidden layers; A[-1] ends as z_L."""
        plan: list[tuple] = []
        prev = X
        for l in range(len(W)):  # noqa: E741 - the equations' index
            plan += [(np.matmul, prev, W[l], A[l]), (np.add, A[l], b[l], A[l])]
            if l < len(W) - 1:
                plan += _activation(activation, A[l])
            prev = A[l]
        return plan

    @staticmethod
    def _backward(
        activation: str, X: np.ndarray, W: list, A: list, dW: list, db: list
    ) -> list[tuple]:
        """dW_l = a_{l-1}^T delta_l, db_l = sum_i delta_l,
        delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1}), from the last layer down."""
        n = X.shape[0]
        D = [np.empty((n, a.shape[1])) for a in A[:-1]]  # hidden deltas
        G = [np.empty_like(d) for d in D]  # f'(z), from the activations
        mask = [np.empty(d.shape, dtype=bool) for d in D]
        plan: list[tuple] = []
        delta = A[-1]
        for l in range(len(W) - 1, -1, -1):  # noqa: E741 - the equations' index
            below = A[l - 1] if l > 0 else X
            plan += [(np.matmul, below.T, delta, dW[l]), (np.add.reduce, delta, 0, None, db[l])]
            if l > 0:
                plan += [(np.matmul, delta, W[l].T, D[l - 1])]
                plan += _derivative(activation, A[l - 1], G[l - 1], mask[l - 1])
                factor = mask[l - 1] if activation == "relu" else G[l - 1]
                plan += [(np.multiply, D[l - 1], factor, D[l - 1])]
                delta = D[l - 1]
        return plan

    def _regularise_and_update(self, reg_lambda: float, epsilon: float) -> list[tuple]:
        """dW += reg_lambda W for every layer at once; the divergence check (the sum of the
        gradient); then theta -= epsilon * grad."""
        return [
            (np.multiply, reg_lambda, self.weights, self.tmp),
            (np.add, self.dweights, self.tmp, self.dweights),
            (np.add.reduce, self.grad, 0, None, self.check),
            (np.multiply, self.grad, epsilon, self.grad),
            (np.subtract, self.theta, self.grad, self.theta),
        ]

    def step(self) -> float:
        """One gradient-descent step; returns the sum of the gradient, which is non-finite as
        soon as anything in the step was."""
        for op, args, kwargs in self.plan:
            op(*args, **kwargs)
        return float(self.check)
