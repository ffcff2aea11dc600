"""Encoded examples of one task split, and dynamic padding into tensors.

Features are ragged integer sequences (no padding stored); a batch is padded to its own longest
sequence only, which with length bucketing keeps padding small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class EncodedSplit:
    """Model inputs of one task split, aligned by position with `ids` (the example ids)."""

    task: str
    task_type: str
    ids: list[str]
    features: dict[str, list[list[int]]]
    pad_values: dict[str, int]
    labels: list[int | float | None] | None = None
    targets: np.ndarray | None = None  # teacher logits, aligned with ids
    lengths: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lengths:
            first = next(iter(self.features.values()))
            self.lengths = [max(len(seqs[i]) for seqs in self.features.values()) for i in range(len(first))]

    def __len__(self) -> int:
        return len(self.ids)

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for name, seqs in self.features.items():
            rows = [seqs[i] for i in indices]
            width = max(1, max(len(r) for r in rows))
            arr = np.full((len(rows), width), self.pad_values.get(name, 0), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                arr[j, : len(r)] = r
                mask[j, : len(r)] = 1
            batch[name] = torch.from_numpy(arr)
            if name.startswith("input_ids"):
                batch[name.replace("input_ids", "attention_mask")] = torch.from_numpy(mask)
        if self.labels is not None:
            gold = [self.labels[i] for i in indices]
            known = [g is not None for g in gold]
            if any(known):  # augmented examples have no gold label: label_mask marks those that do
                dtype = torch.float32 if self.task_type == "regression" else torch.long
                batch["labels"] = torch.tensor([g if g is not None else 0 for g in gold], dtype=dtype)
                if not all(known):
                    batch["label_mask"] = torch.tensor(known, dtype=torch.bool)
        if self.targets is not None:
            batch["teacher_logits"] = torch.from_numpy(np.asarray(self.targets[list(indices)], dtype=np.float32))
        batch["index"] = torch.tensor(list(indices), dtype=torch.long)
        return batch

    def eval_batches(self, batch_size: int) -> list[list[int]]:
        """Length-sorted batches for inference (order restored by `index`)."""
        order = sorted(range(len(self)), key=lambda i: self.lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
