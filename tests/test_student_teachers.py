"""Every student kind with every teacher kind (issue 25): `mkd run` finishes, or stops in preflight with one
line and nothing written, never after augment or label. A student that borrows from an encoder (the static
student's vectors, word vectors through an encoder, a tokenizer) takes it from the run's teacher, a per-task mkd
teacher, else the base encoder `teacher.model`, and preflight, the pipeline and distill agree on which.

The whole matrix is decided in preflight (cheap, each cell also builds its student from the chosen encoder);
the cells that matter run end to end: the demo's static student with logits-file teachers (the issue's
reproduction) and the documented "Bring your own teachers" example. Every model is tiny and random.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from mkd.config import load_recipe
from mkd.io import read_json
from mkd.models.students import build_student
from mkd.models.students.borrow import Source
from mkd.models.teacher import TeacherModel
from mkd.stages.preflight import check_inputs
from mkd.stages.student_encoder import student_encoder, trains_teacher
from tests.test_augment import fake_tagger
from tests.test_teachers import write_bert_classifier
from tests.tinyfix import SPECS, make_examples, run_cli, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")
SENT, NLI = SPECS["sent"], SPECS["nli"]
STUDENTS = {  # each kind in the variant that borrows from an encoder
    "static": {"type": "static", "embeddings": "teacher-static", "pooling": "weighted", "embedding_dim": 8,
               "hidden_size": 8},
    "bilstm": {"type": "bilstm", "embeddings": "teacher-static", "embedding_dim": 8, "hidden_size": 8},
    "bilstm_attn": {"type": "bilstm_attn", "embeddings": "teacher", "hidden_size": 8},
    "transformer": {"type": "transformer", "hidden_size": 8, "num_layers": 1, "num_heads": 2},
}
LENDS = {"mkd": Source.TASK, "hf": Source.BASE, "logits": Source.BASE, "ensemble": Source.TASK}
"""Which encoder a student borrows from when every task has a teacher of that kind: an mkd folder (an ensemble
member too) lends its refined encoder; Hugging Face classifiers and files do not, so the base encoder does."""


def _write_csv(path: Path, spec, n: int, seed: int) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*spec.text_fields, "label"])
        for e in make_examples(spec, n, seed):
            w.writerow([*e.texts, spec.labels[e.label]])
    return str(path)


def _parquet(path: Path, rows: list[tuple[str, list[float]]]) -> str:
    pq.write_table(pa.Table.from_pylist([{"id": i, "logits": v} for i, v in rows]), path)
    return str(path)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    """Task files, the base encoder, an mkd teacher, a Hugging Face classifier and a logits file per task."""
    folder = tmp_path_factory.mktemp("kit")
    for spec in (SENT, NLI):
        for split, n, seed in (("train", 24, 0), ("dev", 8, 1), ("test", 8, 2)):
            _write_csv(folder / f"{spec.name}-{split}.csv", spec, n, seed)
        write_bert_classifier(folder / f"hf-{spec.name}", list(spec.labels))
        _parquet(folder / f"{spec.name}.parquet", [("x", [0.0] * len(spec.labels))])  # its rows: filled per test
    encoder = write_tiny_bert(folder / "encoder", hidden=16, seed=3)
    torch.manual_seed(0)
    TeacherModel.from_pretrained(str(encoder), {"sent": SENT, "nli": NLI}, max_length=32).save(folder / "mkd-teacher")
    return folder


def teacher_of(kit: Path, kind: str, task: str) -> object:
    logits = {"kind": "logits", "path": str(kit / f"{task}.parquet")}
    return {"mkd": str(kit / "mkd-teacher"), "hf": {"kind": "hf", "path": str(kit / f"hf-{task}")},
            "logits": logits, "ensemble": {"kind": "ensemble", "members": [str(kit / "mkd-teacher"), logits]}}[kind]


def write_recipe(kit: Path, out: Path, student: dict, teachers: str, **extra) -> Path:
    train = {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "max_steps": 3}
    doc = {
        "name": "cell", "seed": 1, "output_dir": str(out / "runs"), "precision": "no",
        "tasks": [{"name": s.name, "source": "files", "text_fields": list(s.text_fields), "type": "classification",
                   "labels": list(s.labels), **{k: str(kit / f"{s.name}-{k}.csv") for k in ("train", "dev", "test")}}
                  for s in (SENT, NLI)],
        "teacher": {"model": str(kit / "encoder"), "max_length": 32, "train": train},
        "transfer": {"augment": {"n_iter": 1}, "label_batch_size": 32,
                     "teachers": {t: teacher_of(kit, teachers, t) for t in ("sent", "nli")}},
        "student": {**student, "max_length": 32},
        "distill": {"train": train},
        "bench": {"enabled": False},
        **extra,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_preflight_decides_every_student_with_every_teacher_kind(student, kit, tmp_path):
    """Each cell passes preflight writing nothing, borrows from the encoder its teachers lend (the base one when
    none does), needs no `mkd teach`, and its student builds from that encoder as distill would build it."""
    texts = [t for s in (SENT, NLI) for e in make_examples(s, 12, 0) for t in e.texts]
    for kind, source in LENDS.items():
        recipe = load_recipe(write_recipe(kit, tmp_path / kind, STUDENTS[student], kind))
        check_inputs(recipe)
        assert not recipe.run_dir.exists(), f"{student} x {kind}: preflight wrote into the run folder"
        encoder = student_encoder(recipe)
        assert encoder is not None and encoder.source is source, (student, kind, encoder)
        assert not trains_teacher(recipe), (student, kind)
        model = build_student(recipe.student, {"sent": SENT, "nli": NLI}, texts, encoder)
        assert model.arch == student
    plain = load_recipe(write_recipe(kit, tmp_path / "plain", {"type": student, "embeddings": "random",
                                                                "init_from": str(kit / "encoder")}
                                     if student == "transformer" else {"type": student, "embeddings": "random",
                                                                       "pooling": "mean"}, "hf"))
    if student != "static":  # the static student always borrows a tokenizer at least
        assert student_encoder(plain) is None and not trains_teacher(plain)


def test_a_task_without_a_teacher_lends_the_run_teacher(kit, tmp_path):
    path = write_recipe(kit, tmp_path, STUDENTS["static"], "logits")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    del doc["transfer"]["teachers"]["nli"]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    recipe = load_recipe(path)
    assert trains_teacher(recipe) and student_encoder(recipe).source is Source.RUN


def _fill_logits(kit: Path, out: Path, recipe: Path, monkeypatch, capsys) -> dict[str, str]:
    """What a user does: augment, export the rows to label, and give a logits file covering them."""
    code, _, err = run_cli(monkeypatch, capsys, "augment", "-c", str(recipe))
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "transfer", "export", "-c", str(recipe), "--out",
                           str(out / "rows.jsonl"))
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    files = {}
    for spec in (SENT, NLI):
        mine = [r for r in rows if r["task"] == spec.name]
        files[spec.name] = _parquet(out / f"{spec.name}.parquet",
                                    [(r["id"], [float((i + k) % 3) for k in range(len(spec.labels))])
                                     for i, r in enumerate(mine)])
    return files


def test_the_demo_student_with_logits_teachers_runs_end_to_end(kit, tmp_path, monkeypatch, capsys):
    """The issue's reproduction: the default (static) student, every task's teacher a Parquet logits file keyed
    by id over the whole transfer set, bench off. It used to stop at distill, after labelling."""
    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)
    recipe = write_recipe(kit, tmp_path, STUDENTS["static"], "logits")
    files = _fill_logits(kit, tmp_path, recipe, monkeypatch, capsys)
    doc = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    doc["transfer"]["teachers"] = {t: {"kind": "logits", "path": p} for t, p in files.items()}
    recipe.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe))
    assert code == 0, err
    run = tmp_path / "runs" / "cell"
    assert "teach: skipped" in err and f"the base encoder {kit / 'encoder'}" in err and not (run / "teacher").exists()
    meta = read_json(run / "student" / "mkd.json")
    assert meta["arch"] == "static" and meta["settings"]["embeddings"]["encoder"] == "base"
    assert read_json(run / "summary.json")["models"]["student"]["macro"] is not None
    assert list((run / ".work" / "teacher-vectors").glob("*.npy"))  # cached in the run, not beside the asset
    assert not list((kit / "encoder").glob(".work"))
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe))
    assert code == 0 and "distill: unchanged" in err, err


CASES = {  # what preflight refuses, in one line, before the run folder exists
    "no base encoder": ({"teacher": {"model": "./no-such-encoder"}}, STUDENTS["static"],
                        "model folder ./no-such-encoder does not exist"),
    "bigrams on a BiLSTM": ({}, {**STUDENTS["bilstm"], "bigram_buckets": 16},
                            "student.bigram_buckets applies to the static student only, not to bilstm"),
    "layers of nothing": ({}, {**STUDENTS["transformer"], "init_layers": 1},
                          "student.init_layers keeps the first layers of student.init_from, which is not set"),
    "GloVe on the static student": ({}, {**STUDENTS["static"], "embeddings": "glove-6b-50d"},
                                    "student.embeddings 'glove-6b-50d' does not apply to the static student"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_preflight_stops_in_one_line_writing_nothing(case, kit, tmp_path, monkeypatch, capsys):
    extra, student, needle = CASES[case]
    path = write_recipe(kit, tmp_path, student, "logits")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in extra.items():
        doc[section].update(values)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(path))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


# ---- the documented "Bring your own teachers" example, with the default (static) student ----------------------
BYO = """\
name: byo
tasks:
  - {name: reviews, source: files, train: reviews.csv, text_fields: [text], type: classification,
     labels: [negative, positive]}
  - {name: nli, source: files, train: nli.csv, text_fields: [premise, hypothesis], type: classification,
     labels: [entailment, neutral, contradiction]}
  - {name: topics, source: files, train: news.csv, text_fields: [text], type: classification,
     labels: [business, sport, tech]}
transfer:
  teachers:
    reviews: {kind: hf, path: ./models/roberta-reviews}          # id2label: NEGATIVE, POSITIVE
    nli: {kind: hf, path: ./models/deberta-nli, label_map: {LABEL_0: entailment, LABEL_1: neutral,
                                                             LABEL_2: contradiction}}
    topics:
      kind: ensemble
      combine: probabilities
      weights: [2, 1]
      members:
        - {kind: logits, path: api-scores.csv, values: probabilities}   # id, business, sport, tech
        - {kind: hf, path: ./models/topic-classifier}
student: {type: static, embeddings: teacher-static, pooling: weighted}   # the demo's student
"""
"""The recipe of the docs' worked example, word for word (docs/teachers.md, "Bring your own teachers")."""
TINY = ["teacher.model=models/encoder",  # a tiny random BERT stands in for minilm-l6
        "transfer.augment.n_iter=1", "distill.train.max_steps=3", "distill.train.batch_size=16",
        "bench.enabled=false"]


def test_the_worked_example_recipe_is_the_documented_one_word_for_word():
    docs = (Path(__file__).parents[1] / "docs" / "teachers.md").read_text(encoding="utf-8")
    assert BYO in docs


def _byo_files(folder: Path) -> None:
    """The example's data and models, tiny: the texts of the synthetic tasks under the example's labels."""
    from tests.test_teachers import write_roberta_classifier

    for name, spec, labels, n in (("reviews", SENT, ["negative", "positive"], 48),
                                  ("news", SENT, ["business", "sport", "tech"], 48),
                                  ("nli", NLI, ["entailment", "neutral", "contradiction"], 60)):
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["premise", "hypothesis", "label"] if spec.is_pair else ["text", "label"])
            for i, e in enumerate(make_examples(spec, n, 0)):
                w.writerow([*e.texts, labels[(e.label + i) % len(labels)]])
    write_roberta_classifier(folder / "models" / "roberta-reviews", ["NEGATIVE", "POSITIVE"])
    write_bert_classifier(folder / "models" / "deberta-nli", ["LABEL_0", "LABEL_1", "LABEL_2"])
    write_bert_classifier(folder / "models" / "topic-classifier", ["business", "sport", "tech"], seed=4)
    write_tiny_bert(folder / "models" / "encoder", hidden=16, seed=5)


def test_the_bring_your_own_teachers_example_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)
    monkeypatch.chdir(tmp_path)
    _byo_files(tmp_path)
    (tmp_path / "byo.yaml").write_text(BYO, encoding="utf-8")
    sets = [a for s in TINY for a in ("--set", s)]
    code, _, err = run_cli(monkeypatch, capsys, "augment", "-c", "byo.yaml", *sets)
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "transfer", "export", "-c", "byo.yaml", "--task", "topics",
                           "--out", "topics-to-label.csv", *sets)
    assert code == 0, err
    with open("topics-to-label.csv", newline="", encoding="utf-8") as f:  # the API's probabilities, per row
        rows = list(csv.DictReader(f))
    with open("api-scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, [*rows[0], "business", "sport", "tech"])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "business": 0.6 if i % 3 == 0 else 0.2, "sport": 0.6 if i % 3 == 1 else 0.2,
                        "tech": 0.6 if i % 3 == 2 else 0.2})
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", "byo.yaml", *sets)
    assert code == 0, err
    run = tmp_path / "runs" / "byo"
    assert "teach: skipped" in err and "the base encoder models/encoder" in err and not (run / "teacher").exists()
    summary = read_json(run / "summary.json")
    assert sorted(summary["teachers"]) == ["nli", "reviews", "topics"]
    assert summary["models"]["student"]["arch"] == "static" and summary["models"]["student"]["macro"] is not None
