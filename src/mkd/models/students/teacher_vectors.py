"""Static vectors distilled from the run's refined teacher encoder (model2vec-style).

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

The result is cached under the run's scratch folder (`.work/teacher-vectors/`), keyed by the
teacher's weights, the inputs and the settings, so students of one run share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mkd.errors import MkdError
from mkd.io import atomic_path

SIF_A = 1e-3
"""SIF's a: tokens much more frequent than a are damped ("the", "."), rare ones keep their vector."""
BATCH = 256
MAX_PIECES = 16  # a word longer than this in subword pieces is cut (its vector: the first pieces)


def _cache_key(teacher_folder: Path, inputs: Sequence[Sequence[int]], dim: int) -> str:
    weights = Path(teacher_folder) / "model.safetensors"  # mkd teachers and base encoders alike (safetensors only)
    stat = weights.stat()
    h = hashlib.sha256(f"v1|{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dim}|".encode())
    h.update(json.dumps([list(x) for x in inputs]).encode())
    return h.hexdigest()[:24]


def is_mkd_folder(folder: Path) -> bool:
    return (Path(folder) / "mkd.json").is_file()


def _cache_root(teacher_folder: Path) -> Path:
    """An mkd teacher's vectors stay in its run (`.work/teacher-vectors/`); a base encoder's (a Hugging Face
    folder, often a shared asset) in `$MKD_HOME/teacher-vectors/`, shared by every run on that encoder."""
    if is_mkd_folder(teacher_folder):
        return Path(teacher_folder).resolve().parent / ".work" / "teacher-vectors"
    from mkd.assets import cache_dir

    return cache_dir() / "teacher-vectors"


def load_teacher_encoder(teacher_folder: Path) -> tuple[torch.nn.Module, object]:
    """(encoder, fast tokenizer) of an mkd teacher folder (or any folder whose model has `.encoder`), or of a
    Hugging Face folder: the base encoder a teacher was refined from (student.vectors_from: base)."""
    from mkd.models.base import rebuild
    from mkd.models.teacher import TeacherModel  # noqa: F401  (registers "teacher")

    if not (Path(teacher_folder) / "model.safetensors").is_file():
        raise MkdError(f"no teacher weights in {teacher_folder} for teacher-distilled vectors",
                       "run mkd teach first, or choose glove-6b-50d, spacy-en-md or random embeddings")
    if not is_mkd_folder(teacher_folder) and (Path(teacher_folder) / "config.json").is_file():
        from mkd.models.pretrained import load_encoder

        return load_encoder(str(teacher_folder))
    model = rebuild(teacher_folder)
    encoder, tokenizer = getattr(model, "encoder", None), getattr(model, "tokenizer", None)
    if encoder is None or tokenizer is None:
        raise MkdError(f"{teacher_folder} holds a {model.arch}, not a transformer teacher",
                       "point the run at a teacher folder written by mkd teach")
    return encoder, tokenizer


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


def teacher_vectors(teacher_folder: Path, inputs: Sequence[Sequence[int]], dim: int,
                    encoder_and_tokenizer: tuple[torch.nn.Module, object] | None = None) -> np.ndarray:
    """PCA'd teacher vectors of `inputs` (lists of the teacher tokenizer's ids, no special tokens),
    cached in the run's scratch folder (the folder above the teacher's)."""
    cache = _cache_root(teacher_folder) / f"{_cache_key(teacher_folder, inputs, dim)}.npy"
    if cache.is_file():
        try:
            return np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged cache is recomputed
    encoder, tokenizer = encoder_and_tokenizer or load_teacher_encoder(teacher_folder)
    vectors = pca(encode_pieces(encoder, tokenizer, inputs), dim)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.save(f, vectors, allow_pickle=False)
    return vectors


def teacher_word_matrix(teacher_folder: Path, words: Sequence[str], dim: int | None, skip: int = 2
                        ) -> tuple[torch.Tensor, dict[str, object]]:
    """(len(words), dim) table of a word vocabulary: each word through the teacher as its subword
    pieces. The first `skip` words (<pad>, <unk>) are not words: <pad> is zero, <unk> the vector of
    the teacher's own unknown token. Every word gets a vector (coverage 1)."""
    encoder, tokenizer = load_teacher_encoder(teacher_folder)
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0  # type: ignore[attr-defined]
    pieces = tokenizer(list(words[skip:]), add_special_tokens=False,  # type: ignore[operator]
                       return_attention_mask=False)["input_ids"]
    inputs = [[unk], *[p or [unk] for p in pieces]]
    dim = min(dim or encoder.config.hidden_size, encoder.config.hidden_size)  # type: ignore[union-attr]
    vectors = teacher_vectors(teacher_folder, inputs, dim, (encoder, tokenizer))
    matrix = torch.zeros(len(words), dim)
    matrix[skip - 1:] = torch.from_numpy(vectors)
    matrix[0] = 0.0
    info = {"source": "teacher-static", "dim": dim, "words": len(words) - skip, "found": len(words) - skip,
            "coverage": 1.0}
    return matrix, info
