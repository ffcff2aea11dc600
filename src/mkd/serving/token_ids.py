"""Token ids as serving reads them: every text's ids in one flat array (`Ragged`), and the reference
encoder (`tokenizers`) every fast path is checked against. The bottom of mkd.serving's tokenization:
fast_tokens and fast_words both build on it. Imports numpy and tokenizers only."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, pairwise
from typing import NamedTuple

import numpy as np


class Ragged(NamedTuple):
    """Every text's ids in one int64 array, and how many each text has (>= 1)."""

    ids: np.ndarray
    lengths: np.ndarray

    def starts(self) -> np.ndarray:
        out = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=out[1:])
        return out

    def rows(self) -> list[list[int]]:
        bounds = self.starts()
        flat = self.ids.tolist()
        return [flat[a:b] for a, b in pairwise(bounds.tolist())]

    def padded(self, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, attention mask), both (n, longest) int64, right-padded."""
        width = max(1, int(self.lengths.max())) if len(self.lengths) else 1
        mask = np.arange(width) < self.lengths[:, None]
        ids = np.full(mask.shape, pad_id, dtype=np.int64)
        ids[mask] = self.ids
        return ids, mask.astype(np.int64)


def _ragged(ids: np.ndarray, lengths: np.ndarray, unk_id: int | None) -> Ragged:
    """int64 ids with each empty text made one `unk_id` (when given)."""
    ids, lengths = ids.astype(np.int64, copy=False), lengths.astype(np.int64, copy=True)
    empty = np.flatnonzero(lengths == 0)
    if unk_id is not None and len(empty):
        starts = np.cumsum(lengths) - lengths
        ids = np.insert(ids, starts[empty], unk_id)
        lengths[empty] = 1
    return Ragged(ids, lengths)


class ReferenceIds:
    """`tokenizers`, no padding, truncated to max_length, without special tokens: the ids the models read."""

    name = "tokenizers"

    def __init__(self, tokenizer_json: str, max_length: int | None, unk_id: int | None) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_length, self.unk_id = max_length, unk_id

    def __call__(self, texts: Sequence[str]) -> Ragged:
        n = self.max_length
        rows = [e.ids[:n] for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        return _ragged(np.fromiter(chain.from_iterable(rows), dtype=np.int64), lengths, self.unk_id)
