"""Static vectors distilled from an encoder (model2vec-style): the run's refined teacher, another refined
mkd teacher, or the base encoder (borrow.py says which).

Each input (a vocabulary token for the static student, a word for the LSTM students' word table)
goes through the teacher's encoder as `[CLS] pieces [SEP]`; its output is mean-pooled over those
positions (the teacher's own mean pooling). The vectors are then centred and projected on their
first `dim` principal components (no projection when dim >= the encoder width), and optionally
scaled by SIF weights a / (a + p(token)), p the token's frequency in the run's transfer set.

Why not model2vec's `distill`: model2vec 0.10 imports fine with transformers 5.24, but its
`distill` rewrites the tokenizer (it drops tokens and renumbers the vocabulary, so its ids are no
longer the teacher's), its SIF weights assume a frequency-sorted vocabulary (WordPiece is not), and
the static student is core mkd, which must not depend on the library (its `distill` extra pins
transformers < 5.4). The steps are few: they are here, on the same encoder the teacher saved.

The result is cached under a run's scratch folder (`.work/teacher-vectors/`), keyed by the encoder's
weights, the inputs and the settings, so students of one run share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import torch

from mkd.io import atomic_path
from mkd.models.students.borrow import EncoderSource

SIF_A = 1e-3
"""SIF's a: tokens much more frequent than a are damped ("the", "."), rare ones keep their vector."""
BATCH = 256
MAX_PIECES = 16  # a word longer than this in subword pieces is cut (its vector: the first pieces)


def _cache_key(source: EncoderSource, inputs: Sequence[Sequence[int]], dim: int) -> str:
    h = hashlib.sha256(f"v2|{source.stamp()}|{dim}|".encode())
    h.update(json.dumps([list(x) for x in inputs]).encode())
    return h.hexdigest()[:24]


@torch.inference_mode()
def encode_pieces(encoder: torch.nn.Module, tokenizer: object, inputs: Sequence[Sequence[int]]) -> np.ndarray:
    """(len(inputs), hidden) mean-pooled encoder outputs of `[CLS] pieces [SEP]`, in batches of
    similar length (padding is masked out of the mean)."""
    encoder.eval()
    before, after = _special_template(tokenizer)
    wrapped = [[*before, *list(x)[:MAX_PIECES], *after] for x in inputs]
    pad = tokenizer.pad_token_id or 0  # type: ignore[attr-defined]
    out = np.zeros((len(wrapped), encoder.config.hidden_size), dtype=np.float32)  # type: ignore[union-attr]
    order = sorted(range(len(wrapped)), key=lambda i: len(wrapped[i]))
    for start in range(0, len(order), BATCH):
        rows = order[start: start + BATCH]
        width = max(len(wrapped[i]) for i in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            ids[j, : len(wrapped[i])] = torch.tensor(wrapped[i])
            mask[j, : len(wrapped[i])] = 1
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        out[rows] = ((hidden * m).sum(1) / m.sum(1)).numpy()
    return out


def _special_template(tokenizer: object) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a text ([CLS] / [SEP], <s> / </s>, ...),
    read off one encoded word (transformers 5 has no build_inputs_with_special_tokens)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]  # type: ignore[operator]
    for start in range(len(full) - len(plain) + 1):
        if full[start: start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []


def pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Centred, projected on the first `dim` principal components (sign fixed: deterministic)."""
    centred = vectors - vectors.mean(0, keepdims=True)
    if dim >= vectors.shape[1]:
        return centred.astype(np.float32)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    comps = vt[:dim]
    comps *= np.where(comps[np.arange(dim), np.abs(comps).argmax(1)] < 0, -1.0, 1.0)[:, None]
    return (centred @ comps.T).astype(np.float32)


def sif_weights(counts: np.ndarray) -> np.ndarray:
    """a / (a + p) per row from token counts (p = count / total); unseen rows weigh 1."""
    total = max(float(counts.sum()), 1.0)
    return (SIF_A / (SIF_A + counts / total)).astype(np.float32)


def teacher_vectors(source: EncoderSource, inputs: Sequence[Sequence[int]], dim: int,
                    encoder_and_tokenizer: tuple[torch.nn.Module, object] | None = None) -> np.ndarray:
    """PCA'd encoder vectors of `inputs` (lists of the encoder tokenizer's ids, no special tokens), cached
    (EncoderSource.cache_dir)."""
    cache = source.cache_dir() / f"{_cache_key(source, inputs, dim)}.npy"
    if cache.is_file():
        try:
            return np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged cache is recomputed
    encoder, tokenizer = encoder_and_tokenizer or source.load()
    vectors = pca(encode_pieces(encoder, tokenizer, inputs), dim)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.save(f, vectors, allow_pickle=False)
    return vectors


def teacher_word_matrix(source: EncoderSource, words: Sequence[str], dim: int | None, skip: int = 2
                        ) -> tuple[torch.Tensor, dict[str, object]]:
    """(len(words), dim) table of a word vocabulary: each word through the encoder as its subword
    pieces. The first `skip` words (<pad>, <unk>) are not words: <pad> is zero, <unk> the vector of
    the encoder's own unknown token. Every word gets a vector (coverage 1)."""
    encoder, tokenizer = source.load()
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0  # type: ignore[attr-defined]
    pieces = tokenizer(list(words[skip:]), add_special_tokens=False,  # type: ignore[operator]
                       return_attention_mask=False)["input_ids"]
    inputs = [[unk], *[p or [unk] for p in pieces]]
    dim = min(dim or encoder.config.hidden_size, encoder.config.hidden_size)  # type: ignore[union-attr]
    vectors = teacher_vectors(source, inputs, dim, (encoder, tokenizer))
    matrix = torch.zeros(len(words), dim)
    matrix[skip - 1:] = torch.from_numpy(vectors)
    matrix[0] = 0.0
    info = {"source": "teacher-static", "encoder": source.source.value, "dim": dim, "words": len(words) - skip,
            "found": len(words) - skip, "coverage": 1.0}
    return matrix, info
