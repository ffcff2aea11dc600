"""What the LSTM students share: tokens -> embedding table, encoding, saving, rebuilding, masked LSTMs.

An architecture file only adds its layers (`build_layers`) and `forward`. Padded positions never
reach a prediction: LSTMs run forward over padding-at-the-end and backward over each row reversed
within its length (`padded_lstm`), attention and pooling are masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mkd.config import StudentConfig
from mkd.data.batch import EncodedSplit
from mkd.data.encode import AUG_MASK
from mkd.errors import MkdError
from mkd.models.base import MkdModel
from mkd.models.dropout import Dropout, dropout
from mkd.models.students.borrow import Borrow, EncoderSource, vectors_sources
from mkd.models.students.embeddings import VECTORS, WIDTHS, check_source, teacher_matrix, word_matrix
from mkd.models.students.vocab import WordVocab
from mkd.tasks.task import Example, TaskSpec

EMBEDDING_KEY = "embedding.weight"


class SubwordTokens:
    """The teacher's tokenizer as a word-level student's vocabulary: no [CLS]/[SEP], mask as its [MASK]."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.unk_id = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else self.pad_id
        self.mask = getattr(tokenizer, "mask_token", None) or tokenizer.unk_token or ""

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode_texts(self, texts: Sequence[str], max_length: int, chunk: int = 4096) -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, len(texts), chunk):
            part = [t.replace(AUG_MASK, self.mask) for t in texts[start: start + chunk]]
            enc = self.tokenizer(part, add_special_tokens=False, truncation=True, max_length=max_length,
                                 return_attention_mask=False, return_token_type_ids=False)
            out += [ids or [self.unk_id] for ids in enc["input_ids"]]
        return out

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def load(cls, folder: Path) -> SubwordTokens:
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(folder, use_fast=True, trust_remote_code=False))
        except (OSError, ValueError) as e:
            raise MkdError(f"cannot read the tokenizer in {folder} ({str(e)[:80]})", "restore that model folder") \
                from None


Tokens = WordVocab | SubwordTokens


def lstm(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.LSTM:
    """A BiLSTM whose output (both directions) is hidden_size wide."""
    return nn.LSTM(input_size, max(1, hidden_size // 2), num_layers=num_layers, batch_first=True,
                   bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)


def run_lstm(layer: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (B, T, H) with zeros at padding, last hidden state of both directions (B, H)); padding
    never enters the recurrence. On CPU the padded path (oneDNN kernels, faster than packed sequences
    in fp32 and bf16: benchmarks/lstm_path.py; it is also what ONNX export traces); on a GPU cuDNN's
    packed sequences over the module's flat weights. Both compute the same function (to 1e-5)."""
    return packed_lstm(layer, x, mask) if x.is_cuda else padded_lstm(layer, x, mask)


def _lengths(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(1).clamp(min=1)


def _last_states(out: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Forward: the output at the last real token; backward: at the first (both are h_n of the top layer)."""
    half = out.shape[-1] // 2
    last = out[..., :half].gather(1, (counts - 1).view(-1, 1, 1).expand(-1, 1, half)).squeeze(1)
    return torch.cat([last, out[:, 0, half:]], dim=-1)


def packed_lstm(layer: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """run_lstm on packed sequences: the reference path (and the one of checkpoints before the padded one).

    The last hidden states are read from the outputs because ONNX export of a packed LSTM's h_n fails."""
    counts = _lengths(mask)
    packed = pack_padded_sequence(x, counts.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = layer(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, _last_states(out, counts)


def reverse_within(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Each row's first counts[b] positions in reverse order, padding left where it is (its own inverse).

    Whole rows of the flattened (B*T, D) batch are picked (index_select, whose backward is index_add):
    forward and backward 1.7x (fp32) to 4x (bf16) faster than a gather over every element
    (benchmarks/lstm_parts.py)."""
    b, n, d = x.shape
    t = torch.arange(n, device=x.device).unsqueeze(0)
    c = counts.unsqueeze(1)
    index = torch.where(t < c, c - 1 - t, t) + n * torch.arange(b, device=x.device).unsqueeze(1)
    return x.reshape(b * n, d).index_select(0, index.reshape(-1)).view(b, n, d)


def _direction(layer: nn.LSTM, k: int, suffix: str, x: torch.Tensor) -> torch.Tensor:
    """One direction of layer k of `layer` over padded x (batch first), with the module's own weights."""
    weights = [getattr(layer, f"{name}_l{k}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    zeros = x.new_zeros(1, x.shape[0], layer.hidden_size)
    return torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, False, False, True)[0]


def padded_lstm(layer: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """run_lstm on the padded batch: the forward direction reads it as it is (padding only follows the
    real tokens), the backward direction reads every row reversed within its own length (padding still
    at the end), so no real position ever sees padding. Same weights and names as the packed path."""
    counts = _lengths(mask)
    valid = (torch.arange(x.shape[1], device=x.device).unsqueeze(0) < counts.unsqueeze(1)).unsqueeze(-1)
    out = x
    for k in range(layer.num_layers):
        if k and layer.dropout and layer.training:
            out = dropout(out, layer.dropout, True)
        forward = _direction(layer, k, "", out)
        backward = reverse_within(_direction(layer, k, "_reverse", reverse_within(out, counts)), counts)
        out = torch.cat([forward, backward], dim=-1) * valid
    return out, _last_states(out, counts)


class MLPHeads(nn.Module):
    """One small classifier per task (Linear-ReLU-Linear); input widths may differ by task."""

    def __init__(self, specs: dict[str, TaskSpec], in_dims: dict[str, int], hidden: int, dropout: float) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({
            t: nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dims[t], hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, s.num_outputs))
            for t, s in sorted(specs.items())})

    def forward(self, task: str, features: torch.Tensor) -> torch.Tensor:
        return self.heads[task](features)


class WordStudent(MkdModel):
    """Base of the LSTM students: an embedding table over word (or teacher subword) ids, then
    the architecture's shared layers and one head per task."""

    SETTINGS: ClassVar[tuple[str, ...]] = ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "dropout",
                                           "max_length", "freeze_embeddings")
    ACCEPTS = frozenset({"embeddings", "embedding_dim", "freeze_embeddings", "pooling", "num_layers", "min_count"})
    """The student.* settings of these kinds besides the common ones (students/__init__.py)."""
    EXCLUSIVE = frozenset()
    """Its settings that another kind refuses (it would train without them)."""

    @classmethod
    def check(cls, cfg: StudentConfig, fetch_missing: bool = False) -> None:
        """Its settings, and the word-vector asset it reads, before any work."""
        check_source(cfg.embeddings)
        if cfg.pooling != "mean":
            raise MkdError(f"student.pooling '{cfg.pooling}' applies to the transformer student only",
                           f"remove it for student.type {cfg.type} (it pools as its architecture says)")
        if cfg.embeddings in VECTORS:
            from mkd.assets import asset_path

            asset_path(cfg.embeddings, fetch_missing)
        width = WIDTHS.get(cfg.embeddings)
        if cfg.embedding_dim and width and cfg.embedding_dim != width:
            raise MkdError(f"student.embedding_dim is {cfg.embedding_dim}, but {cfg.embeddings} vectors have "
                           f"{width} dimensions", "remove student.embedding_dim (the vectors set it)")

    @classmethod
    def borrows(cls, cfg: StudentConfig) -> Borrow | None:
        """An encoder's input embeddings and tokenizer (`teacher`), or word vectors through it (`teacher-static`)."""
        if cfg.embeddings == "teacher":
            return Borrow("its input embeddings and tokenizer (student.embeddings: teacher)")
        if cfg.embeddings == "teacher-static":
            return Borrow("its word vectors (student.embeddings: teacher-static)", vectors_sources(cfg))
        return None

    def __init__(self, specs: dict[str, TaskSpec], tokens: Tokens, vocab_size: int, embedding_dim: int,
                 hidden_size: int = 300, num_layers: int = 1, dropout: float = 0.1, max_length: int = 128,
                 freeze_embeddings: bool = False, embeddings: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.specs = dict(specs)
        self.tokens = tokens
        self.vocab_size, self.embedding_dim = vocab_size, embedding_dim
        self.hidden_size, self.num_layers, self.dropout_p = hidden_size, num_layers, dropout
        self.max_length, self.freeze_embeddings = max_length, freeze_embeddings
        self.embedding_info = embeddings or {}
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=tokens.pad_id)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.dropout = Dropout(dropout)
        self.build_layers()

    def build_layers(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def embed(self, batch: dict[str, torch.Tensor], side: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """(dropped-out embeddings, boolean mask) of input_ids or input_ids_b."""
        mask = batch[f"attention_mask{side}"].bool()
        return self.dropout(self.embedding(batch[f"input_ids{side}"])), mask

    # ---- the MkdModel contract -------------------------------------------------------------
    def encode(self, spec: TaskSpec, examples: Sequence[Example], targets: Any = None) -> EncodedSplit:
        feats = {"input_ids": self.tokens.encode_texts([e.texts[0] for e in examples], self.max_length)}
        if spec.is_pair:
            feats["input_ids_b"] = self.tokens.encode_texts([e.texts[1] for e in examples], self.max_length)
        pad = self.tokens.pad_id
        return EncodedSplit(task=spec.name, task_type=spec.type, ids=[e.id for e in examples], features=feats,
                            pad_values={name: pad for name in feats}, labels=[e.label for e in examples],
                            targets=targets)

    def settings(self) -> dict[str, Any]:
        kind = "words" if isinstance(self.tokens, WordVocab) else "subword"
        return {"tokenizer": kind, "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers, "dropout": self.dropout_p,
                "max_length": self.max_length, "freeze_embeddings": self.freeze_embeddings,
                "embeddings": self.embedding_info}

    def save_extras(self, folder: Path) -> None:
        self.tokens.save(folder)

    @classmethod
    def build(cls, folder: Path, specs: dict[str, TaskSpec], settings: dict[str, Any]) -> WordStudent:
        """Rebuild from the folder: the vocabulary file must fit the saved embedding matrix."""
        tokens: Tokens = WordVocab.load(folder) if settings["tokenizer"] == "words" else SubwordTokens.load(folder)
        rows = _saved_rows(folder / "model.safetensors") or settings["vocab_size"]
        fits = len(tokens) == rows if isinstance(tokens, WordVocab) else len(tokens) <= rows
        if not fits or rows != settings["vocab_size"]:
            raise MkdError(f"the vocabulary in {folder} ({len(tokens)} tokens) does not match its embedding matrix "
                           f"({rows} rows)", "the vocabulary file belongs to another model: restore it or retrain")
        args = {k: settings[k] for k in cls.SETTINGS}
        return cls(specs, tokens, embeddings=settings.get("embeddings"), **args)

    @classmethod
    def from_config(cls, cfg: StudentConfig, specs: dict[str, TaskSpec], texts: Iterable[str],
                    encoder: EncoderSource | None, fetch_missing: bool = False) -> WordStudent:
        """A fresh student: vocabulary from `texts` (or the encoder's tokenizer) and its embeddings."""
        tokens: Tokens
        if cfg.embeddings == "teacher":
            assert encoder is not None  # build_student checks it
            matrix, tokenizer, info = teacher_matrix(encoder)
            tokens = SubwordTokens(tokenizer)
            described = {**info.as_dict(), "encoder": encoder.source.value}
        elif cfg.embeddings == "teacher-static":
            from mkd.models.students.teacher_vectors import teacher_word_matrix

            assert encoder is not None
            tokens = WordVocab.build(texts, cfg.min_count)
            matrix, described = teacher_word_matrix(encoder, tokens.words, cfg.embedding_dim)
        else:
            tokens = WordVocab.build(texts, cfg.min_count)
            matrix, info = word_matrix(cfg.embeddings, tokens.words, cfg.embedding_dim or 300, fetch_missing)
            described = info.as_dict()
        if cfg.embedding_dim and cfg.embedding_dim != matrix.shape[1] and cfg.embeddings != "teacher-static":
            # teacher-static: embedding_dim is a PCA width, capped at the encoder's own width
            raise MkdError(f"student.embedding_dim is {cfg.embedding_dim}, but {cfg.embeddings} vectors have "
                           f"{matrix.shape[1]} dimensions", "remove student.embedding_dim (the vectors set it)")
        model = cls(specs, tokens, matrix.shape[0], matrix.shape[1], cfg.hidden_size, cfg.num_layers, cfg.dropout,
                    cfg.max_length, cfg.freeze_embeddings, described)
        with torch.no_grad():
            model.embedding.weight.copy_(matrix)
        return model


def _saved_rows(path: Path) -> int | None:
    """Rows of the saved embedding matrix, read from the safetensors header (no weights loaded)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None  # load_model reports the missing file
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(f.get_slice(EMBEDDING_KEY).get_shape()[0]) if EMBEDDING_KEY in f.keys() else None  # noqa: SIM118
    except (SafetensorError, OSError, ValueError):
        return None  # load_model reports the damaged file
