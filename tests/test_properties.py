"""Property tests (hypothesis) on arbitrary Unicode: tokenization (the teacher's Hugging Face tokenizer
and the students' word vocabulary), augmentation, batching and the multi-task sampler never crash,
give the same ids every time, and truncate long inputs as configured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mkd.config import AugmentConfig, StudentConfig
from mkd.data.augment import MAX_TAG_CHARS, TaskAugmenter, nlp_tagger
from mkd.data.batch import EncodedSplit
from mkd.data.encode import AUG_MASK, encode_for_transformer
from mkd.data.sampler import MultiTaskSampler
from mkd.models.students.vocab import PAD, UNK, UNK_ID, WordVocab, tokenize
from mkd.tasks.task import Example
from mkd.train.loop import share
from tests.tinyfix import PAIR, SINGLE, SPECS, WORDS, write_tiny_bert

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# any Unicode text (no lone surrogates, which no UTF-8 file can hold), often mixed with known words,
# the mask token, emoji, combining marks and whitespace of every kind
pieces = st.one_of(st.text(max_size=12), st.sampled_from([*WORDS, AUG_MASK, "😀", "e\u0301", "İ", "\u2028", "\t",
                                                          "don't", "ﬁ", "\x00", "نص", "文字"]))
texts = st.lists(pieces, max_size=12).map(" ".join)
LONG = " ".join(["good"] * 3000) + " 😀" * 1000


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = write_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=16)
    return AutoTokenizer.from_pretrained(folder, use_fast=True)


def examples_of(values: list[str], pair: bool = False) -> list[Example]:
    return [Example(f"t:{i}", (v, v[::-1]) if pair else (v,), 0) for i, v in enumerate(values)]


# --------------------------------------------------------------------------- teacher tokenization


@FAST
@given(values=st.lists(texts, min_size=1, max_size=6).map(lambda v: [*v, LONG]), max_length=st.integers(8, 40),
       pair=st.booleans())
def test_teacher_tokenization_is_stable_and_truncated(tokenizer, values, max_length, pair):
    spec = PAIR if pair else SINGLE
    examples = examples_of(values, pair)
    enc = encode_for_transformer(tokenizer, spec, examples, max_length)
    again = encode_for_transformer(tokenizer, spec, examples, max_length, chunk=1)  # other batching
    assert enc.features == again.features and enc.ids == [e.id for e in examples]
    alone = [encode_for_transformer(tokenizer, spec, [e], max_length).features["input_ids"][0] for e in examples]
    assert alone == enc.features["input_ids"]  # an example's ids do not depend on its neighbours
    for ids, types in zip(enc.features["input_ids"], enc.features["token_type_ids"], strict=True):
        assert 2 <= len(ids) <= max_length and len(types) == len(ids)
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert all(0 <= i < len(tokenizer) for i in ids)
        assert ids.count(tokenizer.sep_token_id) == (2 if pair else 1)
    assert len(enc.features["input_ids"][-1]) == max_length  # the long input is cut at max_length
    masked = encode_for_transformer(tokenizer, spec, examples_of([f"good {AUG_MASK} movie"], pair), max_length)
    assert tokenizer.mask_token_id in masked.features["input_ids"][0]


@FAST
@given(a=texts.map(lambda t: t * 3), b=texts.map(lambda t: t * 2), max_length=st.integers(8, 20))
def test_long_pairs_are_cut_to_exactly_what_the_tokenizer_keeps(tokenizer, monkeypatch, a, b, max_length):
    """cut_long_pairs (done for long pairs only) gives the tokenizer's own longest-first truncation."""
    import mkd.data.encode

    monkeypatch.setattr(mkd.data.encode, "PAIR_CHARS_PER_TOKEN", 0)  # cut every pair
    cut = encode_for_transformer(tokenizer, PAIR, [Example("p", (a, b))], max_length).features
    plain = tokenizer([a], [b], truncation=True, max_length=max_length, return_attention_mask=False)
    assert cut == {"input_ids": plain["input_ids"], "token_type_ids": plain["token_type_ids"]}


def test_a_long_pair_costs_no_more_than_its_sides(tokenizer):
    """Left to the tokenizer, a pair of 1,500 words a side takes seconds and gigabytes (it combines every
    overflowing window of one side with every one of the other); cut first, it takes milliseconds."""
    import time

    side = " ".join(["good movie"] * 750)
    started = time.perf_counter()
    enc = encode_for_transformer(tokenizer, PAIR, [Example("p", (side, side[::-1]))] * 4, 8)
    assert time.perf_counter() - started < 2.0
    assert all(len(ids) == 8 for ids in enc.features["input_ids"])


# --------------------------------------------------------------------------- word vocabulary


@FAST
@given(values=st.lists(texts, min_size=1, max_size=8), max_length=st.integers(1, 30), min_count=st.integers(1, 2))
def test_word_vocabulary_is_stable_and_truncated(tmp_path_factory, values, max_length, min_count):
    vocab = WordVocab.build(values, min_count)
    assert vocab.words[:2] == [PAD, UNK] and len(set(vocab.words)) == len(vocab)
    assert WordVocab.build(values[::-1], min_count).words == vocab.words  # order of the texts does not matter
    folder = tmp_path_factory.mktemp("vocab")
    vocab.save(folder)
    loaded = WordVocab.load(folder)
    assert loaded.words == vocab.words
    for text in [*values, LONG]:
        tokens = tokenize(text)
        assert all(t and not any(c.isspace() for c in t) for t in tokens)
        assert all(t == AUG_MASK or t == t.lower() for t in tokens)
        ids = vocab.ids(text, max_length)
        assert ids == loaded.ids(text, max_length) == vocab.ids(text, max_length)
        assert 1 <= len(ids) <= max_length and all(0 < i < len(vocab) for i in ids)
        if min_count == 1 and text in values:  # every word it was built from is known (the mask is <unk>)
            assert [i == UNK_ID for i in ids] == [t in (AUG_MASK, UNK) for t in tokens[:max_length]] or not tokens
    assert len(vocab.ids(LONG, max_length)) == max_length


# --------------------------------------------------------------------------- augmentation


def whitespace_tagger(values):
    """A stand-in for spaCy: words split on whitespace, the tag is the word's first character class."""
    return [(v.split(), ["A" if w[:1].isalpha() else "D" if w[:1].isdigit() else "P" for w in v.split()])
            for v in values]


augment_settings = st.builds(
    lambda m, p, ng, n: AugmentConfig(p_mask=m, p_pos=min(p, 1 - m), p_ng=ng, n_iter=n),
    st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 4))


@FAST
@given(values=st.lists(texts, min_size=1, max_size=6), cfg=augment_settings, pair=st.booleans(),
       seed=st.integers(0, 2**31))
def test_augmentation_of_arbitrary_text(values, cfg, pair, seed):
    spec = SPECS["nli"] if pair else SPECS["sent"]
    examples = examples_of(values, pair)
    run = [(e, cs) for e, cs in TaskAugmenter(spec.name, examples, cfg, seed, whitespace_tagger)]
    again = [(e, cs) for e, cs in TaskAugmenter(spec.name, examples, cfg, seed, whitespace_tagger)]
    assert run == again  # the same seed gives the same set
    known = {w for e in examples for text in e.texts for w in text.split()} | {AUG_MASK}
    ids = set()
    for original, copies in run:
        seen = {original.texts}
        for copy in copies:
            head, _, k = copy.id.partition("#aug")
            assert head == original.id and int(k) < cfg.n_iter and copy.label is None
            assert copy.texts not in seen and len(copy.texts) == len(original.texts)
            seen.add(copy.texts)
            for before, after in zip(original.texts, copy.texts, strict=True):
                assert after == before or set(after.split()) <= known
        ids |= {c.id for c in copies}
    assert len(ids) == sum(len(cs) for _, cs in run)


def test_spacy_tags_at_most_max_tag_chars_of_a_huge_text():
    spacy = pytest.importorskip("spacy")
    tag = nlp_tagger(spacy.blank("en"))
    huge = "word " * 300_000  # 1.5 MB: over spaCy's own limit of 1,000,000 characters
    (words, tags), (small, _) = tag([huge, "two words"])
    assert 0 < len(words) <= MAX_TAG_CHARS // 5 + 1 and len(tags) == len(words)
    assert small == ["two", "words"]


# --------------------------------------------------------------------------- batching


ragged = st.lists(st.lists(st.integers(0, 50), max_size=9), min_size=1, max_size=12)


@FAST
@given(seqs=ragged, data=st.data(), pad=st.integers(0, 3), regression=st.booleans())
def test_collate_pads_masks_and_keeps_order(seqs, data, pad, regression):
    n = len(seqs)
    labels = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 1)), min_size=n, max_size=n))
    split = EncodedSplit("t", "regression" if regression else "classification", [f"t:{i}" for i in range(n)],
                         {"input_ids": seqs}, {"input_ids": pad}, labels=labels,
                         targets=np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
    batch = split.collate(idx)
    width = max(1, *(len(seqs[i]) for i in idx))
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (len(idx), width)
    for row, i in enumerate(idx):
        k = len(seqs[i])
        assert batch["input_ids"][row, :k].tolist() == seqs[i]
        assert batch["attention_mask"][row].sum().item() == k
        assert (batch["input_ids"][row, k:] == pad).all()
    assert batch["index"].tolist() == idx
    assert batch["teacher_logits"][:, 0].tolist() == [2.0 * i for i in idx]
    gold = [labels[i] for i in idx]
    assert ("labels" in batch) == any(g is not None for g in gold)
    assert ("label_mask" in batch) == ("labels" in batch and None in gold)
    if "labels" in batch:
        assert batch["labels"].dtype == (torch.float32 if regression else torch.long)
    assert split.eval_batches(3) and sorted(i for b in split.eval_batches(3) for i in b) == list(range(n))


sizes = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(st.integers(1, 60), min_size=1, max_size=40),
                        min_size=1)


@FAST
@given(lengths=sizes, batch_size=st.integers(1, 9), policy=st.sampled_from(["proportional", "temperature", "uniform"]),
       seed=st.integers(0, 1000), world=st.integers(1, 4))
def test_sampler_batches_are_valid_deterministic_and_resumable(lengths, batch_size, policy, seed, world):
    sampler = MultiTaskSampler(lengths, batch_size, policy, seed=seed, bucket=3)
    plan = sampler.epoch(1)
    assert plan == MultiTaskSampler(lengths, batch_size, policy, seed=seed, bucket=3).epoch(1)
    assert len(plan) == sampler.steps_per_epoch()
    for task, idx in plan:
        assert 1 <= len(idx) <= batch_size and all(0 <= i < len(lengths[task]) for i in idx)
        parts = [share(idx, world, r) for r in range(world)]  # one global batch across `world` processes
        assert [i for p in parts for i in p] == idx and max(map(len, parts)) - min(map(len, parts)) <= 1
    if policy == "proportional":  # every example once per epoch
        for task, n in ((t, len(v)) for t, v in lengths.items()):
            assert sorted(i for t, idx in plan if t == task for i in idx) == list(range(n))
    stream = sampler.iterate(1, 0)
    whole = [next(stream) for _ in range(len(plan) + 3)]
    cut = len(plan) // 2
    resumed = sampler.iterate(1, cut)
    assert [next(resumed) for _ in range(len(whole) - cut)] == whole[cut:]


# --------------------------------------------------------------------------- models on arbitrary text


@pytest.fixture(scope="module")
def student():
    from mkd.models.students import build_student

    torch.manual_seed(0)
    cfg = StudentConfig(type="bilstm_attn", embeddings="random", embedding_dim=8, hidden_size=8, max_length=12)
    return build_student(cfg, {"sent": SINGLE, "nli": PAIR}, WORDS, None).eval()


@pytest.fixture(scope="module")
def teacher(tokenizer):
    from transformers import BertConfig, BertModel

    from mkd.models.teacher import TeacherModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=16, max_position_embeddings=64))
    return TeacherModel(encoder, tokenizer, {"sent": SINGLE, "nli": PAIR}, max_length=16).eval()


@FAST
@given(values=st.lists(texts, min_size=1, max_size=5).map(lambda v: [*v, LONG, ""]), pair=st.booleans())
def test_models_score_arbitrary_text(student, teacher, values, pair):
    spec = PAIR if pair else SINGLE
    for model in (student, teacher):
        data = model.encode(spec, examples_of(values, pair))
        assert all(1 <= len(s) <= model.max_length for seqs in data.features.values() for s in seqs)
        with torch.no_grad():
            out = model(spec.name, data.collate(range(len(values))))
        assert out.shape == (len(values), spec.num_outputs) and torch.isfinite(out).all()
