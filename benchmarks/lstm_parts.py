"""Two parts of an LSTM student's training step, mkd's against torch's (prints figures; not a test).

- dropout on a (50, 40, 900) activation (bilstm_attn's integrator input at hidden 300): torch's
  nn.functional.dropout against mkd.models.dropout.dropout, forward only;
- the backward direction's reversal within each row's length, forward and backward: the element-wise
  gather mkd used before against today's row-wise index_select (mkd.models.students.wordlevel).

One thread, fp32 and bf16, interleaved rounds, medians in milliseconds.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/lstm_parts.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from mkd.models.dropout import dropout
from mkd.models.students.wordlevel import reverse_within


def gather_reverse(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """reverse_within as it was: a gather over every element."""
    t = torch.arange(x.shape[1]).unsqueeze(0)
    c = counts.unsqueeze(1)
    index = torch.where(t < c, c - 1 - t, t)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=20, help="calls per timing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    counts = torch.randint(5, 41, (50,))
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(50, 40, 900).to(dtype)
        xg = x.clone().requires_grad_(True)
        runs: dict[str, Callable[[], object]] = {
            "dropout, torch": lambda x=x: torch.nn.functional.dropout(x, 0.1, True),
            "dropout, mkd": lambda x=x: dropout(x, 0.1, True),
            "reversal fwd+bwd, gather (before)": lambda xg=xg: gather_reverse(xg, counts).float().sum().backward(),
            "reversal fwd+bwd, index_select (mkd)": lambda xg=xg: reverse_within(xg, counts).float().sum().backward(),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(args.rounds + 1):
            for name in (list(runs) if r % 2 else list(runs)[::-1]):
                start = time.perf_counter()
                for _ in range(args.repeat):
                    runs[name]()
                if r:
                    times[name].append(1e3 * (time.perf_counter() - start) / args.repeat)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{str(dtype).removeprefix('torch.')}: " + "; ".join(f"{k} {v:.2f} ms" for k, v in med.items()))
        print(f"  dropout {med['dropout, torch'] / med['dropout, mkd']:.1f}x faster, reversal "
              f"{med['reversal fwd+bwd, gather (before)'] / med['reversal fwd+bwd, index_select (mkd)']:.1f}x faster")


if __name__ == "__main__":
    main()
