"""Tang et al.'s rule-based augmentation (MKD.md, stage 2): masking, POS-guided replacement, n-grams.

Per word, u ~ U[0,1]: u < p_mask -> AUG_MASK; p_mask <= u < p_mask + p_pos -> another word with
the same fine-grained POS tag, drawn from that tag's unigram distribution over the task's training
texts. Then, with probability p_ng, only a random n-gram (n ~ U{1..5}) is kept. Each example gets
n_iter tries; copies equal to the original or to an earlier copy are dropped. Sentence pairs cycle:
sentence 1 only, sentence 2 only, both.

Every example draws from its own generator seeded by (seed, task, example index), so the result
does not depend on batching, on other examples or on which tasks run. The tagger is injectable
(texts -> [(words, tags)]) so tests need no spaCy; the default is spaCy's en_core_web_md.
"""

from __future__ import annotations

import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mkd.config import AugmentConfig
from mkd.data.encode import AUG_MASK
from mkd.tasks.task import Example

Tagged = tuple[list[str], list[str]]
Tagger = Callable[[Sequence[str]], list[Tagged]]
MAX_NGRAM = 5
PAIR_MODES = ((0,), (1,), (0, 1))  # which sentences of a pair one iteration augments, in turn
SPACY_DISABLE = ["parser", "ner", "lemmatizer"]
MAX_TAG_CHARS = 20_000


def default_n_iter(cfg: AugmentConfig, is_pair: bool) -> int:
    """Tang's values when the recipe leaves n_iter unset: 20 copies per single text, 10 per pair."""
    if cfg.n_iter is not None:
        return cfg.n_iter
    return 10 if is_pair else 20


def spacy_tagger(fetch_missing: bool = False, batch_size: int = 256) -> Tagger:
    """spaCy en_core_web_md (the `spacy-en-md` asset) without parser, NER and lemmatizer."""
    import spacy

    from mkd.assets import asset_path

    return nlp_tagger(spacy.load(asset_path("spacy-en-md", fetch_missing), disable=SPACY_DISABLE), batch_size)


def nlp_tagger(nlp, batch_size: int = 256) -> Tagger:
    """A tagger from a spaCy pipeline. Only the first MAX_TAG_CHARS characters of a text are tagged
    (and so augmented): spaCy refuses texts over nlp.max_length, and no student reads that far."""

    def tag(texts: Sequence[str]) -> list[Tagged]:
        out: list[Tagged] = []
        for doc in nlp.pipe((t[:MAX_TAG_CHARS] for t in texts), batch_size=batch_size):
            toks = [t for t in doc if not t.is_space]
            # interned: a big task's tagged words then cost a pointer each, not a string each
            out.append(([sys.intern(t.text) for t in toks], [sys.intern(t.tag_) for t in toks]))
        return out

    return tag


class PosTable:
    """Unigram distribution of words per fine-grained POS tag; sampling is O(log V) per draw."""

    def __init__(self, tagged: Sequence[Tagged]) -> None:
        counts: dict[str, Counter[str]] = {}
        for words, tags in tagged:
            for w, t in zip(words, tags, strict=True):
                counts.setdefault(t, Counter())[w] += 1
        self._words: dict[str, list[str]] = {}
        self._cum: dict[str, np.ndarray] = {}
        for t, c in counts.items():
            items = sorted(c.items())  # sorted: the table does not depend on text order
            self._words[t] = [w for w, _ in items]
            self._cum[t] = np.cumsum([n for _, n in items], dtype=np.float64)

    def tags(self) -> list[str]:
        return sorted(self._words)

    def words(self, tag: str) -> list[str]:
        return self._words.get(tag, [])

    def sample(self, tag: str, avoid: str, rng: np.random.Generator, tries: int = 10) -> str:
        """Another word with this tag (not `avoid`), drawn by frequency; `avoid` when there is none."""
        words = self._words.get(tag)
        if not words or (len(words) == 1 and words[0] == avoid):
            return avoid
        cum = self._cum[tag]
        for _ in range(tries):
            w = words[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(words) - 1)]
            if w != avoid:
                return w
        return avoid


def augment_words(words: Sequence[str], tags: Sequence[str], table: PosTable, cfg: AugmentConfig,
                  rng: np.random.Generator) -> list[str]:
    """One application of the rules to one sentence."""
    u = rng.random(len(words))
    out: list[str] = []
    for w, t, ui in zip(words, tags, u, strict=True):
        if ui < cfg.p_mask:
            out.append(AUG_MASK)
        elif ui < cfg.p_mask + cfg.p_pos:
            out.append(table.sample(t, w, rng))
        else:
            out.append(w)
    if out and rng.random() < cfg.p_ng:
        n = min(int(rng.integers(1, MAX_NGRAM + 1)), len(out))
        start = int(rng.integers(0, len(out) - n + 1))
        out = out[start : start + n]
    return out


def example_rng(seed: int, task: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(task.encode("utf-8")), index])


def augment_example(example: Example, tagged: Sequence[Tagged], table: PosTable, cfg: AugmentConfig,
                    n_iter: int, rng: np.random.Generator) -> list[Example]:
    """Up to n_iter distinct copies of one example (ids f"{id}#aug{k}", k the iteration).

    A sentence left as it was (untouched, or every rule missed) keeps its original text, so a copy
    equal to the original is recognised and dropped."""
    seen = {tuple(example.texts)}
    out: list[Example] = []
    for k in range(n_iter):
        which = PAIR_MODES[k % 3] if len(tagged) == 2 else tuple(range(len(tagged)))
        texts = list(example.texts)
        for i in which:
            words = augment_words(*tagged[i], table, cfg, rng)
            if words != tagged[i][0]:
                texts[i] = " ".join(words)
        key = tuple(texts)
        if key in seen:
            continue
        seen.add(key)
        out.append(Example(f"{example.id}#aug{k}", key, None))
    return out


@dataclass
class TaskAugmenter:
    """The augmentation of one task's training examples (tag once, then stream the copies)."""

    task: str
    examples: Sequence[Example]
    cfg: AugmentConfig
    seed: int
    tagger: Tagger

    def __post_init__(self) -> None:
        n_texts = len(self.examples[0].texts) if self.examples else 1
        flat = [e.texts[i] for e in self.examples for i in range(n_texts)]
        tagged = self.tagger(flat) if flat else []
        self.tagged = [tagged[j * n_texts : (j + 1) * n_texts] for j in range(len(self.examples))]
        self.table = PosTable(tagged)
        self.is_pair = n_texts == 2

    def per_example(self) -> int:
        n = default_n_iter(self.cfg, self.is_pair) if self.cfg.enabled else 0
        if self.cfg.max_per_task is not None and self.examples:  # spread a cap over all examples
            n = min(n, -(-self.cfg.max_per_task // len(self.examples)))
        return n

    def __iter__(self) -> Iterator[tuple[Example, list[Example]]]:
        """(original, its augmented copies) for every example, in order; honours max_per_task."""
        n_iter, left = self.per_example(), self.cfg.max_per_task
        for index, (example, tagged) in enumerate(zip(self.examples, self.tagged, strict=True)):
            copies: list[Example] = []
            if n_iter and (left is None or left > 0):
                copies = augment_example(example, tagged, self.table, self.cfg, n_iter,
                                         example_rng(self.seed, self.task, index))
                if left is not None:
                    copies, left = copies[:left], left - min(left, len(copies))
            yield example, copies
