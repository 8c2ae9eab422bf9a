"""The hand-derived backprop against finite differences and torch autograd, on real numbers."""

import numpy as np
import pytest
import torch

from nnlab.models.mlp.gradcheck import numeric_gradient, relative_error
from nnlab.models.mlp.math import (
    MLP,
    backprop,
    forward,
    init_params,
    log_softmax,
    loss,
    one_hot,
    softmax,
)

SHAPES = {1: [4, 5, 3], 2: [4, 5, 4, 3], 3: [4, 6, 5, 4, 3]}


def _problem(depth: int, activation: str, seed: int = 0, n: int = 12):
    rng = np.random.RandomState(seed)
    layers = SHAPES[depth]
    W, b = init_params(layers, "classic", seed)
    b = [rng.randn(*b_l.shape) * 0.1 for b_l in b]  # non-zero biases exercise every path
    X = rng.randn(n, layers[0])
    y = rng.randint(0, layers[-1], size=n)
    return W, b, X, y


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_backprop_matches_finite_differences(activation, depth):
    W, b, X, y = _problem(depth, activation)
    lam = 0.05
    dW, db = backprop(W, b, X, one_hot(y, W[-1].shape[1]), activation, lam)

    def objective():  # J = N * L, the objective whose gradient backprop returns
        return len(y) * loss(W, b, X, y, activation, lam)

    for params, grads in ((W, dW), (b, db)):
        for p, g in zip(params, grads, strict=True):
            err = relative_error(g, numeric_gradient(objective, p, h=1e-6))
            assert err < 1e-6, (activation, depth, err)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_backprop_matches_torch_autograd(activation, depth):
    W, b, X, y = _problem(depth, activation, seed=3, n=20)
    lam = 0.01
    dW, db = backprop(W, b, X, one_hot(y, W[-1].shape[1]), activation, lam)

    tW = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in W]
    tb = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in b]
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    a = torch.tensor(X, dtype=torch.float64)
    for w, v in zip(tW[:-1], tb[:-1], strict=True):
        a = f(a @ w + v)
    z = a @ tW[-1] + tb[-1]
    J = torch.nn.functional.cross_entropy(z, torch.tensor(y), reduction="sum")
    J = J + lam / 2 * sum((w * w).sum() for w in tW)
    J.backward()

    for ours, theirs in zip(dW + db, tW + tb, strict=True):
        assert relative_error(ours, theirs.grad.numpy()) <= 1e-10
    assert loss(W, b, X, y, activation, lam) == pytest.approx(J.item() / len(y), rel=1e-12)


def test_loss_is_design_formula_on_a_hand_example():
    W = [np.array([[1.0, -1.0]])]
    b = [np.array([0.5, 0.0])]
    X = np.array([[1.0], [2.0]])
    y = np.array([0, 1])
    # logits: [1.5, -1], [2.5, -2]; L = (1/2)[-log p(0|x1) - log p(1|x2) + (0.1/2) * 2]
    p1 = np.exp(1.5) / (np.exp(1.5) + np.exp(-1))
    p2 = np.exp(-2) / (np.exp(2.5) + np.exp(-2))
    expected = 0.5 * (-np.log(p1) - np.log(p2) + 0.05 * 2)
    assert loss(W, b, X, y, "tanh", 0.1) == pytest.approx(expected, rel=1e-14)


def test_softmax_is_stable_and_normalised():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    p = softmax(z)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    assert np.all(np.isfinite(log_softmax(z)))
    assert log_softmax(z)[0, 2] == pytest.approx(-2000.0)


def test_classic_init_matches_the_course_code():
    np.random.seed(7)
    W1 = np.random.randn(2, 3) / np.sqrt(2)
    W2 = np.random.randn(3, 2) / np.sqrt(3)
    W, b = init_params([2, 3, 2], "classic", 7)
    assert np.array_equal(W[0], W1) and np.array_equal(W[1], W2)
    assert all(not v.any() for v in b)


@pytest.mark.parametrize(
    "init, var",
    [
        ("xavier", lambda i, o: 2 / (i + o)),
        ("he", lambda i, o: 2 / i),
        ("classic", lambda i, o: 1 / i),
    ],
)
def test_init_variances(init, var):
    W, _ = init_params([400, 300, 200], init, 0)
    for w in W:
        fan_in, fan_out = w.shape
        assert w.var() == pytest.approx(var(fan_in, fan_out), rel=0.03)


def test_forward_shapes_and_state_roundtrip():
    m = MLP.create([3, 4, 5, 2], "relu", "he", 1)
    X = np.random.RandomState(0).randn(7, 3)
    a, z = forward(m.W, m.b, X, "relu")
    assert [x.shape for x in a] == [(7, 3), (7, 4), (7, 5)] and z.shape == (7, 2)
    assert m.n_params == 3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2
    again = MLP.from_state(m.state(), "relu")
    assert again.layers == [3, 4, 5, 2]
    assert np.array_equal(again.predict_proba(X), m.predict_proba(X))


def test_the_schema_offers_exactly_the_activations_the_equations_implement():
    from nnlab.models import mlp
    from nnlab.models.mlp import math

    assert set(mlp.ACTIVATIONS) == set(math.ACTIVATIONS)
