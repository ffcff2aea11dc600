"""Any teacher (issue 14): Hugging Face classifiers of three architectures as the teachers of one multi-task
run, label alignment by name, label_map, logits files keyed by id and by text, an incomplete file refused
with nothing written, ensembles, and pickled weights refused. Every model is tiny, random, and saved here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mkd.config import TeacherSpec, load_recipe
from mkd.data.transfer import load_transfer, read_manifest
from mkd.errors import MkdError
from mkd.io import read_json
from mkd.stages.augment import augment
from mkd.stages.label import label
from mkd.stages.transfer_export import export_transfer
from mkd.tasks.task import Example, TaskSpec
from mkd.teachers import Context, build
from mkd.teachers.base import align_labels
from tests.test_augment import fake_tagger
from tests.tinyfix import SPECS, WORDS, make_examples, run_cli, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")
SENT, NLI, REG = SPECS["sent"], SPECS["nli"], SPECS["score"]


# ---- tiny Hugging Face classifiers, saved like hub models -------------------------------------------
def word_tokenizer(folder: Path, specials: list[str], template: tuple[str, str] | None, pad: str | None):
    """A lower-casing word-level fast tokenizer over the test vocabulary (no token type ids)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*specials, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if template:
        ids = [(s, vocab[s]) for s in ("<s>", "</s>") if s in vocab]
        tok.post_processor = processors.TemplateProcessing(single=template[0], pair=template[1], special_tokens=ids)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>", pad_token=pad,
                                   bos_token="<s>", model_input_names=["input_ids", "attention_mask"],
                                   model_max_length=32)
    fast.save_pretrained(folder)
    return fast, vocab


def write_bert_classifier(folder: Path, labels: list[str] | None, seed: int = 0) -> Path:
    """BertForSequenceClassification; labels None keeps transformers' generic LABEL_0, LABEL_1."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    write_tiny_bert(folder, hidden=16, seed=seed)
    tok = BertTokenizerFast.from_pretrained(folder)
    tok.model_max_length = 32
    tok.save_pretrained(folder)
    names = {"id2label": dict(enumerate(labels))} if labels else {"num_labels": 2}
    config = BertConfig.from_pretrained(folder, **names)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def write_roberta_classifier(folder: Path, labels: list[str], seed: int = 1) -> Path:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    _, vocab = word_tokenizer(folder, ["<pad>", "<s>", "</s>", "<unk>"], ("<s> $A </s>", "<s> $A </s> </s> $B </s>"),
                              "<pad>")
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=40, type_vocab_size=1, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, id2label=dict(enumerate(labels)))
    torch.manual_seed(seed)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    return folder


def write_gpt2_regressor(folder: Path, seed: int = 2) -> Path:
    """A decoder-only classifier without a padding token (as GPT-2 ships), one output: a regression head."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    _, vocab = word_tokenizer(folder, ["</s>", "<unk>"], None, None)
    config = GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=2, n_head=2, n_positions=64, num_labels=1,
                        bos_token_id=0, eos_token_id=0, pad_token_id=None)
    torch.manual_seed(seed)
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    return folder


def hf_logits(folder: Path, examples: list[Example], max_length: int = 32) -> np.ndarray:
    """The classifier's own logits, one example at a time (no padding at all), as transformers gives them."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for e in examples:
            enc = tok(*e.texts, truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(model(**enc).logits[0].numpy())
    return np.stack(rows)


# ---- one multi-task run whose every task has a Hugging Face teacher ---------------------------------------
def _csv(path: Path, spec: TaskSpec, n: int, seed: int) -> str:
    if path.exists():  # a recipe written again keeps its data files (their dates are in the fingerprint)
        return str(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*spec.text_fields, "label"])
        for e in make_examples(spec, n, seed):
            w.writerow([*e.texts, spec.labels[e.label] if spec.type == "classification" else e.label])
    return str(path)


def write_recipe(folder: Path, teachers: dict | None = None, tasks: tuple[TaskSpec, ...] = (SENT, NLI, REG)) -> Path:
    train = {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "log_every": 5}
    doc = {
        "name": "any", "seed": 5, "output_dir": str(folder / "runs"),
        "precision": "no",  # fp32 labelling: the stored logits are compared with transformers' own to 1e-5
        "tasks": [{"name": s.name, "source": "files", "train": _csv(folder / f"{s.name}-train.csv", s, 40, 0),
                   "dev": _csv(folder / f"{s.name}-dev.csv", s, 12, 1),
                   "test": _csv(folder / f"{s.name}-test.csv", s, 12, 2),
                   "text_fields": list(s.text_fields), "type": s.type, "labels": list(s.labels) or None,
                   "metrics": list(s.metrics), "primary": s.primary} for s in tasks],
        "teacher": {"model": "does-not-matter-when-every-task-has-a-teacher", "max_length": 32},
        "transfer": {"augment": {"n_iter": 1}, "label_batch_size": 8, "shard_size": 30,
                     **({"teachers": teachers} if teachers else {})},
        "student": {"type": "bilstm", "embeddings": "random", "embedding_dim": 8, "hidden_size": 8, "max_length": 32},
        "distill": {"train": {**train, "max_steps": 3, "lr": 3e-3}},
        "bench": {"rounds": 1, "batch_sizes": [1, 4], "examples": 6},
        "baselines": [],  # tests/test_run_baselines.py covers them
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_bert_roberta_and_gpt2_teach_one_multitask_run(tmp_path, monkeypatch, capsys):
    bert = write_bert_classifier(tmp_path / "bert", [" Neg", "POS "])  # case and spaces do not matter
    roberta = write_roberta_classifier(tmp_path / "roberta", ["maybe", "yes", "no"])  # another label order
    gpt2 = write_gpt2_regressor(tmp_path / "gpt2")
    teachers = {"sent": {"kind": "hf", "path": str(bert)}, "nli": {"kind": "hf", "path": str(roberta)},
                "score": {"kind": "hf", "path": str(gpt2), "max_length": 16}}
    recipe = write_recipe(tmp_path, teachers)
    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe))
    assert code == 0, err
    run = tmp_path / "runs" / "any"
    assert "teach: skipped" in err and not (run / "teacher").exists()
    # the transfer set carries each teacher's own logits, in the task's label order, joined by id
    for task, folder, order, length in (("sent", bert, [0, 1], 32), ("nli", roberta, [1, 2, 0], 32),
                                        ("score", gpt2, [0], 16)):
        examples, logits = load_transfer(run / "transfer" / task)
        assert logits.shape == (len(examples), len(order))
        np.testing.assert_allclose(logits, hf_logits(folder, examples, length)[:, order], atol=1e-5)
    summary = read_json(run / "summary.json")
    assert sorted(summary["teachers"]) == ["nli", "score", "sent"]
    teacher = summary["models"]["teacher"]
    assert set(teacher["test"]["tasks"]) == {"sent", "nli", "score"} and teacher["examples_per_s"] > 0
    assert teacher["parameters"]["total"] == sum(e["parameters"]["total"] for e in summary["teachers"].values())
    assert summary["models"]["student"]["speedup_vs_teacher"] is not None
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "Teachers: " in report and str(roberta) in report
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe))
    assert code == 0 and "label: unchanged" in err and "teachers: unchanged" in err


def test_a_run_mixing_its_own_teacher_and_an_hf_one_reports_the_teacher_each_task_used(tmp_path, monkeypatch,
                                                                                        capsys):
    bert = write_bert_classifier(tmp_path / "bert", ["neg", "pos"])
    path = write_recipe(tmp_path, {"sent": {"kind": "hf", "path": str(bert)}}, tasks=(SENT, NLI))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["teacher"] = {"model": str(write_tiny_bert(tmp_path / "encoder", hidden=16)), "max_length": 32,
                      "train": {"max_steps": 2, "batch_size": 16, "eval_batch_size": 64}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(path))
    assert code == 0, err
    run = tmp_path / "runs" / "any"
    summary = read_json(run / "summary.json")
    joined, own = summary["models"]["teacher"], read_json(run / "teacher" / "metrics.json")
    assert joined["test"]["tasks"]["nli"] == own["splits"]["test"]["tasks"]["nli"]
    test = make_examples(SENT, 12, 2)  # the sent test file; its score is the HF classifier's own
    accuracy = 100 * float(np.mean(hf_logits(bert, test).argmax(1) == np.array([e.label for e in test])))
    assert joined["test"]["tasks"]["sent"] == summary["teachers"]["sent"]["test"]
    assert joined["test"]["tasks"]["sent"]["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert joined["teachers"]["nli"].startswith("mkd:") and joined["teachers"]["sent"] == f"hf:{bert}"
    own_params = read_json(run / "teacher" / "mkd.json")["parameters"]["total"]
    assert joined["parameters"]["total"] == own_params + summary["teachers"]["sent"]["parameters"]["total"]


# ---- labels by name ---------------------------------------------------------------------------------
def test_labels_align_by_name_and_a_mismatch_names_both_sides():
    assert align_labels(["Yes ", "MAYBE", "no"], NLI, None, "t") == [0, 2, 1]
    with pytest.raises(MkdError, match=r"t labels \(yes, no, perhaps\) do not match task nli's labels "
                                       r"\(yes, no, maybe\)"):
        align_labels(["yes", "no", "perhaps"], NLI, None, "t")
    with pytest.raises(MkdError, match=r"generic labels .* add label_map: \{LABEL_0: <task label>"):
        align_labels(["LABEL_0", "LABEL_1"], SENT, None, "t")
    assert align_labels(["LABEL_0", "LABEL_1"], SENT, {"label_1": "neg", "LABEL_0": "pos"}, "t") == [1, 0]
    with pytest.raises(MkdError, match="label_map names 'label_7'"):
        align_labels(["LABEL_0", "LABEL_1"], SENT, {"LABEL_7": "neg"}, "t")
    with pytest.raises(MkdError, match="regression task"):
        align_labels(["neg", "pos"], REG, None, "t")
    with pytest.raises(MkdError, match=r"\(score\) do not match"):
        align_labels(["score"], SENT, None, "t")


def test_label_map_on_a_generic_hf_classifier_and_a_mismatch_refused(tmp_path):
    folder = write_bert_classifier(tmp_path / "generic", None)
    examples = make_examples(SENT, 7, 3)
    with pytest.raises(MkdError, match="generic labels"):
        build(TeacherSpec(kind="hf", path=str(folder)), {"sent": SENT}, Context())
    mapped = build(TeacherSpec(kind="hf", path=str(folder), label_map={"LABEL_0": "pos", "LABEL_1": "neg"}),
                   {"sent": SENT}, Context())
    np.testing.assert_allclose(mapped.logits("sent", examples, 3), hf_logits(folder, examples)[:, [1, 0]], atol=1e-5)
    named = write_bert_classifier(tmp_path / "named", ["negative", "positive"])
    with pytest.raises(MkdError, match=r"labels \(negative, positive\) do not match task sent's labels \(neg, pos\)"):
        build(TeacherSpec(kind="hf", path=str(named)), {"sent": SENT}, Context())


def test_a_pickle_only_hf_folder_is_refused(tmp_path):
    from transformers import BertForSequenceClassification

    folder = write_bert_classifier(tmp_path / "pickled", ["neg", "pos"])
    model = BertForSequenceClassification.from_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(MkdError, match=r"holds pytorch_model\.bin but no \.safetensors weights; mkd never loads pick"):
        build(TeacherSpec(kind="hf", path=str(folder)), {"sent": SENT}, Context())
    assert not list(folder.glob("*.safetensors"))


# ---- logits files and ensembles, through the label stage ---------------------------------------------
@pytest.fixture()
def one_task(tmp_path):
    """A labelled-to-be transfer set of the single-text task, and its exported rows."""
    recipe = load_recipe(write_recipe(tmp_path, tasks=(SENT,)))
    augment(recipe, tagger=fake_tagger)
    export_transfer(recipe, tmp_path / "export.csv")
    with open(tmp_path / "export.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return recipe, rows


def _fake(i: int) -> list[float]:
    return [float(np.sin(i)), float(np.cos(3 * i))]


def _with_teacher(tmp_path, teacher):
    return load_recipe(write_recipe(tmp_path, {"sent": teacher}, tasks=(SENT,)))


def test_a_logits_file_by_id_and_one_by_text(tmp_path, one_task):
    _, rows = one_task
    transfer = [r for r in rows if r["split"] == "transfer"]
    assert {r["split"] for r in rows} == {"transfer", "dev", "test"} and {r["kind"] for r in transfer} >= {"original"}
    by_id = tmp_path / "by-id.csv"  # one column per label, named in another case and order
    with open(by_id, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "POS", "neg"])
        w.writerows([r["id"], _fake(i)[1], _fake(i)[0]] for i, r in enumerate(rows))
    recipe = _with_teacher(tmp_path, {"kind": "logits", "path": str(by_id)})
    label(recipe)
    examples, logits = load_transfer(recipe.run_dir / "transfer" / "sent")
    want = {r["id"]: _fake(i) for i, r in enumerate(rows)}
    np.testing.assert_allclose(logits, [want[e.id] for e in examples], atol=1e-6)
    by_text = tmp_path / "by-text.jsonl"  # probabilities as a list, found by the text alone
    texts = {r["text"]: np.exp(_fake(i)) / np.exp(_fake(i)).sum() for i, r in enumerate(transfer)}
    by_text.write_text("".join(json.dumps({"text": t, "probabilities": p.tolist()}) + "\n" for t, p in texts.items()),
                       encoding="utf-8")
    recipe = _with_teacher(tmp_path, {"kind": "logits", "path": str(by_text), "key": "text", "values": "probabilities"})
    label(recipe)
    examples, logits = load_transfer(recipe.run_dir / "transfer" / "sent")
    np.testing.assert_allclose(logits, [np.log(texts[e.texts[0]]) for e in examples], atol=1e-5)


def test_a_run_whose_teacher_is_a_logits_file_scores_it_on_dev_and_test(tmp_path, one_task, monkeypatch, capsys):
    recipe, rows = one_task
    path = tmp_path / "all.csv"  # the exported rows, dev and test included, with a "teacher" that knows the answer
    gold = {e.texts: e.label for split in ("dev", "test")
            for e in make_examples(SENT, 12, {"dev": 1, "test": 2}[split])}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "neg", "pos"])
        for i, r in enumerate(rows):
            known = gold.get((r["text"],))
            w.writerow([r["id"], *(_fake(i) if known is None or r["split"] == "transfer" else [1 - known, known])])
    recipe_path = write_recipe(tmp_path, {"sent": {"kind": "logits", "path": str(path)}}, tasks=(SENT,))
    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe_path))
    assert code == 0, err
    summary = read_json(recipe.run_dir / "summary.json")
    teacher = summary["models"]["teacher"]
    assert teacher["test"]["tasks"]["sent"]["accuracy"] == teacher["dev"]["tasks"]["sent"]["accuracy"] == 100.0
    assert teacher["parameters"] is None and teacher["examples_per_s"] is None
    assert summary["models"]["student"]["speedup_vs_teacher"] is None and "teach: skipped" in err
    assert f"logits {path}" in (recipe.run_dir / "report.md").read_text(encoding="utf-8")


def test_an_incomplete_logits_file_is_refused_and_nothing_is_written(tmp_path, one_task, monkeypatch, capsys):
    _, rows = one_task
    transfer = [r for r in rows if r["split"] == "transfer"]
    path = tmp_path / "partial.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], "logits": _fake(i)}) + "\n"
                            for i, r in enumerate(transfer[3:])), encoding="utf-8")
    recipe_path = write_recipe(tmp_path, {"sent": {"kind": "logits", "path": str(path)}}, tasks=(SENT,))
    folder = tmp_path / "runs" / "any" / "transfer" / "sent"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run_cli(monkeypatch, capsys, "label", "-c", str(recipe_path))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"no logits for 3 of its {len(transfer)} transfer examples" in err and "nothing was labelled" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and not list(folder.glob("logits-*"))


def test_transfer_export_from_the_command_line(tmp_path, one_task, monkeypatch, capsys):
    recipe, rows = one_task
    out = tmp_path / "to-label.jsonl"
    code, stdout, err = run_cli(monkeypatch, capsys, "transfer", "export", "-c", str(tmp_path / "recipe.yaml"),
                                "--out", str(out), "--transfer-only")
    assert code == 0 and stdout.strip() == str(out), err
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    manifest = read_manifest(recipe.run_dir / "transfer" / "sent")
    assert len(written) == manifest["total"] and {r["split"] for r in written} == {"transfer"}
    assert [r["id"] for r in written] == [r["id"] for r in rows if r["split"] == "transfer"]
    assert set(written[0]) == {"task", "id", "split", "kind", "text"}
    code, _, err = run_cli(monkeypatch, capsys, "transfer", "export", "-c", str(tmp_path / "recipe.yaml"),
                           "--out", str(tmp_path / "x.xlsx"))
    assert code == 2 and "unknown format '.xlsx'" in err and not (tmp_path / "x.xlsx").exists()


def test_an_ensemble_of_two_is_their_weighted_mean_and_a_changed_member_relabels(tmp_path, one_task):
    _, rows = one_task
    paths = []
    for k in range(2):
        path = tmp_path / f"member{k}.parquet"
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{"id": r["id"], "logits": [v * (k + 1) + k for v in _fake(i)]}
                                             for i, r in enumerate(rows)]), path)
        paths.append(path)
    members = [{"kind": "logits", "path": str(p)} for p in paths]
    recipe = _with_teacher(tmp_path, {"kind": "ensemble", "members": members, "weights": [1, 3]})
    label(recipe)
    folder = recipe.run_dir / "transfer" / "sent"
    examples, logits = load_transfer(folder)
    index = {r["id"]: i for i, r in enumerate(rows)}
    want = [(np.array(_fake(index[e.id])) + 3 * (2 * np.array(_fake(index[e.id])) + 1)) / 4 for e in examples]
    np.testing.assert_allclose(logits, want, atol=1e-5)
    first = read_manifest(folder)["label_fingerprint"]
    probs = _with_teacher(tmp_path, {"kind": "ensemble", "members": members, "combine": "probabilities"})
    label(probs)
    _, mixed = load_transfer(folder)
    a = np.array([_fake(index[e.id]) for e in examples])
    b = 2 * a + 1
    soft = [np.exp(x) / np.exp(x).sum(axis=1, keepdims=True) for x in (a, b)]
    np.testing.assert_allclose(mixed, np.log((soft[0] + soft[1]) / 2), atol=1e-5)
    assert read_manifest(folder)["label_fingerprint"] != first
    label(recipe)
    assert read_manifest(folder)["label_fingerprint"] == first
    import pyarrow.parquet as pq

    table = pq.read_table(paths[1]).to_pylist()
    table[0]["logits"] = [9.0, -9.0]
    pq.write_table(__import__("pyarrow").Table.from_pylist(table), paths[1])  # one member changes: relabelled
    label(recipe)
    assert read_manifest(folder)["label_fingerprint"] != first


def test_recipe_entries_are_checked_per_kind():
    with pytest.raises(MkdError, match="'max_length' does not apply to a teacher of kind logits"):
        load_recipe(None, ["transfer.teachers.snli={kind: logits, path: x.csv, max_length: 9}"])
    with pytest.raises(MkdError, match=r"transfer\.teachers names task nope"):
        load_recipe(None, ["transfer.teachers.nope=/some/folder"])
    with pytest.raises(MkdError, match="did you mean 'label_map'"):
        load_recipe(None, ["transfer.teachers.snli={kind: hf, path: x, lable_map: {}}"])
    recipe = load_recipe(None, ["transfer.teachers.snli=/a/folder"])  # a plain string stays an mkd folder
    assert recipe.transfer.teachers == {"snli": "/a/folder"}


# ---- real assets: an mkd teacher exported to Hugging Face is the same teacher -----------------------------
@pytest.mark.real
def test_real_pooler_teacher_exported_to_hf_labels_the_transfer_set_the_same(tmp_path):
    """MiniLM-L6 with pooling: pooler, briefly refined on rt_polarity and snli, exported with `mkd export
    --format hf`, then used as two kind: hf teachers: the same logits on the whole transfer set."""
    from mkd.assets import asset_path
    from mkd.serving.export import export_hf
    from mkd.stages.teach import teach

    try:
        asset_path("minilm-l6"), asset_path("rt-snippets"), asset_path("snli"), asset_path("spacy-en-md")
    except MkdError as e:
        pytest.skip(f"real assets not fetched: {e}")
    sizes = ["max_train=24", "max_dev=8", "max_test=8"]
    common = [f"output_dir={tmp_path / 'runs'}", "teacher.pooling=pooler", "teacher.train.max_steps=2",
              "teacher.train.batch_size=8", "transfer.augment.n_iter=1",
              *[f"tasks.{t}.{s}" for t in ("rt_polarity", "snli") for s in sizes]]
    internal = load_recipe(None, [*common, "name=internal"])
    teach(internal)
    hf = export_hf(internal.run_dir / "teacher")
    external = load_recipe(None, [*common, "name=external",
                                  *[f"transfer.teachers.{t}={{kind: hf, path: {Path(hf['out']) / t}}}"
                                    for t in ("rt_polarity", "snli")]])
    for recipe in (internal, external):
        augment(recipe)
        label(recipe)
    for task in ("rt_polarity", "snli"):
        mine, want = load_transfer(internal.run_dir / "transfer" / task)
        theirs, got = load_transfer(external.run_dir / "transfer" / task)
        assert [e.id for e in mine] == [e.id for e in theirs] and len(mine) > 24
        assert float(np.abs(got - want).max()) <= 1e-4
