"""Word ids for the word-level students: one regex pass over a whole batch, exact or not used.

A word-level student's tokenizer.json (mkd.models.students.vocab.word_tokenizer) is a `tokenizers`
pipeline: replace the augmentation's mask, read a blank text as <unk>, lowercase, split by a regex,
look words up. `tokenizers` runs it text by text, and its regex split is most of the cost; tokie
does not read WordLevel models. The same split is Python's `re` with the same pattern wherever
\\w, \\s (so \\b) and lowercasing mean the same in both engines: on ASCII, and on each other character
that splits and lowercases alike in both (`safe_characters`: checked one by one when the tokenizer is
made, accented Latin letters and typographic punctuation among them). So a batch is joined with a
separator (NUL, which the pattern reads as a token of its own), lowercased and split in one call,
and its words looked up in one pass. Texts with any other character, or with the separator, go
through `tokenizers`. The result is checked against `tokenizers` like tokie's (mkd.serving.fast_tokens).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mkd.serving.token_ids import Ragged, ReferenceIds, _ragged

SEP = "\x00"
MASK, UNK = "[MASK]", "<unk>"
CHUNK_CACHE = 200_000  # whitespace-free chunks whose ids are remembered (then forgotten all at once)
NORMALIZERS = [{"type": "Replace", "pattern": {"String": MASK}, "content": f" {UNK} "},
               {"type": "Replace", "pattern": {"Regex": "\\A[\\s\\x1c-\\x1f]*\\z"}, "content": UNK},
               {"type": "Lowercase"}]
"""The only normalizer this path reproduces (vocab._pipeline's)."""
CANDIDATES = (*range(0x80, 0x250), *range(0x2000, 0x2070), 0x20AC)
"""Characters beyond ASCII that may take the fast path (Latin-1, Latin Extended A/B, punctuation, euro)."""


class FastWords:
    """A WordLevel tokenizer.json with mkd's word pipeline, as one regex pass per batch."""

    name = "regex batches"

    def __init__(self, tokenizer_json: str, max_length: int | None, unk_id: int | None) -> None:
        doc = json.loads(tokenizer_json)
        model, split = doc.get("model") or {}, doc.get("pre_tokenizer") or {}
        normalizers = (doc.get("normalizer") or {}).get("normalizers")
        if model.get("type") != "WordLevel" or normalizers != NORMALIZERS or split.get("type") != "Split" \
                or not split.get("invert") or split.get("behavior") != "Removed" or "Regex" not in split["pattern"]:
            raise ValueError("not mkd's word pipeline (WordLevel, mask/blank/lowercase, a regex split)")
        self.pattern = re.compile(split["pattern"]["Regex"])
        self.unk = int(model["vocab"][model["unk_token"]])
        self.index: dict[str, int] = {**model["vocab"], SEP: -1}
        self.chunks: dict[str, tuple[int, ...]] = {}
        self.max_length, self.unk_id = max_length, unk_id
        self.reference = ReferenceIds(tokenizer_json, max_length, unk_id)
        safe = safe_characters(self.reference.tokenizer, self._words)
        self.other = re.compile("[^\x00-\x7f" + "".join(re.escape(c) for c in safe) + "]")

    def _words(self, text: str) -> list[str]:
        return self.pattern.findall(text.replace(MASK, f" {UNK} ").lower())

    def __call__(self, texts: Sequence[str]) -> Ragged:
        texts = list(texts)
        joined = f" {SEP} ".join(texts)
        if joined.count(SEP) != len(texts) - 1 or (not joined.isascii() and self.other.search(joined)):
            return self._mixed(texts)
        return self._split_joined(joined)

    def _chunk_ids(self, chunk: str) -> tuple[int, ...]:
        """The ids of one whitespace-free chunk (remembered: words repeat, the regex is most of the cost)."""
        if len(self.chunks) >= CHUNK_CACHE:
            self.chunks.clear()
        get, unk = self.index.get, self.unk
        if chunk.isalnum():  # one word: the pattern's \w is str.isalnum or "_", so it matches the whole chunk
            ids = self.chunks[chunk] = (get(chunk, unk),)
        else:
            ids = self.chunks[chunk] = tuple(get(w, unk) for w in self.pattern.findall(chunk))
        return ids

    def _split_joined(self, joined: str) -> Ragged:
        """The ids of texts joined by SEP (checked: only safe characters, SEP only between texts). No match of
        the pattern holds whitespace, and \\b reads whitespace and a chunk's end alike, so the text is split
        at whitespace first (str.split and the regex's \\s: the same characters) and each chunk's ids
        looked up, the regex running on chunks not seen before only."""
        flat: list[int] = []
        add, known, fresh = flat.extend, self.chunks.get, self._chunk_ids
        for chunk in joined.replace(MASK, f" {UNK} ").lower().split():
            got = known(chunk)
            add(fresh(chunk) if got is None else got)
        ids = np.array(flat, dtype=np.int64)
        seps = np.flatnonzero(ids == -1)
        bounds = np.concatenate([[-1], seps, [len(ids)]])
        lengths = np.diff(bounds) - 1
        ids = np.delete(ids, seps)
        if self.max_length is not None and len(lengths) and lengths.max() > self.max_length:
            starts = np.cumsum(lengths) - lengths
            keep = np.arange(len(ids)) - np.repeat(starts, lengths) < self.max_length
            ids, lengths = ids[keep], np.minimum(lengths, self.max_length)
        return _ragged(ids, lengths, self.unk_id)

    def _mixed(self, texts: list[str]) -> Ragged:
        """ASCII texts the fast way, the others through `tokenizers`, in input order."""
        fast = [SEP not in t and not self.other.search(t) for t in texts]
        rows: list[Any] = [None] * len(texts)
        for want, encode in ((True, lambda part: self._split_joined(f" {SEP} ".join(part))), (False, self.reference)):
            where = [i for i, f in enumerate(fast) if f == want]
            if where:
                for i, row in zip(where, encode([texts[i] for i in where]).rows(), strict=True):
                    rows[i] = row
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter((i for row in rows for i in row), dtype=np.int64, count=int(lengths.sum()))
        return Ragged(flat, lengths)


def safe_characters(tokenizer: Any, split: Any) -> list[str]:
    """The CANDIDATES that `tokenizers`' normalizer and pre-tokenizer treat as `split` (Python) does, in
    words, alone, doubled and beside clitics: the same tokens, the same lowercase."""
    normalize, pre = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    safe = []
    for c in map(chr, CANDIDATES):
        text = f"A{c}b {c} {c}{c}X n{c}t {c}'s x{c}"
        if [w for w, _ in pre(normalize(text))] == split(text):
            safe.append(c)
    return safe
