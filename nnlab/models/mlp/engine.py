"""The fast engine behind the MLP trainer: a gradient step as a precompiled plan, on the whole
training set (gd) or on mini-batches (sgd, adam; docs/math.md, 'MLP optimizers').

It performs the operations of :func:`nnlab.models.mlp.math.backprop` and the update, in the
same order — every BLAS call and every reduction sees the same operands in the same
memory layout — so its parameters equal the plain equations' bit for bit (some classic runs
are chaotic: a last-bit difference grows to the third decimal within a thousand steps). The
speed comes from what leaves the arithmetic alone:

- every buffer is allocated once (per batch shape: a full batch and the last, smaller one)
  and every operation writes in place; the one-hot targets are built once, and a mini-batch
  is gathered into its buffers with ``np.take``;
- all parameters live in one flat array (``model.W`` and ``model.b`` become views of it), and
  so do their gradients, so the L2 term and the update are two operations each, not four per
  layer;
- a step is a precompiled list of NumPy calls on those buffers, so a step at [2, 3, 2] costs
  little more than the ~25 calls themselves;
- the softmax's max and sum over two classes are element-wise operations between two columns;
  activation derivatives come from the saved activations;
- in a long run Adam's update is one compiled pass over the flat parameters instead of
  NumPy's twelve element-wise passes (:mod:`~nnlab.models.mlp.optim`, ``FUSED_FROM``);
- no loss is computed in a gd step: the trainer evaluates it on logged steps only; mini-batch
  steps add their batch's cross-entropy and correct predictions to running sums from the
  logits they have anyway (the log-sum-exp of the softmax).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from nnlab.models.mlp.math import MLP, one_hot
from nnlab.models.mlp.optim import make_update

# Below this many multiply-adds in a step's forward products (rows × sum of n_{l-1} n_l, where
# rows are the batch) the products are too small for a second BLAS thread to pay, so they run on
# one; above, BLAS keeps the threads it was given (all cores, or a sweep worker's share).
# bench/mlp_scaling.py: at [2, w, 2] full batch a second thread starts to help near 2,000 × 256
# (2M); bench/mlp_minibatch.py: at [784, 256, 10], batch 128 (26M) OpenBLAS's single-thread
# sgemm is 5× slower than two threads.
BLAS_THREADS_FROM = 2_000_000


def step_work(rows: int, layers: list[int]) -> int:
    """Multiply-adds of a forward pass over ``rows`` examples."""
    return rows * sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=True))


def blas_threads(work: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for steps of fewer than BLAS_THREADS_FROM multiply-adds."""
    if work >= BLAS_THREADS_FROM:
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


def _softmax_minus_targets(
    Z: np.ndarray, Y: np.ndarray, col: np.ndarray, at_targets: list[tuple] | None = None
) -> list[tuple]:
    """delta_L = softmax(z_L) - Y in place in Z, shifted by the row maximum. ``at_targets``:
    operations that read the shifted logits Z and their row sums of exp, ``col``, before the
    division (the batch statistics)."""
    if Z.shape[1] == 2:  # max and sum of two columns, element-wise: the same bits
        shift = [(np.maximum, Z[:, :1], Z[:, 1:], {"out": col}), (np.subtract, Z, col, Z)]
        total = [(np.exp, Z, Z), (np.add, Z[:, :1], Z[:, 1:], col)]
    else:
        shift = [(_reduce(np.maximum), Z, col), (np.subtract, Z, col, Z)]
        total = [(np.exp, Z, Z), (_reduce(np.add), Z, col)]
    stats = at_targets or []
    return [*shift, *stats[:1], *total, *stats[1:], (np.divide, Z, col, Z), (np.subtract, Z, Y, Z)]


class BatchStats:
    """Running sums over the steps since the last :meth:`take`: the batches' summed
    cross-entropy, their correct predictions and their examples."""

    def __init__(self) -> None:
        self.loss, self.correct, self.count = 0.0, 0, 0
        self.last = 0.0  # the last batch's summed cross-entropy

    def take(self) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) since the last take; then start again."""
        out = self.loss / max(self.count, 1), self.correct / max(self.count, 1)
        self.loss, self.correct, self.count = 0.0, 0, 0
        return out


class _Plan:
    """The operations of one step on a batch of a given size, and the buffers a mini-batch
    is gathered into (None for the whole training set, which is used in place)."""

    def __init__(self, ops: list[tuple], tracked: bool = False, X=None, Y=None, y=None):
        self.X, self.Y, self.y, self.tracked = X, Y, y, tracked
        # (op, positional arguments, keywords): np.maximum takes its output by keyword only
        self.ops = [
            (
                op,
                tuple(a for a in args if not isinstance(a, dict)),
                next((a for a in args if isinstance(a, dict)), {}),
            )
            for op, *args in ops
        ]


class Engine:
    """Gradient steps on one training set, as fast as NumPy allows: :meth:`step` on the
    whole set (gd), or on the examples ``idx`` (a mini-batch); ``update`` is the rule
    (:mod:`~nnlab.models.mlp.optim`). With ``track``, mini-batch steps keep
    :class:`BatchStats`; ``steps``, the steps the run plans, lets the rule choose its form."""

    def __init__(
        self,
        model: MLP,
        X: np.ndarray,
        y: np.ndarray,
        reg_lambda: float,
        train_cfg: dict,
        track: bool = False,
        steps: int = 0,
    ):
        n, sizes = X.shape[0], model.layers
        dtype = X.dtype
        self.shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
        n_weights = sum(a * b for a, b in self.shapes)
        self.theta = np.empty(model.n_params, dtype=dtype)  # [W1, W2, ..., b1, b2, ...]
        self.grad = np.empty_like(self.theta)
        self.W, self.b = _views(self.theta, self.shapes), _views(self.theta[n_weights:], sizes[1:])
        self.dW = _views(self.grad, self.shapes)
        self.db = _views(self.grad[n_weights:], sizes[1:])
        for dst, src in zip(self.W + self.b, model.W + model.b, strict=True):
            dst[...] = src
        model.W, model.b = self.W, self.b  # the model now trains in place, in the flat array
        self.model, self.n, self.reg_lambda = model, n, reg_lambda
        self.weights, self.dweights = self.theta[:n_weights], self.grad[:n_weights]
        self.tmp = np.empty(n_weights, dtype=dtype)
        self.check = np.empty((), dtype=dtype)
        self.X, self.y = np.ascontiguousarray(X), np.asarray(y, dtype=np.intp)
        self.Y = one_hot(y, sizes[-1]).astype(dtype, copy=False)
        self.update = make_update(train_cfg, self.theta, self.grad)
        self.update_ops = self.update.ops(steps)  # its form for a run of ``steps`` steps
        self.track = track
        self.stats = BatchStats()
        self._plans: dict[int, _Plan] = {}

    @property
    def lr(self) -> np.ndarray:
        """The learning rate of the next steps (a 0-d array; the schedule writes into it)."""
        return self.update.lr

    def _plan(self, size: int | None) -> _Plan:
        """The plan for the whole set (``size`` None) or for batches of ``size`` examples."""
        if size in self._plans:
            return self._plans[size]
        dtype, sizes = self.theta.dtype, self.model.layers
        if size is None:
            n, X, Y, y, inputs = self.n, self.X, self.Y, self.y, {}
        else:
            n = size
            X = np.empty((n, sizes[0]), dtype=dtype)
            Y = np.empty((n, sizes[-1]), dtype=dtype)
            y = np.empty(n, dtype=np.intp)
            inputs = {"X": X, "Y": Y, "y": y}
        A = [np.empty((n, k), dtype=dtype) for k in sizes[1:]]  # activations; last: delta
        col = np.empty((n, 1), dtype=dtype)
        activation = self.model.activation
        ops = self._forward(activation, X, self.W, self.b, A)
        track = self.track and size is not None
        ops += self._track_accuracy(A[-1], y) if track else []
        at_targets = self._track_loss(A[-1], y, col) if track else None
        ops += _softmax_minus_targets(A[-1], Y, col, at_targets)
        ops += self._backward(activation, X, self.W, A, self.dW, self.db)
        # the L2 term of the step's share of the objective: reg_lambda * n / N
        scale = self.reg_lambda if n == self.n else self.reg_lambda * n / self.n
        ops += self._regularise(scale, check=not track)
        ops += self.update_ops
        plan = self._plans[size] = _Plan(ops, tracked=track, **inputs)
        return plan

    def _track_accuracy(self, Z: np.ndarray, y: np.ndarray) -> list[tuple]:
        """Count the batch's correct predictions from its logits."""
        pred = np.empty(len(y), dtype=np.intp)
        hit = np.empty(len(y), dtype=bool)
        stats = self.stats

        def count() -> None:
            stats.correct += int(np.count_nonzero(hit))
            stats.count += len(y)

        return [(np.argmax, Z, 1, pred), (np.equal, pred, y, hit), (count,)]

    def _track_loss(self, Z: np.ndarray, y: np.ndarray, col: np.ndarray) -> list[tuple]:
        """The batch's summed cross-entropy, log(sum_j exp(z_j)) - z_y on the shifted logits:
        [gather z_y (before exp), add up log(col) - z_y (after the sum)]."""
        n, k = Z.shape
        rows = np.arange(n, dtype=np.intp) * k
        flat_idx = np.empty(n, dtype=np.intp)
        z_y = np.empty(n, dtype=Z.dtype)
        log_col = np.empty(n, dtype=Z.dtype)
        stats, flat = self.stats, Z.reshape(-1)

        def gather() -> None:
            np.add(rows, y, out=flat_idx)
            np.take(flat, flat_idx, out=z_y, mode="clip")

        def add_up() -> None:
            np.log(col.reshape(-1), out=log_col)
            np.subtract(log_col, z_y, out=log_col)
            stats.last = float(np.add.reduce(log_col))
            stats.loss += stats.last

        return [(gather,), (add_up,)]

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
        D = [np.empty_like(a) for a in A[:-1]]  # hidden deltas
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

    def _regularise(self, reg_lambda: float, check: bool) -> list[tuple]:
        """dW += reg_lambda W for every layer at once (nothing to add when reg_lambda is 0);
        then the divergence check, the sum of the gradient (a tracked step checks its batch
        loss instead, which it has anyway)."""
        ops = []
        if reg_lambda:
            ops += [
                (np.multiply, reg_lambda, self.weights, self.tmp),
                (np.add, self.dweights, self.tmp, self.dweights),
            ]
        if check:
            ops.append((np.add.reduce, self.grad, 0, None, self.check))
        return ops

    def step(self, idx: np.ndarray | None = None) -> float:
        """One update on the whole training set, or on the examples ``idx``; returns the sum
        of the gradient (a tracked mini-batch step: its batch's summed cross-entropy, computed
        before the update), which is non-finite as soon as anything in the step was (a
        tracked step: the step after)."""
        plan = self._plan(None if idx is None else len(idx))
        if idx is not None:
            np.take(self.X, idx, axis=0, out=plan.X, mode="clip")
            np.take(self.Y, idx, axis=0, out=plan.Y, mode="clip")
            if self.track:
                np.take(self.y, idx, out=plan.y, mode="clip")
        self.update.before_step()
        for op, args, kwargs in plan.ops:
            op(*args, **kwargs)
        return self.stats.last if plan.tracked else float(self.check)
