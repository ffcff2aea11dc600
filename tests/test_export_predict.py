"""Serving: ONNX graphs and Hugging Face folders give mkd's logits; `mkd predict` on texts, files and pairs.

Every model is tiny and random: what is tested is that the artefacts compute the same function as the
PyTorch model (at other batch sizes and lengths than the export saw), not what they predict.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mkd.config import StudentConfig
from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.models.loading import load_model
from mkd.models.students import build_student
from mkd.models.teacher import TeacherModel
from mkd.serving.export import MANIFEST, TOLERANCE, export_hf, export_onnx, ort_session
from mkd.tasks.task import Example
from tests.tinyfix import SPECS, WORDS, make_examples, run_cli

KINDS = ["bilstm_attn", "bilstm", "transformer", "teacher"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _texts() -> list[str]:
    return [t for s in SPECS.values() for e in make_examples(s, 60, 0) for t in e.texts]


def make_model(kind: str, small_bert_dir: Path, folder: Path, pooling: str = "mean") -> Path:
    """A tiny random model of `kind` with a head for each of SPECS (single, pair, regression), saved."""
    torch.manual_seed(0)
    if kind == "teacher":
        model = TeacherModel.from_pretrained(str(small_bert_dir), SPECS, max_length=32, pooling=pooling)
    else:
        cfg = StudentConfig(type=kind, embeddings="random", embedding_dim=16, hidden_size=16, num_heads=2,
                            max_length=32, pooling=pooling)
        model = build_student(cfg, SPECS, _texts(), small_bert_dir)
    model.save(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory, small_bert_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {kind: make_model(kind, small_bert_dir, root / kind) for kind in KINDS}


def _long_examples(spec, n: int, seed: int) -> list[Example]:
    """Longer texts than make_examples writes, so a second check really uses another padded length."""
    out = []
    for e in make_examples(spec, n, seed):
        out.append(Example(e.id, tuple(f"{t} {' '.join(WORDS[(len(t) + k) % 21] for k in range(12))}"
                                        for t in e.texts)))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_export_matches_pytorch_at_other_batch_sizes_and_lengths(kind, models, tmp_path):
    folder = models[kind]
    out = tmp_path / "onnx"
    result = export_onnx(folder, out, {t: make_examples(s, 9, 1) for t, s in SPECS.items()})
    doc = json.loads((out / MANIFEST).read_text())
    assert sorted(doc["tasks"]) == sorted(SPECS) and doc["arch"] == (kind if kind != "teacher" else "teacher")
    model = load_model(folder)
    session = ort_session(out / doc["graph"])
    assert [i.name for i in session.get_inputs()] == doc["inputs"]
    for task, spec in SPECS.items():
        info = result["tasks"][task]
        assert info["max_abs_diff"] <= TOLERANCE
        want_inputs = ["input_ids", "attention_mask"] + (["input_ids_b", "attention_mask_b"]
                                                         if spec.is_pair and kind in ("bilstm", "bilstm_attn") else [])
        assert info["inputs"][: len(want_inputs)] == want_inputs
        for rows, examples in ((3, make_examples(spec, 3, 5)), (11, _long_examples(spec, 11, 6))):
            data = model.encode(spec, examples)
            batch = data.collate(range(rows))
            feed = {n: batch[n].numpy() if n in batch else np.full((rows, 1), int(n.startswith("attention")))
                    for n in doc["inputs"]}
            got = session.run([info["output"]], feed)[0]
            assert got.shape == (rows, spec.num_outputs)
            np.testing.assert_allclose(got, predict(model, task, data), atol=TOLERANCE, rtol=0)
    export_onnx(folder, out, {})  # an earlier export is replaced (probe texts when no data is at hand)
    assert json.loads((out / MANIFEST).read_text())["tasks"]["sent"]["checked_on"] == "probe texts"


@pytest.mark.parametrize("kind", ["transformer", "teacher"])
def test_hf_export_loads_without_mkd_and_gives_the_same_logits(kind, small_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = make_model(kind, small_bert_dir, tmp_path / "model", pooling="pooler")
    export_hf(folder)  # default place: <folder>/hf/<task>/
    model = load_model(folder)
    for task, spec in SPECS.items():
        hf = AutoModelForSequenceClassification.from_pretrained(folder / "hf" / task).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder / "hf" / task)
        assert hf.config.architectures == ["BertForSequenceClassification"]
        assert hf.config.num_labels == spec.num_outputs
        if spec.type == "classification":
            assert [hf.config.id2label[i] for i in range(spec.num_outputs)] == list(spec.labels)
        examples = make_examples(spec, 5, 2) + _long_examples(spec, 2, 3)
        columns = list(zip(*(e.texts for e in examples), strict=True))
        enc = tokenizer(*(list(c) for c in columns), padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            got = hf(**enc).logits.numpy()
        np.testing.assert_allclose(got, predict(model, task, model.encode(spec, examples)), atol=TOLERANCE, rtol=0)


def test_hf_export_refuses_what_no_hf_class_computes(models, tmp_path):
    with pytest.raises(MkdError, match=r"pools 'mean'.*pooling: pooler"):
        export_hf(models["teacher"], tmp_path / "a")
    with pytest.raises(MkdError, match=r"no Hugging Face class.*--format onnx"):
        export_hf(models["bilstm_attn"], tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    busy = tmp_path / "mine"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(MkdError, match="not an mkd export"):
        export_onnx(models["bilstm"], busy)
    assert (busy / "notes.txt").read_text() == "keep me"
    with pytest.raises(MkdError, match="applies to the transformer student only"):
        build_student(StudentConfig(type="bilstm", embeddings="random", pooling="cls"), SPECS, ["a b"], None)


# ---- mkd predict, in process (the CLI's own error handling included) -------------------------------
def _json_rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_predict_texts_pairs_and_files(models, tmp_path, monkeypatch, capsys):
    folder = str(models["bilstm_attn"])
    model = load_model(folder)
    texts = ["good movie very good", "bad plot", "the actor is not bad"]
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", folder, "--task", "sent", "--json", *texts)
    assert code == 0
    rows = _json_rows(out)
    # mkd predict serves at fp32, the arithmetic of the report's scores, whatever the folder's precision
    logits = predict(model, "sent", model.encode(SPECS["sent"], [Example(str(i), (t,)) for i, t in enumerate(texts)]))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for row, text, p in zip(rows, texts, probs, strict=True):
        assert row["texts"] == {"text": text} and row["label"] == SPECS["sent"].labels[int(p.argmax())]
        assert row["probability"] == pytest.approx(p.max(), abs=1e-5)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", folder, "--task", "sent", *texts)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].split() == ["text", "label", "prob"]
    assert all(line.split()[-2] in ("neg", "pos") for line in lines[1:])

    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", folder, "--task", "nli", "--json",
                       "a cat sits ||| yes the cat sits")
    assert code == 0 and _json_rows(out)[0]["texts"] == {"a": "a cat sits", "b": "yes the cat sits"}
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["b", "a", "label"])
        for e in make_examples(SPECS["nli"], 4, 0):
            w.writerow([e.texts[1], e.texts[0], "yes"])
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", folder, "--task", "nli", "--file", str(pairs))
    assert code == 0 and len(out.splitlines()) == 5 and "|||" in out.splitlines()[1]
    scores = tmp_path / "scores.jsonl"
    scores.write_text("\n".join(json.dumps({"text": e.texts[0]}) for e in make_examples(SPECS["score"], 3, 0)))
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", folder, "--task", "score", "--json",
                       "--file", str(scores))
    assert code == 0 and all(set(r) == {"task", "texts", "score"} for r in _json_rows(out))


@pytest.mark.parametrize("args, needle", [
    (["--task", "sentt", "good"], "no head for task 'sentt'; did you mean 'sent'?"),
    (["good"], "serves several tasks"),
    (["--task", "nli", "a cat sits"], "has no '|||'"),
    (["--task", "nli", "--file", "{tmp}/missing.csv"], "not found"),
    (["--task", "nli", "--file", "{tmp}/one.csv"], "no column 'b'"),
    (["--task", "sent"], "nothing to predict"),
], ids=["unknown-task", "no-task", "pair-without-separator", "missing-file", "missing-column", "no-text"])
def test_predict_bad_inputs_exit_2_with_one_line(args, needle, models, tmp_path, monkeypatch, capsys):
    (tmp_path / "one.csv").write_text("a,label\nx,yes\n", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run_cli(monkeypatch, capsys, "predict", "--model", str(models["bilstm"]), *args)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert needle in err


def test_missing_model_and_bad_format_exit_2(models, tmp_path, monkeypatch, capsys):
    for args, needle in ((["predict", "--model", str(tmp_path / "nope"), "x"], "does not exist"),
                         (["export", "--model", str(tmp_path / "nope")], "does not exist"),
                         (["export", "--model", str(models["bilstm"]), "--format", "tflite"], "unknown export format"),
                         (["export", "--model", str(models["bilstm"]), "--format", "hf"], "no Hugging Face class")):
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, err


def test_export_command_writes_onnx_beside_the_model(models, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "export", "--model", str(models["bilstm"]),
                             "--out", str(tmp_path / "x"))
    assert code == 0 and out.strip() == str(tmp_path / "x")
    assert sorted(p.name for p in (tmp_path / "x").glob("*.onnx")) == ["model.onnx"]
    assert err.count("export: ") == len(SPECS) and "[W" not in err  # the exporter's C++ chatter is hidden
