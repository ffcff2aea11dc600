"""Fused against unfused AdamW on the static student's shape (prints figures; one thread).

A step of a bag-of-tokens student over a 30,522 x 256 token table (plus its token weights and a pair
head): the table's gradient is dense, so the optimizer step dominates unless AdamW is fused (one
kernel per step). mkd's loop uses `fused=True` (mkd.train.loop._optimizer).

    OMP_NUM_THREADS=1 python benchmarks/optimizer_step.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def step_times(fused: bool, steps: int, vocab: int = 30_522, dim: int = 256) -> tuple[float, float]:
    """(ms per training step, ms per optimizer step), averaged over `steps` after 3 warm-up steps."""
    torch.manual_seed(0)
    table, weights, head = nn.Embedding(vocab, dim), nn.Embedding(vocab, 1), nn.Linear(4 * dim, 3)
    params = [*table.parameters(), *weights.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=fused)
    ids = torch.randint(0, vocab, (50, 20))

    def step() -> float:
        mask = nn.functional.softplus(weights(ids))
        u = (table(ids) * mask).sum(1) / mask.sum(1)
        loss = head(torch.cat([u, u, u, u], -1)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        started = time.perf_counter()
        optimizer.step()
        return time.perf_counter() - started

    for _ in range(3):
        step()
    started = time.perf_counter()
    in_optimizer = sum(step() for _ in range(steps))
    return 1000 * (time.perf_counter() - started) / steps, 1000 * in_optimizer / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is printed)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    found: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for fused in (False, True):
            found[fused].append(step_times(fused, args.steps))
    for fused, runs in found.items():
        step, opt = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"AdamW fused={fused}: {step:.1f} ms a step, {opt:.1f} ms of it in optimizer.step()")
    ratio = statistics.median(r[0] for r in found[False]) / statistics.median(r[0] for r in found[True])
    print(f"fused is {ratio:.1f}x faster a step (one thread, torch {torch.__version__})")


if __name__ == "__main__":
    main()
