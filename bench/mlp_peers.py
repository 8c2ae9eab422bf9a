"""nnlab's NumPy MLP engine against its peers, in one process, on one core.

For each shape — moons(200) at [2, 3, 2] for 20,000 iterations, breast cancer (455 training
examples, standardized) at [30, 50, 2] for 2,000 — and each activation (tanh, sigmoid), time
full-batch gradient descent four ways:

- nnlab: `nnlab.models.mlp.trainer.gradient_descent`, the trainer itself (a metric row every
  1,000 steps included);
- textbook: the classic course loop in NumPy (allocates on every step, one-hot by fancy
  indexing every iteration, max and sum over the 2-wide class axis);
- scikit-learn: MLPClassifier with full-batch SGD, no momentum;
- torch: the same network with autograd in float64, updated by hand.

All four run with one thread (threadpoolctl for BLAS, torch.set_num_threads(1)), so the
comparison is per core. Prints µs per iteration and each peer's time divided by nnlab's.

    python bench/mlp_peers.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from nnlab.config.resolve import load_config
from nnlab.data.tabular import load_data
from nnlab.models import Hooks
from nnlab.models.mlp.math import MLP
from nnlab.models.mlp.trainer import gradient_descent

CASES = [
    ("moons(200), [2,3,2]", {"data": {"name": "moons"}, "model": {"layers": [2, 3, 2]}}, 20000),
    ("breast cancer(455), [30,50,2]",
     {"data": {"name": "breast_cancer", "standardize": True}, "model": {"layers": [30, 50, 2]}},
     2000),
]  # fmt: skip
EPS, LAM = 0.005, 0.005


def run_nnlab(data, layers, activation, iterations):
    model = MLP.create(layers, activation, "classic", 0)
    cfg = {"epsilon": EPS, "reg_lambda": LAM, "iterations": iterations, "log_every": 1000}
    t0 = time.perf_counter()
    gradient_descent(model, data, cfg, Hooks())
    return time.perf_counter() - t0


def run_textbook(data, layers, activation, iterations):
    X, y = data.X_train, data.y_train
    n, (n_in, n_hid, n_out) = len(y), layers
    np.random.seed(0)
    W1 = np.random.randn(n_in, n_hid) / np.sqrt(n_in)
    b1 = np.zeros((1, n_hid))
    W2 = np.random.randn(n_hid, n_out) / np.sqrt(n_hid)
    b2 = np.zeros((1, n_out))
    t0 = time.perf_counter()
    for _ in range(iterations):
        z1 = X.dot(W1) + b1
        a1 = np.tanh(z1) if activation == "tanh" else 1 / (1 + np.exp(-z1))
        z2 = a1.dot(W2) + b2
        exp_scores = np.exp(z2 - np.max(z2, axis=1, keepdims=True))
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
        delta3 = probs
        delta3[range(n), y] -= 1
        dW2 = (a1.T).dot(delta3)
        db2 = np.sum(delta3, axis=0, keepdims=True)
        deriv = (1 - np.power(a1, 2)) if activation == "tanh" else a1 * (1 - a1)
        delta2 = delta3.dot(W2.T) * deriv
        dW1 = np.dot(X.T, delta2)
        db1 = np.sum(delta2, axis=0)
        dW2 += LAM * W2
        dW1 += LAM * W1
        W1 += -EPS * dW1
        b1 += -EPS * db1
        W2 += -EPS * dW2
        b2 += -EPS * db2
    return time.perf_counter() - t0


def run_sklearn(data, layers, activation, iterations):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(layers[1],),
        activation="logistic" if activation == "sigmoid" else activation,
        solver="sgd",
        alpha=LAM,
        batch_size=len(data.y_train),
        learning_rate_init=EPS,
        momentum=0.0,
        nesterovs_momentum=False,
        max_iter=iterations,
        shuffle=False,
        tol=0.0,
        n_iter_no_change=iterations + 1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        elapsed = time.perf_counter() - t0
    assert clf.n_iter_ == iterations, clf.n_iter_
    return elapsed


def run_torch(data, layers, activation, iterations):
    f = torch.tanh if activation == "tanh" else torch.sigmoid
    X = torch.tensor(data.X_train, dtype=torch.float64)
    y = torch.tensor(data.y_train)
    m = MLP.create(layers, activation, "classic", 0)
    params = [
        torch.tensor(p, dtype=torch.float64, requires_grad=True)
        for p in (m.W[0], m.b[0], m.W[1], m.b[1])
    ]
    W1, b1, W2, b2 = params
    t0 = time.perf_counter()
    for _ in range(iterations):
        z2 = f(X @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(z2, y, reduction="sum")
        loss = loss + LAM / 2 * ((W1 * W1).sum() + (W2 * W2).sum())
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= EPS * g
    return time.perf_counter() - t0


PEERS = {"nnlab": run_nnlab, "textbook": run_textbook, "scikit-learn": run_sklearn,
         "torch": run_torch}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings per cell")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"numpy {np.__version__}, torch {torch.__version__}, one thread; best of {args.repeat}\n")
    header = f"{'case':<32} {'act':<8}" + "".join(f"{p:>14}" for p in PEERS)
    print("µs per iteration")
    print(header)
    ratios = []
    with threadpool_limits(1):
        for label, raw, iterations in CASES:
            data = load_data(load_config(raw))
            for activation in ("tanh", "sigmoid"):
                layers = raw["model"]["layers"]
                us = {}
                for _ in range(args.repeat):  # interleaved, so noise falls on all alike
                    for name, runner in PEERS.items():
                        t = runner(data, layers, activation, iterations) / iterations * 1e6
                        us[name] = min(us.get(name, float("inf")), t)
                print(f"{label:<32} {activation:<8}" + "".join(f"{us[p]:>14.1f}" for p in PEERS))
                ratios.append((label, activation, {p: us[p] / us["nnlab"] for p in PEERS}))
    print("\npeer time / nnlab time (above 1: nnlab is faster)")
    print(header)
    for label, activation, r in ratios:
        print(f"{label:<32} {activation:<8}" + "".join(f"{r[p]:>13.2f}×" for p in PEERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
