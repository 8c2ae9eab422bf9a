"""Seconds per epoch of mini-batch Adam on Fashion-MNIST: nnlab's NumPy MLP against
scikit-learn's MLPClassifier and PyTorch eager, in float64 and float32, side by side.

    python bench/mlp_minibatch.py [--rounds 3] [--epochs 10] [--root DIR]

Every contender trains the same network — [784, 256, 10], ReLU, softmax cross-entropy, Adam
with learning rate 1e-3, batches of 128 shuffled every epoch — on the 60,000 training images
(flattened, scaled to [0, 1]). Each timed run is a run of --epochs epochs (default 10, the
MLP's default train.epochs: nnlab plans its update by the run's length, optim.FUSED_FROM), and
what is timed is its training epochs only: no evaluation, no data loading. Rounds alternate
between the contenders so that a noisy machine slows all of them alike; the table gives each
one's median seconds per epoch and its time as a multiple of PyTorch's at the same dtype. Each
library uses the threads it chooses by default (nnlab: its BLAS rule, see
nnlab/models/mlp/engine.py; PyTorch: torch.get_num_threads()).

Needs Fashion-MNIST's IDX files: Debian's `apt-get install dataset-fashion-mnist`, or --root.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings

import numpy as np

LAYERS = [784, 256, 10]
BATCH, LR = 128, 1e-3


def load(root: str | None) -> tuple[np.ndarray, np.ndarray]:
    from nnlab.data.idx import load_idx

    images, labels = load_idx("fashion_mnist", {"root": root, "download": False})["train"]
    return images.reshape(len(images), -1) / 255.0, labels.astype(np.int64)


def nnlab_epochs(
    X: np.ndarray, y: np.ndarray, dtype: str, epochs: int, passes: bool = False
) -> float:
    """The trainer's own mini-batch loop (shuffling, gathering, metric rows every 100 steps);
    with ``passes``, Adam as NumPy's twelve passes whatever the run's length (as before the
    compiled pass)."""
    from nnlab.config.resolve import load_config
    from nnlab.data.tabular import Dataset
    from nnlab.models import Hooks
    from nnlab.models.mlp import optim
    from nnlab.models.mlp.math import MLP
    from nnlab.models.mlp.trainer import _Loop, fit_threads, minibatch_descent

    cfg = load_config(
        {
            "model": {"layers": LAYERS, "activation": "relu", "init": "he"},
            "train": {"optimizer": "adam", "epsilon": LR, "reg_lambda": 0.0,
                      "batch_size": BATCH, "epochs": epochs, "log_every": 100, "dtype": dtype},
        }
    )  # fmt: skip
    X = X.astype(dtype)
    data = Dataset("fashion_mnist", X, y, None, None, [str(i) for i in range(10)], [])
    model = MLP.create(LAYERS, "relu", "he", 0)
    shipped = optim.FUSED_FROM
    if passes:
        optim.FUSED_FROM = 10**30  # no run is that long
    try:
        loop = _Loop(model, data, cfg["train"], Hooks())  # the update's form is chosen here
    finally:
        optim.FUSED_FROM = shipped
    with fit_threads(cfg, data), np.errstate(over="ignore", invalid="ignore"):
        t0 = time.perf_counter()
        minibatch_descent(loop, 0)
        return time.perf_counter() - t0


def sklearn_epochs(X: np.ndarray, y: np.ndarray, dtype: str, epochs: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(LAYERS[1],),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        shuffle=True,
        tol=0.0,
        n_iter_no_change=10**9,
        random_state=0,
    )
    X = X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
    assert clf.coefs_[0].dtype == np.dtype(dtype), "scikit-learn changed the dtype"
    return seconds


def torch_epochs(X: np.ndarray, y: np.ndarray, dtype: str, epochs: int) -> float:
    """A plain eager loop: tensors in memory, a batch is one indexing operation."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    tdtype = getattr(torch, dtype)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(tdtype)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X.astype(dtype)), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(yt), BATCH):
            idx = perm[i : i + BATCH]
            loss = nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


CONTENDERS = {
    "nnlab": nnlab_epochs,
    "nnlab, NumPy passes": functools.partial(nnlab_epochs, passes=True),
    "scikit-learn": sklearn_epochs,
    "PyTorch eager": torch_epochs,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed run")
    parser.add_argument("--root", default=None, help="folder with Fashion-MNIST's IDX files")
    args = parser.parse_args()
    import torch

    X, y = load(args.root)
    print(f"Fashion-MNIST {X.shape[0]} x {X.shape[1]}, {LAYERS}, batch {BATCH}, Adam; "
          f"torch threads {torch.get_num_threads()}", flush=True)  # fmt: skip
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for dtype in ("float64", "float32"):
            for name, fn in CONTENDERS.items():
                per_epoch = fn(X, y, dtype, args.epochs) / args.epochs
                times.setdefault((name, dtype), []).append(per_epoch)
                print(f"round {r + 1}: {name:<19} {dtype}: {per_epoch:6.2f} s/epoch", flush=True)
    print()
    print("| dtype | contender | s / epoch (median) | × PyTorch |")
    print("|---|---|---|---|")
    for dtype in ("float64", "float32"):
        ref = statistics.median(times[("PyTorch eager", dtype)])
        for name in CONTENDERS:
            med = statistics.median(times[(name, dtype)])
            print(f"| {dtype} | {name} | {med:.2f} | {med / ref:.2f} |")


if __name__ == "__main__":
    main()
