"""Tang et al.'s augmentation: rule rates, tag-preserving replacement, n-grams, pairs, seeds, dedup."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mkd.config import AugmentConfig
from mkd.data.augment import PosTable, TaskAugmenter, augment_example, augment_words, default_n_iter
from mkd.data.encode import AUG_MASK
from mkd.tasks.task import Example
from tests.tinyfix import SPECS, make_examples

VOCAB = [f"{c}{'x' * n}" for n in range(3) for c in "abcdefgh"]  # 8 words per length class


def fake_tag(word: str) -> str:
    """A deterministic fine-grained 'tag': the word's length (so a replacement must keep it)."""
    return f"L{len(word)}"


def fake_tagger(texts):
    return [(t.split(), [fake_tag(w) for w in t.split()]) for t in texts]


def _sentences(n: int, length: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(VOCAB, size=length)) for _ in range(n)]


TABLE = PosTable(fake_tagger([" ".join(s) for s in _sentences(200, 10, seed=1)]))


def test_mask_and_replacement_rates_match_the_settings():
    cfg = AugmentConfig(p_mask=0.1, p_pos=0.2, p_ng=0.0)
    rng = np.random.default_rng(0)
    counts: Counter[str] = Counter()
    for words in _sentences(3000, 10):
        out = augment_words(words, [fake_tag(w) for w in words], TABLE, cfg, rng)
        assert len(out) == len(words)
        for before, after in zip(words, out, strict=True):
            if after == AUG_MASK:
                counts["mask"] += 1
            elif after != before:
                counts["pos"] += 1
                assert fake_tag(after) == fake_tag(before)  # same fine-grained tag
            counts["all"] += 1
    assert counts["mask"] / counts["all"] == pytest.approx(0.1, abs=0.01)
    assert counts["pos"] / counts["all"] == pytest.approx(0.2, abs=0.01)


def test_ngram_rate_and_lengths():
    cfg = AugmentConfig(p_mask=0.0, p_pos=0.0, p_ng=0.25)
    rng = np.random.default_rng(1)
    lengths: Counter[int] = Counter()
    n = 4000
    for words in _sentences(n, 10, seed=2):
        out = augment_words(words, [fake_tag(w) for w in words], TABLE, cfg, rng)
        if len(out) < len(words):
            lengths[len(out)] += 1
            text, full = " " + " ".join(out) + " ", " " + " ".join(words) + " "
            assert text in full  # a contiguous n-gram of the sentence
    assert sum(lengths.values()) / n == pytest.approx(0.25, abs=0.03)
    assert set(lengths) == {1, 2, 3, 4, 5}
    for k in range(1, 6):  # n ~ U{1..5}
        assert lengths[k] / sum(lengths.values()) == pytest.approx(0.2, abs=0.05)
    short = [augment_words(["ab", "cd"], ["L2", "L2"], TABLE, AugmentConfig(p_ng=1.0, p_mask=0, p_pos=0), rng)
             for _ in range(200)]
    assert {len(s) for s in short} == {1, 2}  # clipped to the sentence length


def test_replacement_draws_from_the_tags_unigram_distribution():
    table = PosTable([(["a", "a", "a", "b", "c"], ["X", "X", "X", "X", "Y"])])
    rng = np.random.default_rng(3)
    draws = Counter(table.sample("X", "zz", rng) for _ in range(4000))
    assert draws["a"] / 4000 == pytest.approx(0.75, abs=0.03) and set(draws) == {"a", "b"}
    assert table.sample("X", "a", rng) == "b"  # "another" word
    assert table.sample("Y", "c", rng) == "c"  # no other word with that tag: kept
    assert table.sample("UNSEEN", "q", rng) == "q"


def test_pairs_cycle_first_second_both():
    ex = Example("p:1", ("aa bb cc", "dd ee"), 1)
    tagged = fake_tagger(ex.texts)
    copies = augment_example(ex, tagged, TABLE, AugmentConfig(p_mask=1.0, p_pos=0.0, p_ng=0.0), 9,
                             np.random.default_rng(0))
    masked_a, masked_b = " ".join([AUG_MASK] * 3), " ".join([AUG_MASK] * 2)
    assert [(c.id, c.texts) for c in copies] == [
        ("p:1#aug0", (masked_a, "dd ee")), ("p:1#aug1", ("aa bb cc", masked_b)), ("p:1#aug2", (masked_a, masked_b))
    ]  # later iterations repeat these and are dropped as duplicates
    assert all(c.label is None for c in copies)


def test_duplicates_of_the_original_and_of_each_other_are_dropped():
    ex = Example("s:1", ("aa bb",), 0)
    none = augment_example(ex, fake_tagger(ex.texts), TABLE, AugmentConfig(p_mask=0, p_pos=0, p_ng=0), 20,
                           np.random.default_rng(0))
    assert none == []
    one = Example("s:2", ("aa",), 0)
    copies = augment_example(one, fake_tagger(one.texts), TABLE, AugmentConfig(p_mask=0.5, p_pos=0, p_ng=0), 20,
                             np.random.default_rng(0))
    assert [c.texts for c in copies] == [(AUG_MASK,)]
    spec = SPECS["sent"]
    many = [c for _, cs in TaskAugmenter("sent", make_examples(spec, 50, 0), AugmentConfig(), 1, fake_tagger)
            for c in cs]
    assert len({c.id for c in many}) == len(many)
    by_source = Counter((c.id.split("#")[0], c.texts) for c in many)
    assert max(by_source.values()) == 1


def test_same_seed_same_set_and_defaults():
    spec, pair = SPECS["sent"], SPECS["nli"]
    examples = make_examples(spec, 40, 0)
    runs = [[(c.id, c.texts) for _, cs in TaskAugmenter("sent", examples, AugmentConfig(), seed, fake_tagger)
             for c in cs] for seed in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    # an example's copies do not depend on how the others were tagged or batched
    def chunked(texts):
        return [t for i in range(0, len(texts), 3) for t in fake_tagger(texts[i : i + 3])]
    again = [(c.id, c.texts) for _, cs in TaskAugmenter("sent", examples, AugmentConfig(), 7, chunked) for c in cs]
    assert again == runs[0]
    assert default_n_iter(AugmentConfig(), False) == 20 and default_n_iter(AugmentConfig(), True) == 10
    assert TaskAugmenter("nli", make_examples(pair, 5, 0), AugmentConfig(), 1, fake_tagger).per_example() == 10
    assert max(int(i.split("#aug")[1]) for i, _ in runs[0]) < 20


def test_cap_per_task_is_spread_over_examples():
    examples = make_examples(SPECS["sent"], 30, 0)
    aug = TaskAugmenter("sent", examples, AugmentConfig(max_per_task=45), 1, fake_tagger)
    copies = [(e.id, len(cs)) for e, cs in aug]
    assert sum(n for _, n in copies) <= 45
    assert sum(1 for _, n in copies if n) >= 20  # not all taken from the first few examples


@pytest.mark.real
def test_spacy_tagger_gives_fine_grained_tags():
    from mkd.data.augment import spacy_tagger

    tag = spacy_tagger()
    (words, tags), (words2, _) = tag(["The cats sat on the mat.", "  Two  spaces "])
    assert words == ["The", "cats", "sat", "on", "the", "mat", "."]
    assert tags[:3] == ["DT", "NNS", "VBD"]
    assert words2 == ["Two", "spaces"]
    examples = [Example(f"r:{i}", (t,), 0) for i, t in enumerate(["A good movie.", "A bad film.", "Great acting!"])]
    out = [c for _, cs in TaskAugmenter("r", examples, AugmentConfig(p_pos=0.5), 0, tag) for c in cs]
    assert out and all(c.id.startswith("r:") for c in out)
