"""The MLP's equations: forward pass, loss, backpropagation derived by hand, initialisation.

Notation follows docs/math.md, 'MLP equations': for layer l = 1..L,
``z_l = a_{l-1} W_l + b_l`` and ``a_l = f(z_l)``, softmax on the last layer; ``a_0 = X``.
Shapes: ``X (N, n_0)``, ``W_l (n_{l-1}, n_l)``, ``b_l (n_l,)``. Gradients are those of the
*summed* objective

    J = N * L = -sum_i log yhat_{i, y_i} + (reg_lambda / 2) * sum_l ||W_l||^2

(summed over examples, biases not penalised — the classic course convention), so the update is
``W -= epsilon * dW``. Everything is float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PREDICT_CHUNK_BYTES = 64 * 2**20  # activations of one chunk of MLP.predict's rows


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
        """Class indices, computed in chunks of rows whose activations stay under
        PREDICT_CHUNK_BYTES: a decision-boundary grid of 160,000 points through layers of
        thousands of units would need gigabytes at once. Each row's prediction is the same
        either way (a network small enough is one chunk: the very same call)."""
        rows = max(1, PREDICT_CHUNK_BYTES // (2 * X.itemsize * sum(self.layers[1:])))
        if len(X) <= rows:
            return np.argmax(self.logits(X), axis=1)
        chunks = [np.argmax(self.logits(X[i : i + rows]), axis=1) for i in range(0, len(X), rows)]
        return np.concatenate(chunks)

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
    """(loss L as in docs/math.md, accuracy as a fraction) of the model on (X, y)."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = model.logits(X)
        value = _objective(z, y, model.W, reg_lambda)
    return value, float(np.mean(np.argmax(z, axis=1) == y))
