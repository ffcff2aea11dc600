"""Task-specific output layers: one small head per task on a shared representation."""

from __future__ import annotations

import torch
from torch import nn

from mkd.tasks.task import TaskSpec


class TaskHeads(nn.Module):
    """dropout + linear per task: logits for classification, one output for regression."""

    def __init__(self, specs: dict[str, TaskSpec], in_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(in_dim, s.num_outputs) for t, s in sorted(specs.items())})

    def forward(self, task: str, pooled: torch.Tensor) -> torch.Tensor:
        return self.heads[task](self.dropout(pooled))
