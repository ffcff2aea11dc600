"""Fast serving: tokie's ids gated on exactness against `tokenizers`, and the static student in numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mkd.config import StudentConfig
from mkd.errors import MkdError
from mkd.models.students import build_student
from mkd.models.teacher import TeacherModel
from mkd.serving import fast_tokens as ft
from mkd.serving.numpy_server import check_logits
from mkd.serving.static_numpy import StaticNumpy
from tests.tinyfix import SPECS, make_examples, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")
VARIANTS = [{"pooling": "mean", "head": "mlp"}, {"pooling": "weighted", "head": "linear"},
            {"pooling": "weighted", "head": "mlp", "bigram_buckets": 97}]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    bert = write_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=16, seed=1)
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    TeacherModel.from_pretrained(str(bert), SPECS, max_length=32).save(run / "teacher")
    return run / "teacher"


def texts() -> list[str]:
    return [t for s in SPECS.values() for e in make_examples(s, 40, 0) for t in e.texts]


def student(teacher_dir, **kw):
    torch.manual_seed(0)
    cfg = StudentConfig(type="static", embeddings="random", embedding_dim=8, hidden_size=16, max_length=6, **kw)
    model = build_student(cfg, SPECS, texts(), teacher_dir)
    with torch.no_grad():  # trained-looking weights: token weights and bigrams away from their start
        for name, p in model.named_parameters():
            if name.startswith(("token_weight", "bigram")):
                p.normal_(0.0, 0.5)
    return model.eval()


def tokenizer_json(model) -> str:
    return model.tokens.tokenizer.backend_tokenizer.to_str()


def test_ragged_reads_an_empty_text_as_unknown_and_pads():
    r = ft._ragged(np.array([5, 6, 7], np.uint32), np.array([0, 2, 0, 1]), unk_id=1)
    assert r.rows() == [[1], [5, 6], [1], [7]]
    ids, mask = r.padded(0)
    assert ids.tolist() == [[1, 0], [5, 6], [1, 0], [7, 0]] and mask.sum(1).tolist() == [1, 2, 1, 1]


def test_tokie_serves_only_when_exact(teacher_dir):
    pytest.importorskip("tokie")
    model = student(teacher_dir)
    enc, info = ft.fast_ids(tokenizer_json(model), 6, model.tokens.unk_id, texts())
    assert isinstance(enc, ft.TokieIds), info
    ref = ft.ReferenceIds(tokenizer_json(model), 6, model.tokens.unk_id)
    sample = [*texts(), *ft.PROBES]
    assert enc(sample).rows() == ref(sample).rows() == model.token_ids(sample)  # the model's own ids


def test_a_difference_or_no_tokie_falls_back(teacher_dir, monkeypatch):
    model = student(teacher_dir)

    dog = model.tokens.tokenizer.convert_tokens_to_ids("dog")

    class OffByOne(ft.ReferenceIds):  # a "fast" tokenizer that errs on "dog"
        def __call__(self, batch):
            out = super().__call__(batch)
            return out._replace(ids=out.ids + (out.ids == dog))

    monkeypatch.setattr(ft, "tokie_version", lambda: "9.9")
    monkeypatch.setattr(ft, "TokieIds", OffByOne)
    enc, info = ft.fast_ids(tokenizer_json(model), 6, 1, ["a cat sits", "the dog runs"])
    assert isinstance(enc, ft.ReferenceIds)
    assert "text 2 ('the dog runs')" in info["note"] and "\n" not in info["note"]
    enc, info = ft.fast_ids(tokenizer_json(model), 6, 1, ["a cat sits"])  # the probes have no dog either
    assert isinstance(enc, OffByOne)
    monkeypatch.setattr(ft, "tokie_version", lambda: None)
    enc, info = ft.fast_ids(tokenizer_json(model), 6, 1, ["a cat"])
    assert isinstance(enc, ft.ReferenceIds) and "not installed" in info["note"]


@pytest.mark.parametrize("variant", VARIANTS, ids=["mean-mlp", "weighted-linear", "weighted-mlp-bigrams"])
def test_numpy_path_gives_pytorch_logits(teacher_dir, tmp_path, variant):
    model = student(teacher_dir, **variant)
    served = StaticNumpy.from_model(model, texts())
    for name, spec in SPECS.items():
        examples = make_examples(spec, 30, 1)
        columns = [[e.texts[i] for e in examples] + [""] * (i == 0) + ["x"] * (i == 1)
                   for i in range(len(spec.text_fields))]  # an empty text, a one-token text
        if not spec.is_pair:
            columns = [columns[0] + ["the [MASK] movie " * 3]]  # truncated at max_length
        report = check_logits(served, model, name, columns)
        assert report["max_abs_diff"] < 1e-5 and report["argmax_agreement"] == 1.0
    model.save(tmp_path / "static")
    from_folder = StaticNumpy.from_folder(tmp_path / "static", texts())
    pairs = make_examples(SPECS["nli"], 9, 2)
    cols = [[e.texts[0] for e in pairs], [e.texts[1] for e in pairs]]
    np.testing.assert_array_equal(from_folder.logits("nli", cols), served.logits("nli", cols))


def test_check_logits_refuses_a_numpy_path_that_drifts(teacher_dir):
    model = student(teacher_dir)
    served = StaticNumpy.from_model(model, texts())
    served.folded["sent"].tables[0] += 0.01  # the table the single-text head reads
    with pytest.raises(MkdError, match="differ from PyTorch"):
        check_logits(served, model, "sent", [["good movie", "bad plot"]])
    with pytest.raises(MkdError, match="no head for task 'nope'"):
        served.logits("nope", [["x"]])


def test_word_batches_give_the_vocabulary_ids():
    from mkd.models.students.vocab import UNK_ID, WordVocab, word_tokenizer
    from mkd.serving.fast_words import FastWords

    vocab = WordVocab.build(["don't stop it's a café , the movie ... -- <unk> naïve x"])
    js = word_tokenizer(vocab.words, 5).to_str()
    enc, info = ft.fast_ids(js, 5, UNK_ID, ["the movie"])
    assert isinstance(enc, FastWords) and info["tokenizer"] == "regex batches", info
    texts = ["Don't STOP", "it's a CAFÉ, the [MASK] movie...", "", " \t", "a\x00b", "İstanbul naïve", "北京 x",
             "the the the the the the the", "wait--what", "x" + "\x1c" + "the"]
    assert enc(texts).rows() == vocab.encode_texts(texts, 5)  # the mixed path: NUL, İ and CJK go to tokenizers
    ascii_only = [t for t in texts if t.isascii() and "\x00" not in t]
    assert enc(ascii_only).rows() == vocab.encode_texts(ascii_only, 5)  # one regex pass
    other = js.replace('"Lowercase"', '"NFKC"')  # a pipeline this path does not reproduce
    enc, info = ft.fast_ids(other, 5, UNK_ID, ["x"])
    assert isinstance(enc, ft.ReferenceIds) and "regex batches cannot read" in info["note"]


def test_timing_turns_are_time_boxed_and_time_each_call():
    from mkd.serving import timing

    seen: list[list[int]] = []
    start, done, calls, _ = timing.turn(seen.append, list(range(5)), 2, 4, budget_s=0.0)
    assert seen == [[4]] and (start, done, len(calls)) == (0, 1, 1)  # at least one batch, wrapping after it
    out = timing.measure({"r": lambda part: None}, list(range(7)), (1, 3), rounds=2, budget_s=0.001)
    f = out["r"]["batch_3"]
    assert f["spread"]["rounds"] == 2 and f["calls"] >= 2 and 0 <= f["p50_ms"] <= f["p99_ms"]


def test_export_records_the_fast_tokenizer_and_the_bench_serves_numpy(teacher_dir, tmp_path):
    pytest.importorskip("tokie")
    from mkd.serving.bench import bench_folders
    from mkd.serving.export import export_onnx
    from mkd.serving.runtime import OnnxModel

    model = student(teacher_dir, pooling="weighted")
    model.save(tmp_path / "static")
    examples = {t: make_examples(s, 12, 3) for t, s in SPECS.items()}
    doc = export_onnx(tmp_path / "static", tmp_path / "onnx", examples)
    assert doc["fast_tokenizer"]["tokenizer"].startswith("tokie") and doc["fast_tokenizer"]["checked_texts"] > 40
    fast, slow = OnnxModel(tmp_path / "onnx"), OnnxModel(tmp_path / "onnx")
    slow.fast = None
    cols = [[e.texts[i] for e in examples["nli"]] + [""] for i in range(2)]
    assert fast.fast is not None
    np.testing.assert_array_equal(fast.logits("nli", cols), slow.logits("nli", cols))
    out = bench_folders({"s": tmp_path / "static"}, "nli", examples["nli"], [1, 4], rounds=1, onnx=False,
                        precision="fp32", budget_s=0.01)["s"]
    assert out["numpy"]["tokenizer"].startswith("tokie") and out["numpy"]["argmax_agreement"] == 1.0
    assert out["paths"]["numpy"]["batch_1"]["p99_ms"] > 0 and out["best_path"] in out["paths"]


def test_a_word_level_export_serves_with_regex_batches_only_when_recorded(tmp_path):
    import json

    from mkd.serving.export import export_onnx
    from mkd.serving.fast_words import FastWords
    from mkd.serving.runtime import OnnxModel

    spec = SPECS["sent"]
    torch.manual_seed(0)
    cfg = StudentConfig(type="bilstm", embeddings="random", embedding_dim=8, hidden_size=8, max_length=16)
    build_student(cfg, {"sent": spec}, [e.texts[0] for e in make_examples(spec, 20, 0)], None).save(tmp_path / "m")
    doc = export_onnx(tmp_path / "m", tmp_path / "onnx", {"sent": make_examples(spec, 10, 1)})
    assert doc["fast_tokenizer"]["tokenizer"] == "regex batches"
    fast, slow = OnnxModel(tmp_path / "onnx"), OnnxModel(tmp_path / "onnx")
    assert isinstance(fast.fast, FastWords)
    slow.fast = None
    cols = [["good movie", "", "Naïve CAFÉ plot", "北京 movie", "not bad -- not good..."]]
    np.testing.assert_array_equal(fast.logits("sent", cols), slow.logits("sent", cols))
    manifest = tmp_path / "onnx" / "export.json"
    manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items()
                                    if k != "fast_tokenizer"}))  # an export made before the check existed
    old = OnnxModel(tmp_path / "onnx")
    assert old.fast is None and "records no check" in old.fast_info["note"]


def test_the_fast_serving_benchmark_trains_its_fasttext_peer_with_the_product_code():
    """benchmarks/fast_serving.py's fastText comes from mkd.baselines (the study's old peer class is gone)."""
    from mkd.baselines import missing_extra
    from mkd.tasks.task import TaskData

    if why := missing_extra("fasttext"):
        pytest.skip(why)
    from benchmarks.fast_serving import fasttext_runner

    spec = next(s for s in SPECS.values() if not s.is_pair)
    items = make_examples(spec, 90, 0)
    data = TaskData(spec, {"train": items[:60], "dev": items[60:75], "test": items[75:]})
    predicted = fasttext_runner(data)(data.split("test"))
    assert len(predicted) == 15 and set(predicted) <= set(range(len(spec.labels)))


@pytest.mark.parametrize("kernel", ["scipy kernel", "csr_matrix fallback"])
def test_bag_sums_read_rows_from_any_offset(kernel, monkeypatch):
    """The pair path pools its second texts from the middle of the batch's ids: row offsets need not start at 0."""
    from scipy.sparse import _sparsetools

    from mkd.serving.static_numpy import _bag_sums

    if kernel != "scipy kernel":  # a private kernel that would refuse offsets not from 0: the fallback rebases them
        real = _sparsetools.csr_matvecs

        def refuse(*args):
            if args[3][0] != 0:
                raise ValueError("row offsets must start at 0")
            return real(*args)

        monkeypatch.setattr(_sparsetools, "csr_matvecs", refuse)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 4)).astype(np.float32)
    ids = rng.integers(0, 50, 12)
    weights = rng.random(12).astype(np.float32)
    starts = np.array([0, 3, 4, 9, 12])
    want = np.stack([(weights[a:b, None] * table[ids[a:b]]).sum(0) for a, b in itertools.pairwise(starts)])
    np.testing.assert_allclose(_bag_sums(table, ids, starts, weights), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_bag_sums(table, ids, starts[2:], weights), want[2:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernels", ["numba", "python"])
@pytest.mark.parametrize("variant", VARIANTS, ids=["mean-mlp", "weighted-linear", "weighted-mlp-bigrams"])
def test_compiled_first_layer_gives_scipys(teacher_dir, variant, kernels):
    """The one-pass kernels (compiled by numba, or read as plain Python where numba is missing) against
    scipy's three passes: singles and pairs, with an empty text and a one-token text."""
    from mkd.serving import static_kernels

    if kernels == "numba":
        if static_kernels.KERNELS is None:
            pytest.skip("numba is not installed")
        compiled = static_kernels.KERNELS
    else:
        compiled = static_kernels.python_kernels()
    served = StaticNumpy.from_model(student(teacher_dir, **variant), texts())
    for name, spec in SPECS.items():
        examples = make_examples(spec, 20, 3)
        columns = [[e.texts[i] for e in examples] + ["", "x"] for i in range(len(spec.text_fields))]
        fold = served.folded[name]
        ragged = served.encode([t for c in columns for t in c])
        got = fold.first_layer(ragged, len(columns[0]), compiled)
        want = fold.first_layer(ragged, len(columns[0]), None)
        assert got.shape == want.shape and np.abs(want).max() > 0.01
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


CHUNKS = ["don't", "DON'T", "it's", "they're", "n't", "'s", "can't!", "--", "---", "...", "....", "a.b", "x--y",
          "wait...what", "<unk>", "[MASK]", "x[MASK]y", "café", "naïve,", "the", "movie", "_snake_", "3.14", "'", "'ll"]
GAPS = [" ", "  ", "\t", "\n", "\x1c", "\u00a0", "\u2003", "\u2028", " \r\n "]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(CHUNKS), st.sampled_from(GAPS)), max_size=12), min_size=1,
                max_size=6))
def test_word_chunks_remembered_give_the_tokenizers_ids(texts):
    """The regex batches split at whitespace and remember each chunk's ids: the same ids as `tokenizers`
    on words the pattern splits inside a chunk, mask and clitics among them, whatever the whitespace;
    and again once the chunk memory has been cleared."""
    from mkd.models.students.vocab import UNK_ID, WordVocab, word_tokenizer
    from mkd.serving import fast_words

    vocab = WordVocab.build(["don't stop it's a café , the movie ... -- <unk> naïve x n't 's they 're . ' ll"])
    enc = fast_words.FastWords(word_tokenizer(vocab.words, 8).to_str(), 8, UNK_ID)
    batch = ["".join(c + g for c, g in text) for text in texts]
    want = ft.ReferenceIds(word_tokenizer(vocab.words, 8).to_str(), 8, UNK_ID)(batch)
    for _ in range(2):
        got = enc(batch)
        assert got.rows() == want.rows()
        enc.chunks.clear()  # the second pass computes every chunk again
