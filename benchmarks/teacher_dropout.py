"""A teacher's training step with torch's dropout against mkd's (prints figures; not a test).

MiniLM-L6 (the `minilm-l6` asset) in training mode, batch 32 x 30 random token ids, bf16 autocast,
forward + backward + fused AdamW, on the process's threads: the same encoder twice, one with its
nn.Dropout layers and one after mkd.models.dropout.swap_dropout (what TeacherModel does), in
interleaved rounds; medians in milliseconds.

    python benchmarks/teacher_dropout.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from mkd.models.dropout import swap_dropout
from mkd.models.pretrained import load_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--model", default="minilm-l6")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch_encoder, _ = load_encoder(args.model, False, False)
    mkd_encoder = copy.deepcopy(torch_encoder)
    swapped = swap_dropout(mkd_encoder)
    ids = torch.randint(1000, 20000, (32, 30))
    mask = torch.ones_like(ids)
    runs = {}
    for name, encoder in (("torch dropout", torch_encoder), ("mkd dropout", mkd_encoder)):
        encoder.train()
        runs[name] = (encoder, torch.optim.AdamW(encoder.parameters(), lr=1e-5, fused=True))

    def step(encoder: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for encoder, optimizer in runs.values():
        step(encoder, optimizer)
        step(encoder, optimizer)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (encoder, optimizer) in runs.items():
            start = time.perf_counter()
            for _ in range(3):
                step(encoder, optimizer)
            times[name].append((time.perf_counter() - start) / 3 * 1000)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.model}, {swapped} dropout layers swapped, {torch.get_num_threads()} threads, batch 32 x 30, bf16:")
    for name, ms in med.items():
        print(f"  {name:14s} {ms:7.1f} ms a training step")
    print(f"  mkd's dropout: {med['torch dropout'] / med['mkd dropout']:.2f}x")


if __name__ == "__main__":
    main()
