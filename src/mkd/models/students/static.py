"""The static student: a token table distilled from the teacher, pooled, and one small head per task.

No recurrence, no attention: a sentence is the (mean, or learned-weight) average of its token
vectors, so it serves at tokenizer speed. The table starts from an encoder (borrow.py: the run's
refined teacher, another refined mkd teacher, else the base encoder `teacher.model`; teacher_vectors.py:
each vocabulary token through the encoder, PCA, SIF weights from the transfer set's token counts,
model2vec-style) and is trained, with the heads, by the same multi-task distillation as every student.
It uses the encoder's own fast tokenizer (subword ids, no special tokens), so no token is out of
vocabulary. Pairs are [u, v, |u-v|, u*v].

Config: embedding_dim = the PCA width; pooling = mean | weighted (a learned weight per token,
softplus, starting at 1); head = mlp (hidden_size wide, one hidden layer) | linear;
bigram_buckets = rows of a hashed table of adjacent-token pairs (fastText's word n-grams: a bag of
tokens cannot tell "not good" from "good, not"). Their mean is added to the pooled token vector;
the table starts at zero, so training starts from the unigram model. The hash is integer arithmetic
on the ids, so the ONNX graph computes it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mkd.config import StudentConfig
from mkd.data.batch import EncodedSplit
from mkd.data.encode import AUG_MASK
from mkd.errors import MkdError
from mkd.models.base import ARCHS, MkdModel
from mkd.models.students.borrow import Borrow, EncoderSource, vectors_sources
from mkd.models.students.teacher_vectors import sif_weights, teacher_vectors
from mkd.models.students.wordlevel import MLPHeads, SubwordTokens
from mkd.tasks.task import Example, TaskSpec

POOLINGS = ("mean", "weighted")
EMBEDDINGS = ("teacher-static", "random")
DEFAULT_DIM = 256  # PCA width when student.embedding_dim is not set (the demo's measured best)
HEADS = ("mlp", "linear")
_ONE = float(np.log(np.expm1(1.0)))  # softplus(_ONE) == 1: every token starts with weight 1
_PRIME = 1_000_003  # bigram hash: (a * _PRIME + b) mod buckets; ids < 2**31 keep it inside int64


@ARCHS.register("static")
class StaticStudent(MkdModel):
    arch = "static"
    ACCEPTS = frozenset({"embeddings", "embedding_dim", "freeze_embeddings", "pooling", "head", "bigram_buckets"})
    """The student.* settings of this kind besides the common ones (students/__init__.py)."""
    EXCLUSIVE = frozenset({"head", "bigram_buckets"})
    """Its settings that another kind refuses (it would train without them)."""

    @classmethod
    def check(cls, cfg: StudentConfig, fetch_missing: bool = False) -> None:
        """Its settings, before any work."""
        if cfg.embeddings not in EMBEDDINGS:
            raise MkdError(f"student.embeddings '{cfg.embeddings}' does not apply to the static student",
                           "use teacher-static (its vectors come from an encoder) or random")
        if cfg.pooling not in POOLINGS:
            raise MkdError(f"student.pooling '{cfg.pooling}' does not apply to the static student",
                           f"use one of: {', '.join(POOLINGS)}")

    @classmethod
    def borrows(cls, cfg: StudentConfig) -> Borrow:
        """Always an encoder's tokenizer; its token vectors too unless they are random."""
        if cfg.embeddings != "teacher-static":
            return Borrow("its tokenizer")
        return Borrow("its token vectors", vectors_sources(cfg))

    def __init__(self, specs: dict[str, TaskSpec], tokens: SubwordTokens, vocab_size: int, embedding_dim: int,
                 hidden_size: int = 300, pooling: str = "mean", head: str = "mlp", dropout: float = 0.1,
                 max_length: int = 128, freeze_embeddings: bool = False,
                 embeddings: dict[str, Any] | None = None, bigram_buckets: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise MkdError(f"student.pooling '{pooling}' does not apply to the static student",
                           f"use one of: {', '.join(POOLINGS)}")
        if head not in HEADS:
            raise MkdError(f"unknown student.head '{head}'", f"use one of: {', '.join(HEADS)}")
        self.specs = dict(specs)
        self.tokens = tokens
        self.vocab_size, self.embedding_dim, self.hidden_size = vocab_size, embedding_dim, hidden_size
        self.pooling, self.head, self.dropout_p = pooling, head, dropout
        self.max_length, self.freeze_embeddings = max_length, freeze_embeddings
        self.bigram_buckets = bigram_buckets
        self.embedding_info = embeddings or {}
        self._backend: Any = None  # the Rust tokenizer, made on first use (token_ids)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=tokens.pad_id)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        if pooling == "weighted":
            self.token_weight = nn.Embedding(vocab_size, 1)
            nn.init.constant_(self.token_weight.weight, _ONE)
        if bigram_buckets:
            self.bigram = nn.Embedding(bigram_buckets, embedding_dim)
            nn.init.zeros_(self.bigram.weight)
        in_dims = {t: 4 * embedding_dim if s.is_pair else embedding_dim for t, s in self.specs.items()}
        if head == "mlp":
            self.heads: nn.Module = MLPHeads(self.specs, in_dims, hidden_size, dropout)
        else:
            self.heads = _LinearHeads(self.specs, in_dims, dropout)

    def sentence(self, batch: dict[str, torch.Tensor], side: str = "") -> torch.Tensor:
        ids = batch[f"input_ids{side}"]
        mask = batch[f"attention_mask{side}"].unsqueeze(-1).to(self.embedding.weight.dtype)
        if self.pooling == "weighted":
            mask = mask * F.softplus(self.token_weight(ids))
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1e-6)
        if not self.bigram_buckets:
            return pooled
        real = batch[f"attention_mask{side}"]
        both = (real[:, :-1] * real[:, 1:]).unsqueeze(-1).to(pooled.dtype)
        pairs = torch.remainder(ids[:, :-1] * _PRIME + ids[:, 1:], self.bigram_buckets)
        return pooled + (self.bigram(pairs) * both).sum(1) / both.sum(1).clamp(min=1.0)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u = self.sentence(batch)
        if not self.specs[task].is_pair:
            return self.heads(task, u)
        v = self.sentence(batch, "_b")
        return self.heads(task, torch.cat([u, v, (u - v).abs(), u * v], dim=-1))

    # ---- the MkdModel contract -------------------------------------------------------------
    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids SubwordTokens.encode_texts gives, straight from the Rust tokenizer in one call: the
        transformers wrapper costs about a third of a static student's serving time."""
        if self._backend is None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(self.tokens.tokenizer.backend_tokenizer.to_str())
            backend.no_padding()
            backend.no_truncation()
            self._backend = backend
        mask, unk, n = self.tokens.mask, self.tokens.unk_id, self.max_length
        encoded = self._backend.encode_batch([t.replace(AUG_MASK, mask) for t in texts], add_special_tokens=False)
        return [e.ids[:n] or [unk] for e in encoded]

    def encode(self, spec: TaskSpec, examples: Sequence[Example], targets: Any = None) -> EncodedSplit:
        ids = self.token_ids([t for e in examples for t in e.texts[:2 if spec.is_pair else 1]])
        feats = {"input_ids": ids[::2] if spec.is_pair else ids}
        if spec.is_pair:
            feats["input_ids_b"] = ids[1::2]
        pad = self.tokens.pad_id
        return EncodedSplit(task=spec.name, task_type=spec.type, ids=[e.id for e in examples], features=feats,
                            pad_values={name: pad for name in feats}, labels=[e.label for e in examples],
                            targets=targets)

    def settings(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim, "hidden_size": self.hidden_size,
                "pooling": self.pooling, "head": self.head, "dropout": self.dropout_p,
                "max_length": self.max_length, "freeze_embeddings": self.freeze_embeddings,
                "embeddings": self.embedding_info, "bigram_buckets": self.bigram_buckets}

    def save_extras(self, folder: Path) -> None:
        self.tokens.save(folder)

    @classmethod
    def build(cls, folder: Path, specs: dict[str, TaskSpec], settings: dict[str, Any]) -> StaticStudent:
        tokens = SubwordTokens.load(folder)
        if len(tokens) > settings["vocab_size"]:
            raise MkdError(f"the tokenizer in {folder} ({len(tokens)} tokens) does not fit its embedding matrix "
                           f"({settings['vocab_size']} rows)", "restore that model folder or retrain it")
        return cls(specs, tokens, **settings)

    @classmethod
    def from_config(cls, cfg: StudentConfig, specs: dict[str, TaskSpec], texts: Iterable[str],
                    encoder: EncoderSource | None, fetch_missing: bool = False) -> StaticStudent:
        """Vectors of the encoder's whole vocabulary, SIF-weighted by the token counts of `texts`
        (the transfer set). embeddings: teacher-static (the default for this student) or random."""
        assert encoder is not None  # build_student checks it
        net, tokenizer = encoder.load()
        tokens = SubwordTokens(tokenizer)
        n = len(tokens)
        counts = np.zeros(n, dtype=np.float64)
        for ids in _chunks(tokens, texts, cfg.max_length):
            for i, c in Counter(ids).items():
                counts[i] += c
        dim = min(cfg.embedding_dim or DEFAULT_DIM, net.config.hidden_size)  # type: ignore[union-attr]
        if cfg.embeddings == "random":
            matrix = torch.randn(n, dim) * 0.1
            source = "random"
        else:
            vectors = teacher_vectors(encoder, [[i] for i in range(n)], dim, (net, tokenizer))
            matrix = torch.from_numpy(vectors * sif_weights(counts)[:, None])
            source = "teacher-static" if cfg.vectors_from == "refined" else f"teacher-static ({cfg.vectors_from})"
        matrix[tokens.pad_id] = 0.0
        info = {"source": source, "encoder": encoder.source.value, "dim": dim, "words": n,
                "found": int((counts > 0).sum()), "coverage": 1.0}
        model = cls(specs, tokens, n, dim, cfg.hidden_size, cfg.pooling, cfg.head, cfg.dropout, cfg.max_length,
                    cfg.freeze_embeddings, info, cfg.bigram_buckets)
        with torch.no_grad():
            model.embedding.weight.copy_(matrix)
        return model


class _LinearHeads(nn.Module):
    """dropout + one linear layer per task (the cheapest head: logistic regression on the pooled vector)."""

    def __init__(self, specs: dict[str, TaskSpec], in_dims: dict[str, int], dropout: float) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({t: nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dims[t], s.num_outputs))
                                    for t, s in sorted(specs.items())})

    def forward(self, task: str, features: torch.Tensor) -> torch.Tensor:
        return self.heads[task](features)


def _chunks(tokens: SubwordTokens, texts: Iterable[str], max_length: int, size: int = 4096) -> Iterable[list[int]]:
    """Token ids of every text, tokenized in chunks (for the SIF counts)."""
    part: list[str] = []
    for text in texts:
        part.append(text)
        if len(part) == size:
            yield from tokens.encode_texts(part, max_length)
            part = []
    if part:
        yield from tokens.encode_texts(part, max_length)
