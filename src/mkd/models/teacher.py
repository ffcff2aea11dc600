"""The teacher: any encoder that transformers loads, plus one head per task (MT-DNN style)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mkd.data.batch import EncodedSplit
from mkd.data.encode import encode_for_transformer
from mkd.errors import MkdError
from mkd.models.base import ARCHS, MkdModel
from mkd.models.dropout import swap_dropout
from mkd.models.heads import TaskHeads
from mkd.tasks.task import Example, TaskSpec

POOLINGS = ("mean", "cls", "pooler")
"""mean of the real tokens; [CLS]; [CLS] through the encoder's own pooler (dense + tanh), which is what
Hugging Face's *ForSequenceClassification classes compute, so only that one exports to them exactly."""


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


@ARCHS.register("teacher")
class TeacherModel(MkdModel):
    """Shared encoder + per-task heads on the mean-pooled (or [CLS], or pooler) representation."""

    arch = "teacher"

    def __init__(self, encoder: nn.Module, tokenizer: Any, specs: dict[str, TaskSpec],
                 max_length: int = 128, dropout: float = 0.1, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise MkdError(f"unknown pooling '{pooling}'", f"use one of: {', '.join(POOLINGS)}")
        if pooling == "pooler" and getattr(encoder, "pooler", None) is None:
            raise MkdError(f"pooling 'pooler' needs an encoder with a pooler layer ({type(encoder).__name__} has none)",
                           "use pooling: mean or cls, or a BERT/RoBERTa-style encoder")
        swap_dropout(encoder)  # the same dropout, its mask a quarter of the random draws (mkd.models.dropout)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.specs = dict(specs)
        self.max_length = max_length
        self.pooling = pooling
        self.dropout_p = dropout
        self.heads = TaskHeads(self.specs, encoder.config.hidden_size, dropout)

    @classmethod
    def from_pretrained(cls, name: str, specs: dict[str, TaskSpec], max_length: int = 128,
                        dropout: float = 0.1, pooling: str = "mean", trust_remote_code: bool = False,
                        fetch_missing: bool = False) -> TeacherModel:
        from mkd.models.pretrained import load_encoder

        encoder, tokenizer = load_encoder(name, trust_remote_code, fetch_missing)
        return cls(encoder, tokenizer, specs, max_length, dropout, pooling)

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        out = self.encoder(**kwargs)
        if self.pooling == "pooler":
            return out.pooler_output
        return pool(out.last_hidden_state, batch["attention_mask"], self.pooling)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.heads(task, self.features(batch))

    def encode(self, spec: TaskSpec, examples: Sequence[Example], targets: Any = None) -> EncodedSplit:
        return encode_for_transformer(self.tokenizer, spec, examples, self.max_length, targets)

    def settings(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "pooling": self.pooling, "dropout": self.dropout_p}

    def save_extras(self, folder: Path) -> None:
        self.encoder.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def build(cls, folder: Path, specs: dict[str, TaskSpec], settings: dict[str, Any]) -> TeacherModel:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)  # a saved folder never runs code
        encoder = AutoModel.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True, trust_remote_code=False)
        return cls(encoder, tokenizer, specs, settings["max_length"], settings["dropout"], settings["pooling"])
