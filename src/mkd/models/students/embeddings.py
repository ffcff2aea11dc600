"""The student's first layer: an embedding matrix for its vocabulary, from pretrained vectors or random.

Sources: `glove-6b-50d` and `spacy-en-md` (300-d) look each vocabulary word up; `teacher` takes the
encoder's own WordPiece input embeddings (the student then uses its tokenizer); `random` draws every
row; `teacher-static` computes each word's vector with an encoder (teacher_vectors.py, the static
student's vectors). Which encoder: borrow.py (the run's refined teacher, another mkd teacher, or the
base encoder `teacher.model`). Words without a vector get small random
vectors; the <pad> row is zero. Coverage is reported because a low one (a tokenization mismatch)
silently wastes the pretrained vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mkd.errors import MkdError, did_you_mean
from mkd.models.students.borrow import EncoderSource
from mkd.registry import Registry

MISSING_STD = 0.1
"""Standard deviation of the random rows of words without a vector (and of `random` embeddings)."""

Lookup = Callable[[Sequence[str], bool], tuple[np.ndarray, np.ndarray]]
VECTORS: Registry[Lookup] = Registry("word-vector source")
SOURCES = ("teacher", "teacher-static", "random")  # besides the VECTORS entries
WIDTHS = {"glove-6b-50d": 50, "spacy-en-md": 300}
"""The width of each VECTORS source, so a conflicting student.embedding_dim is refused before any work."""


@dataclass
class EmbeddingInfo:
    source: str
    dim: int
    words: int
    found: int

    @property
    def coverage(self) -> float:
        return self.found / self.words if self.words else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "coverage": round(self.coverage, 4)}


def check_source(source: str) -> None:
    """Fail before any work on a misspelt source, naming the nearest valid one."""
    names = [*VECTORS.names(), *SOURCES]
    if source not in names:
        raise MkdError(f"unknown student.embeddings '{source}'", did_you_mean(source, names))


@VECTORS.register("glove-6b-50d")
def _glove(words: Sequence[str], fetch_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    from mkd.assets import asset_path

    folder = asset_path("glove-6b-50d", fetch_missing)
    index = pq.read_table(folder / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    row = {w: i for i, w in enumerate(index)}
    table = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")
    return _gather(table, [row.get(w, -1) for w in words])


@VECTORS.register("spacy-en-md")
def _spacy(words: Sequence[str], fetch_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    from spacy.strings import hash_string
    from spacy.vectors import Vectors

    from mkd.assets import asset_path

    vectors = Vectors()
    vectors.from_disk(asset_path("spacy-en-md", fetch_missing) / "vocab")  # vectors only, not the pipeline
    return _gather(np.asarray(vectors.data), [vectors.key2row.get(hash_string(w), -1) for w in words])


def _gather(table: np.ndarray, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    found = np.array([r >= 0 for r in rows], dtype=bool)
    out = np.zeros((len(rows), table.shape[1]), dtype=np.float32)
    if found.any():
        out[found] = np.asarray(table[[r for r in rows if r >= 0]], dtype=np.float32)
    return out, found


def word_matrix(source: str, words: Sequence[str], dim: int, fetch_missing: bool = False,
                pad_id: int = 0, skip: int = 2) -> tuple[torch.Tensor, EmbeddingInfo]:
    """(len(words), d) matrix for a word vocabulary; the first `skip` words (<pad>, <unk>) are never
    looked up. Random rows come from torch's global generator, so the recipe's seed fixes them."""
    check_source(source)
    if source in ("teacher", "teacher-static"):
        raise ValueError("teacher embeddings come with the teacher's tokenizer: use teacher_matrix")
    if source == "random":
        matrix = torch.randn(len(words), dim) * MISSING_STD
        info = EmbeddingInfo(source, dim, len(words) - skip, 0)
    else:
        vectors, found = VECTORS.get(source)(words, fetch_missing)
        found[:skip] = False
        matrix = torch.from_numpy(vectors)
        missing = torch.from_numpy(~found)
        matrix[missing] = torch.randn(int(missing.sum()), matrix.shape[1]) * MISSING_STD
        info = EmbeddingInfo(source, matrix.shape[1], len(words) - skip, int(found.sum()))
    matrix[pad_id] = 0.0
    return matrix, info


def teacher_matrix(source: EncoderSource) -> tuple[torch.Tensor, Any, EmbeddingInfo]:
    """An encoder's input word embeddings and its tokenizer: read from its safetensors when it has a folder
    (nothing else loaded), else from the loaded encoder."""
    from safetensors import safe_open

    folder = source.folder
    path = folder / "model.safetensors" if folder is not None else None
    if path is not None and path.is_file():
        with safe_open(str(path), framework="pt") as f:
            keys = sorted((k for k in f.keys() if k.endswith("word_embeddings.weight")), key=len)  # noqa: SIM118
            if not keys:
                raise MkdError(f"{path} has no word_embeddings.weight", "use another student.embeddings source")
            matrix = f.get_tensor(keys[0]).float().clone()
        tokenizer = source.tokenizer()
    else:
        encoder, tokenizer = source.load()
        matrix = encoder.get_input_embeddings().weight.detach().float().clone()
    if len(tokenizer) > matrix.shape[0]:
        raise MkdError(f"the tokenizer of {source.describe()} ({len(tokenizer)} tokens) does not fit its embeddings "
                       f"({matrix.shape[0]} rows)", "retrain or restore that folder")
    if tokenizer.pad_token_id is not None:
        matrix[tokenizer.pad_token_id] = 0.0
    return matrix, tokenizer, EmbeddingInfo("teacher", matrix.shape[1], len(tokenizer), len(tokenizer))
