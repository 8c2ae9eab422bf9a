"""The DCN's conv stages pooling before their ReLU (nnlab.models.dcn.network.DCN.forward)
against the written order (conv → ReLU → pool, nn.Sequential.forward), side by side.

Both models start from the same weights and train on the same batches with the same dropout
masks (the same seed before each), in alternating rounds so that machine noise hits both
alike; the script checks that their weights and evaluation logits stay equal to the bit, then
prints images per second of training (batch 50, fused Adam) and of evaluation (batches of 100)
for each round.

    python bench/dcn_pool_order.py [--rounds 3] [--threads 2]

The images are random (the arithmetic does not depend on them): 6,000 of 28 x 28, the course
network (conv_channels [32, 64], kernel 5, fc_units 1024, dropout 0.5).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from nnlab.models.dcn.network import DCN, channels_last

BATCH, EVAL_BATCH, N = 50, 100, 6000


def make(written_order: bool) -> nn.Module:
    torch.manual_seed(0)
    model = DCN((28, 28), 10, [32, 64], 5, 1024, 0.5).to(memory_format=torch.channels_last)
    if written_order:
        model.forward = lambda x, m=model: nn.Sequential.forward(m, x)
    return model


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, start: int, n: int) -> float:
    """Images per second of ``n`` training images from ``start`` (a fresh fused Adam)."""
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
    model.train()
    t = time.perf_counter()
    for i in range(start, start + n, BATCH):
        loss = F.cross_entropy(model(channels_last(X[i : i + BATCH])), y[i : i + BATCH])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return n / (time.perf_counter() - t)


@torch.inference_mode()
def evaluate(model: nn.Module, X: torch.Tensor) -> tuple[float, torch.Tensor]:
    model.eval()
    t = time.perf_counter()
    out = torch.cat([model(channels_last(X[i : i + EVAL_BATCH])) for i in range(0, N, EVAL_BATCH)])
    return N / (time.perf_counter() - t), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    X, y = torch.randn(N, 1, 28, 28, generator=gen), torch.randint(0, 10, (N,), generator=gen)
    models = {"written order": make(True), "pool, then ReLU": make(False)}
    for model in models.values():  # warm-up, and 20 steps to compare
        torch.manual_seed(5)
        train(model, X, y, 0, 1000)
    rates: dict[str, dict[str, list[float]]] = {k: {"train": [], "eval": []} for k in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            torch.manual_seed(7)
            rates[name]["train"].append(train(model, X, y, 1000, 2000))
            rate, _ = evaluate(model, X)
            rates[name]["eval"].append(rate)
    a, b = models.values()
    same = all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    logits = torch.equal(evaluate(a, X)[1], evaluate(b, X)[1])
    print(f"weights equal to the bit: {same}; evaluation logits equal: {logits}")
    for name, r in rates.items():
        print(f"{name:16s} train img/s {[round(v) for v in r['train']]}  "
              f"eval img/s {[round(v) for v in r['eval']]}")  # fmt: skip
    for what in ("train", "eval"):
        written, pooled = (r[what] for r in rates.values())
        ratio = [p / w for w, p in zip(written, pooled, strict=True)]
        print(f"{what}: pool-then-ReLU / written order per round: "
              f"{', '.join(f'{v:.3f}' for v in ratio)}")  # fmt: skip


if __name__ == "__main__":
    main()
