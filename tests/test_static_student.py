"""The static student and the teacher-distilled vectors (teacher-static), on a tiny random teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mkd.config import StudentConfig
from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.models.loading import load_model
from mkd.models.students import build_student
from mkd.models.students import teacher_vectors as tv
from mkd.models.teacher import TeacherModel
from mkd.serving.export import TOLERANCE, export_onnx
from mkd.serving.runtime import OnnxModel
from mkd.tasks.task import Example
from tests.tinyfix import SPECS, WORDS, distil_synthetic, make_examples, run_cli, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")
VARIANTS = [{"pooling": "mean", "head": "mlp"}, {"pooling": "weighted", "head": "linear"},
            {"pooling": "weighted", "head": "mlp", "bigram_buckets": 97}]
IDS = ["mean-mlp", "weighted-linear", "weighted-mlp-bigrams"]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A run folder's teacher: an mkd teacher on a tiny random BERT (hidden 16)."""
    bert = write_tiny_bert(tmp_path_factory.mktemp("bert"), hidden=16, seed=1)
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    TeacherModel.from_pretrained(str(bert), SPECS, max_length=32).save(run / "teacher")
    return run / "teacher"


def texts() -> list[str]:
    return [t for s in SPECS.values() for e in make_examples(s, 60, 0) for t in e.texts]


def make(teacher_dir, kind: str = "static", dropout: float = 0.1, **kw):
    torch.manual_seed(0)
    base = dict(type=kind, embeddings="teacher-static", embedding_dim=8, hidden_size=16, dropout=dropout,
                max_length=32)
    return build_student(StudentConfig(**{**base, **kw}), SPECS, texts(), teacher_dir)


def _encoder_means(teacher_dir, words: list[str]) -> np.ndarray:
    """Each word through the teacher as [CLS] pieces [SEP], mean-pooled: computed here independently."""
    teacher = load_model(teacher_dir)
    out = []
    with torch.no_grad():
        for w in words:
            enc = teacher.tokenizer(w, return_tensors="pt")
            out.append(teacher.encoder(**enc).last_hidden_state[0].mean(0).numpy())
    return np.stack(out)


def test_static_vectors_are_the_teachers_pca_and_sif(teacher_dir):
    model = make(teacher_dir, embedding_dim=64)  # wider than the encoder (16): no projection
    assert model.embedding_dim == 16 and model.embedding_info["source"] == "teacher-static"
    vocab = model.tokens.tokenizer.get_vocab()
    words = ["good", "bad", "movie"]
    ids = [vocab[w] for w in words]
    table = model.embedding.weight.detach().numpy()
    counts = np.zeros(len(model.tokens))
    for seq in model.tokens.encode_texts(texts(), 32):
        np.add.at(counts, seq, 1)
    sif = tv.sif_weights(counts)
    seen = np.flatnonzero(counts)
    often, rare = seen[counts[seen].argmax()], seen[counts[seen].argmin()]
    assert sif[vocab["[CLS]"]] == 1.0 and sif[often] < sif[rare] < 1.0  # frequent tokens are damped
    raw = table[ids] / sif[ids, None]  # undo the SIF weight: centred encoder means remain
    means = _encoder_means(teacher_dir, words)
    np.testing.assert_allclose(raw[0] - raw[1], means[0] - means[1], atol=1e-5)
    np.testing.assert_allclose(raw[2] - raw[1], means[2] - means[1], atol=1e-5)
    assert np.all(table[model.tokens.pad_id] == 0)
    narrow = make(teacher_dir, embedding_dim=4)  # PCA: the first components, most variance first
    assert narrow.embedding.weight.shape == (len(model.tokens), 4)
    var = (narrow.embedding.weight.detach().numpy() / sif[:, None]).var(0)
    assert np.all(np.diff(var) <= 1e-4), var


def test_vectors_are_cached_in_the_runs_scratch_folder(teacher_dir, monkeypatch):
    first = make(teacher_dir).embedding.weight.detach().clone()
    cached = list((teacher_dir.parent / ".work" / "teacher-vectors").glob("*.npy"))
    assert cached

    def boom(*_a, **_k):
        raise AssertionError("the encoder ran again instead of reading the cache")

    monkeypatch.setattr(tv, "encode_pieces", boom)
    assert torch.equal(make(teacher_dir).embedding.weight, first)
    assert "vectors_from" not in StudentConfig().model_dump()  # unset: old fingerprints unchanged
    assert StudentConfig(vectors_from="base").model_dump()["vectors_from"] == "base"


def test_base_encoder_vectors_come_from_a_hugging_face_folder(teacher_dir, tmp_path):
    """vectors_from: base borrows only from the base encoder (a Hugging Face folder, the encoder before
    refinement); its vectors are cached in the run's scratch folder, never in the asset's. The tiny teacher
    is that encoder untrained: same vectors."""
    from mkd.models.students import check_student
    from mkd.models.students.borrow import EncoderSource, Source

    bert = write_tiny_bert(tmp_path / "bert", hidden=16, seed=1)
    cfg = StudentConfig(type="static", embeddings="teacher-static", embedding_dim=8, hidden_size=16, max_length=32,
                        vectors_from="base")
    assert check_student(cfg).sources == (Source.BASE,)
    assert check_student(cfg.model_copy(update={"vectors_from": "refined"})).sources[0] is Source.RUN
    torch.manual_seed(0)
    base = build_student(cfg, SPECS, texts(), EncoderSource(Source.BASE, str(bert), cache_root=tmp_path / "run"))
    assert base.embedding_info["source"] == "teacher-static (base)" and base.embedding_info["encoder"] == "base"
    assert list((tmp_path / "run" / ".work" / "teacher-vectors").glob("*.npy"))
    torch.testing.assert_close(base.embedding.weight, make(teacher_dir).embedding.weight, atol=1e-5, rtol=0)
    with pytest.raises(MkdError, match="vectors_from applies to teacher-static"):
        make(teacher_dir, kind="bilstm", embeddings="random", vectors_from="base")


def test_fast_token_ids_are_the_tokenizers(teacher_dir):
    from mkd.data.encode import AUG_MASK

    model = make(teacher_dir, max_length=6)
    samples = ["good movie", "", f"the {AUG_MASK} plot", "GOOD Movie, very good!", " ".join(WORDS), "zzzq"]
    assert model.token_ids(samples) == model.tokens.encode_texts(samples, 6)
    assert max(len(x) for x in model.token_ids(samples)) == 6


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_single_and_pair_logits_and_padding_invariance(teacher_dir, variant):
    model = make(teacher_dir, **variant).eval()
    _perturb(model)
    long_text = " ".join(WORDS * 2)
    for task, spec in SPECS.items():
        examples = make_examples(spec, 5, 3)
        examples.append(Example("long", (long_text,) * len(spec.text_fields)))
        data = model.encode(spec, examples)
        assert ("input_ids_b" in data.features) == spec.is_pair
        with torch.no_grad():
            together = model(task, data.collate(range(6)))
            alone = torch.cat([model(task, data.collate([i])) for i in range(6)])
        assert together.shape == (6, spec.num_outputs)
        mask = data.collate(range(6))["attention_mask"]
        assert mask[0].sum() < mask.shape[1]  # the short rows really are padded
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_save_load_onnx_and_predict_give_the_same_outputs(teacher_dir, variant, tmp_path, monkeypatch, capsys):
    model = make(teacher_dir, **variant)
    _perturb(model)
    folder = tmp_path / "student"
    model.save(folder)
    loaded = load_model(folder, tasks=list(SPECS))
    assert type(loaded) is type(model) and loaded.settings() == model.settings()
    for task, spec in SPECS.items():
        examples = make_examples(spec, 20, 5)
        assert np.array_equal(predict(model, task, model.encode(spec, examples)),
                              predict(loaded, task, loaded.encode(spec, examples)))
    result = export_onnx(folder, tmp_path / "onnx", {t: make_examples(s, 9, 1) for t, s in SPECS.items()})
    served = OnnxModel(tmp_path / "onnx")  # the one graph for every task, tokenizer.json beside it
    for task, spec in SPECS.items():
        assert result["tasks"][task]["max_abs_diff"] <= TOLERANCE
        examples = make_examples(spec, 7, 8)
        columns = [[e.texts[i] for e in examples] for i in range(len(spec.text_fields))]
        np.testing.assert_allclose(served.logits(task, columns), predict(loaded, task, loaded.encode(spec, examples)),
                                   atol=TOLERANCE, rtol=0)
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", str(folder), "--task", "nli", "--json",
                           "a cat sits ||| yes the cat sits")
    row = json.loads(out.splitlines()[0])
    logits = predict(loaded, "nli", loaded.encode(SPECS["nli"], [Example("x", ("a cat sits", "yes the cat sits"))]))
    assert code == 0 and row["label"] == SPECS["nli"].labels[int(logits.argmax())]


def _perturb(model) -> None:
    """Weights away from their initial values (the bigram table starts at zero), so that loading really
    restores them and every part of the model shapes the logits."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))


def test_bigrams_tell_word_order_apart_and_start_as_the_unigram_model(teacher_dir):
    plain = make(teacher_dir).eval()
    model = make(teacher_dir, bigram_buckets=97).eval()
    model.load_state_dict(plain.state_dict(), strict=False)  # the same unigram part, a zero bigram table
    spec = next(s for s in SPECS.values() if not s.is_pair)
    task = spec.name
    examples = [Example("a", ("not good",)), Example("b", ("good not",))]
    with torch.no_grad():
        start = model(task, model.encode(spec, examples).collate(range(2)))
        torch.testing.assert_close(start, plain(task, plain.encode(spec, examples).collate(range(2))))
        torch.testing.assert_close(start[0], start[1])  # a bag of tokens: order is invisible
        model.bigram.weight.normal_()
        trained = model(task, model.encode(spec, examples).collate(range(2)))
    assert not torch.allclose(trained[0], trained[1])
    assert "bigram_buckets" not in StudentConfig().model_dump()  # unset: old fingerprints unchanged
    assert StudentConfig(bigram_buckets=8).model_dump()["bigram_buckets"] == 8


def random_teacher(spec, examples, seed: int = 0) -> np.ndarray:
    """A fixed random teacher whose logits are a mean of per-word vectors: learnable by a static model."""
    rng = np.random.default_rng(seed)
    table = {(side, w): rng.normal(0, 1.5, spec.num_outputs) for side in range(2) for w in WORDS}
    out = np.zeros((len(examples), spec.num_outputs), dtype=np.float32)
    for i, e in enumerate(examples):
        for side, text in enumerate(e.texts):
            out[i] += np.mean([table[side, w] for w in text.split()], axis=0)
    return out


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_distillation_lowers_the_loss(teacher_dir, variant):
    model = make(teacher_dir, dropout=0.0, **variant)
    before, after = distil_synthetic(model, random_teacher, 80)
    assert after <= 0.25 * before, (before, after)


@pytest.mark.parametrize("kind", ["bilstm", "bilstm_attn"])
def test_lstm_students_on_teacher_static_word_vectors(teacher_dir, kind, tmp_path):
    model = make(teacher_dir, kind=kind, embedding_dim=64)
    words = model.tokens.words
    assert words[:2] == ["<pad>", "<unk>"] and model.embedding_info["coverage"] == 1.0
    table = model.embedding.weight.detach().numpy()
    picks = [words.index(w) for w in ("good", "movie", "plot")]
    means = _encoder_means(teacher_dir, [words[i] for i in picks])
    for k in (1, 2):  # centred: differences between words are the encoder's differences
        np.testing.assert_allclose(table[picks[k]] - table[picks[0]], means[k] - means[0], atol=1e-5)
    assert np.all(table[0] == 0) and np.abs(table[1]).sum() > 0
    model.save(tmp_path / "s")
    loaded = load_model(tmp_path / "s")
    data = loaded.encode(SPECS["nli"], make_examples(SPECS["nli"], 10, 1))
    assert np.array_equal(predict(model, "nli", data), predict(loaded, "nli", data))


def test_clear_errors(teacher_dir):
    with pytest.raises(MkdError, match="no teacher folder"):
        build_student(StudentConfig(type="static", embeddings="teacher-static"), SPECS, texts(), None)
    with pytest.raises(MkdError, match="does not apply to the static student"):
        make(teacher_dir, embeddings="glove-6b-50d")
    with pytest.raises(MkdError, match="does not apply to the static student"):
        make(teacher_dir, pooling="cls")
    with pytest.raises(MkdError, match="no teacher folder"):
        make(None, kind="bilstm")
    with pytest.raises(MkdError, match="bigram_buckets applies to the static student only"):
        make(teacher_dir, kind="bilstm", bigram_buckets=8)


def test_mkd_distill_finetune_and_predict_a_static_student(tmp_path, monkeypatch, capsys):
    """The one pipeline: teach, augment, label, then `mkd distill` / `mkd finetune` with student.type static."""
    from mkd.io import read_json
    from tests.test_run_pipeline import write_recipe

    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: _fake_tagger())
    recipe = str(write_recipe(tmp_path, write_tiny_bert(tmp_path / "bert", hidden=16)))
    run = tmp_path / "runs" / "tiny"
    for stage in ("teach", "augment", "label"):
        code, _, err = run_cli(monkeypatch, capsys, stage, "-c", recipe)
        assert code == 0, err
    static = ["--set", "student.type=static", "--set", "student.embeddings=teacher-static",
              "--set", "student.folder=static", "--set", "student.pooling=weighted", "--set", "finetune.tasks=[nli]",
              "--set", "finetune.train.max_steps=3"]
    code, _, err = run_cli(monkeypatch, capsys, "distill", "-c", recipe, *static)
    assert code == 0, err
    assert read_json(run / "static" / "mkd.json")["arch"] == "static"
    assert read_json(run / "static" / "stage.json")["steps"] == 8
    assert read_json(run / "static" / "metrics.json")["tasks"]["nli"]["accuracy"] >= 0
    code, _, err = run_cli(monkeypatch, capsys, "finetune", "-c", recipe, *static)
    assert code == 0, err
    assert read_json(run / "static-finetuned" / "nli" / "mkd.json")["arch"] == "static"
    monkeypatch.setenv("MKD_HOME", str(tmp_path / "home"))
    base = ["--set", "student.folder=static-base", "--set", "student.vectors_from=base"]
    code, _, err = run_cli(monkeypatch, capsys, "distill", "-c", recipe, *static, *base)
    assert code == 0, err  # vectors from teacher.model (the tiny BERT), not from the run's teacher
    assert read_json(run / "static-base" / "mkd.json")["settings"]["embeddings"]["source"] == "teacher-static (base)"
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", str(run / "static-finetuned" / "nli"),
                           "--task", "nli", "--json", "a cat sits ||| maybe a dog")
    assert code == 0 and json.loads(out)["label"] in SPECS["nli"].labels


def _fake_tagger():
    from tests.test_augment import fake_tagger

    return fake_tagger
