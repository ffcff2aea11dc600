"""The students: shapes, padding invariance, shared gradients, distillation, save/load, vocabularies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mkd.config import StudentConfig
from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.models.loading import load_model
from mkd.models.students import build_student
from mkd.models.students.embeddings import word_matrix
from mkd.models.students.vocab import UNK_ID, WordVocab, tokenize
from mkd.tasks.task import Example
from tests.tinyfix import SPECS, WORDS, distil_synthetic, make_examples, write_tiny_bert

STUDENTS = ["bilstm", "bilstm_attn", "transformer"]
SHARED = {"bilstm": ["embedding.", "encoder."],
          "bilstm_attn": ["embedding.", "feedforward.", "encoder.", "integrator."],
          "transformer": ["encoder.embeddings.word_embeddings.", "encoder.encoder.layer.0."]}


pytestmark = pytest.mark.usefixtures("one_thread")


def texts() -> list[str]:
    return [t for s in SPECS.values() for e in make_examples(s, 60, 0) for t in e.texts]


def make(kind: str, small_bert_dir, dropout: float = 0.1, **kw):
    torch.manual_seed(0)
    base = dict(type=kind, embeddings="random", embedding_dim=16, hidden_size=16, num_heads=2, dropout=dropout,
                max_length=32)
    return build_student(StudentConfig(**{**base, **kw}), SPECS, texts(), small_bert_dir)


@pytest.mark.parametrize("kind", STUDENTS)
def test_every_task_gets_its_shape_of_logits(kind, small_bert_dir):
    model = make(kind, small_bert_dir).eval()
    for task, spec in SPECS.items():
        data = model.encode(spec, make_examples(spec, 6, 1))
        if kind != "transformer":
            assert ("input_ids_b" in data.features) == spec.is_pair
        assert model(task, data.collate(range(6))).shape == (6, spec.num_outputs)


@pytest.mark.parametrize("kind", STUDENTS)
def test_padding_never_changes_a_prediction(kind, small_bert_dir):
    model = make(kind, small_bert_dir).eval()
    long_text = " ".join(WORDS * 2)
    for task, spec in SPECS.items():
        examples = make_examples(spec, 5, 3)
        examples.append(Example("long", (long_text,) * len(spec.text_fields)))
        data = model.encode(spec, examples)
        with torch.no_grad():
            together = model(task, data.collate(range(6)))
            alone = torch.cat([model(task, data.collate([i])) for i in range(6)])
        mask = data.collate(range(6))["attention_mask"]
        assert mask[0].sum() < mask.shape[1]  # the short rows really are padded
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", STUDENTS)
def test_every_head_trains_the_shared_layers_and_only_its_own_head(kind, small_bert_dir):
    model = make(kind, small_bert_dir)
    for task, spec in SPECS.items():
        model.zero_grad(set_to_none=True)
        data = model.encode(spec, make_examples(spec, 8, 1))
        model(task, data.collate(range(8))).pow(2).sum().backward()
        shared = [(n, p) for n, p in model.named_parameters() if any(n.startswith(s) for s in SHARED[kind])]
        assert len(shared) >= 2
        for name, p in shared:
            assert p.grad is not None and p.grad.abs().sum() > 0, (task, name)
        for name, p in model.named_parameters():
            if name.startswith("heads.") and f".{task}." not in name:
                assert p.grad is None, (task, name)


def random_teacher(spec, examples, seed: int = 0) -> np.ndarray:
    """A fixed random teacher: logits are the mean of random per-word vectors (summed over pair sides)."""
    rng = np.random.default_rng(seed)
    table = {(side, w): rng.normal(0, 1.5, spec.num_outputs) for side in range(2) for w in WORDS}
    out = np.zeros((len(examples), spec.num_outputs), dtype=np.float32)
    for i, e in enumerate(examples):
        for side, text in enumerate(e.texts):
            out[i] += np.mean([table[side, w] for w in text.split()], axis=0)
    return out


@pytest.mark.parametrize("kind", STUDENTS)
def test_distillation_drives_the_students_logits_to_the_teachers(kind, small_bert_dir):
    model = make(kind, small_bert_dir, dropout=0.0, hidden_size=32)
    before, after = distil_synthetic(model, random_teacher, 60)
    assert after <= 0.1 * before, (before, after)


@pytest.mark.parametrize("kind", STUDENTS)
def test_save_then_load_gives_identical_outputs(kind, small_bert_dir, tmp_path):
    model = make(kind, small_bert_dir, freeze_embeddings=True)
    model.save(tmp_path / "student")
    loaded = load_model(tmp_path / "student", tasks=list(SPECS))
    assert type(loaded) is type(model) and loaded.settings() == model.settings()
    for task, spec in SPECS.items():
        examples = make_examples(spec, 20, 5)
        assert np.array_equal(predict(model, task, model.encode(spec, examples)),
                              predict(loaded, task, loaded.encode(spec, examples)))
    if kind != "transformer":
        assert not loaded.embedding.weight.requires_grad


def test_a_vocabulary_that_does_not_fit_the_weights_is_refused(small_bert_dir, tmp_path):
    make("bilstm", small_bert_dir).save(tmp_path / "s")
    with open(tmp_path / "s" / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("extra\n")
    with pytest.raises(MkdError, match=r"vocabulary .* does not match its embedding matrix"):
        load_model(tmp_path / "s")


def test_transformer_from_the_first_layers_copies_them_exactly(tmp_path):
    from transformers import BertModel

    folder = write_tiny_bert(tmp_path / "bert", hidden=16, layers=2, seed=3)
    model = build_student(StudentConfig(type="transformer", init_from=str(folder), init_layers=1), SPECS, [], None)
    source = BertModel.from_pretrained(folder).state_dict()
    kept = model.encoder.state_dict()
    assert model.encoder.config.num_hidden_layers == 1 and not any(".layer.1." in k for k in kept)
    for name, value in kept.items():
        assert torch.equal(value, source[name]), name
    assert any(".layer.0." in k for k in kept)
    with pytest.raises(MkdError, match="has only 2 layers"):
        build_student(StudentConfig(type="transformer", init_from=str(folder), init_layers=3), SPECS, [], None)


def test_lstm_on_the_teachers_wordpiece_embeddings(small_bert_dir, tmp_path):
    from transformers import BertModel

    model = make("bilstm_attn", small_bert_dir, embeddings="teacher")
    model.save(tmp_path / "s")
    loaded = load_model(tmp_path / "s")
    data = loaded.encode(SPECS["nli"], make_examples(SPECS["nli"], 10, 1))
    assert np.array_equal(predict(model, "nli", data), predict(loaded, "nli", data))
    table = BertModel.from_pretrained(small_bert_dir).embeddings.word_embeddings.weight
    assert torch.equal(model.embedding.weight[1:], table[1:]) and model.embedding.weight[0].abs().sum() == 0
    ids = model.encode(SPECS["sent"], [Example("x", ("good [MASK] movie",))]).features["input_ids"][0]
    vocab = model.tokens.tokenizer.get_vocab()
    assert ids == [vocab["good"], vocab["[MASK]"], vocab["movie"]]


def test_word_vocabulary_tokenizes_lowercases_and_reads_the_mask_as_unk():
    assert tokenize("Don't [MASK] it's GOOD.") == ["do", "n't", "<unk>", "it", "'s", "good", "."]
    vocab = WordVocab.build(["a b b [MASK]", "b c"], min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "b"]
    assert vocab.ids("b [MASK] a zzz", 3) == [2, UNK_ID, UNK_ID] and vocab.ids("", 5) == [UNK_ID]


def test_clear_errors_for_a_misspelt_student_or_embedding_source():
    with pytest.raises(MkdError, match="did you mean 'bilstm_attn'"):
        build_student(StudentConfig(type="bilstm_atn"), SPECS, [], None)
    with pytest.raises(MkdError, match="did you mean 'glove-6b-50d'"):
        build_student(StudentConfig(embeddings="glove"), SPECS, [], None)
    with pytest.raises(MkdError, match="no teacher folder"):
        build_student(StudentConfig(embeddings="teacher"), SPECS, [], None)
    with pytest.raises(MkdError, match="takes its tokenizer"):
        build_student(StudentConfig(type="transformer"), SPECS, [], None)


@pytest.mark.real
def test_pretrained_word_vectors_are_the_assets_rows():
    import pyarrow.parquet as pq

    from mkd.assets import asset_path

    folder = asset_path("glove-6b-50d")
    words = pq.read_table(folder / "glove_6B_index.parquet").column("index").to_pylist()
    table = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")
    matrix, info = word_matrix("glove-6b-50d", ["<pad>", "<unk>", "movie", "zzqxjv"], 300)
    assert matrix.shape == (4, 50) and info.found == 1 and info.coverage == 0.5
    assert np.array_equal(matrix[2].numpy(), table[words.index("movie")])
    assert matrix[0].abs().sum() == 0 and 0 < matrix[3].abs().sum() < 5
    matrix, info = word_matrix("spacy-en-md", ["<pad>", "<unk>", "movie", "n't", "zzqxjv"], 300)
    assert matrix.shape == (5, 300) and info.found == 2
