"""Dropout whose mask costs a quarter of a random draw per element.

torch's CPU dropout draws one Bernoulli sample per element (8% of a bilstm_attn training step at
hidden 300, by torch.profiler). Here every 64-bit draw is cut into four 16-bit lanes, each compared
with a threshold: the same keep probability to 1/65536, the same 1/(1-p) scaling, from the same
seeded generator (so runs stay reproducible and resume bit-exact), in well under half the time
(benchmarks/lstm_parts.py). At eval it is the identity, as nn.Dropout, and it holds no state, so
checkpoints are unchanged. `swap_dropout` puts it in place of a Hugging Face encoder's nn.Dropout layers:
a MiniLM-L6 training step (batch 32, 30 tokens, bf16 autocast, 2 threads) went from 221.6 to 198.1 ms
(benchmarks/teacher_dropout.py; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

_LANES = 4  # 16-bit lanes in one 64-bit draw
_SPAN = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | None = None) -> torch.Tensor:
    """A bool tensor of `shape`, each element True with probability 1 - p (to 1/65536)."""
    n = math.prod(shape)
    draws = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + _LANES - 1) // _LANES,), dtype=torch.int64,
                          device=device)
    lanes = draws.view(torch.int16)[:n]
    return (lanes >= round(p * _SPAN) - _SPAN // 2).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """nn.functional.dropout's function, with keep_mask's cheaper mask."""
    if not training or p <= 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    return x * keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """A drop-in for nn.Dropout (same `p`, no parameters or buffers)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def swap_dropout(module: nn.Module) -> int:
    """Replace every nn.Dropout inside `module` by Dropout with the same p (an attention layer that passes
    `self.dropout.p` to scaled_dot_product_attention still finds it); returns how many were replaced."""
    swapped = 0
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p))
            swapped += 1
        else:
            swapped += swap_dropout(child)
    return swapped
