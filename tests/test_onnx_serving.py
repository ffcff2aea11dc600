"""One ONNX graph per model: every task matches PyTorch, the shared layers are in it once, int8 is
gated, tokenizer.json reproduces the model's ids, and serving needs no PyTorch (README's snippet too)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mkd.serving.onnx_graph
from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.models.loading import load_model
from mkd.serving.export import MANIFEST, TOLERANCE, export_onnx
from mkd.serving.predict import run_predict
from mkd.serving.runtime import OnnxModel
from tests.test_export_predict import make_model
from tests.tinyfix import SPECS, make_examples

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


def _examples(n: int = 24) -> dict[str, list]:
    out = {t: make_examples(s, n, 1) for t, s in SPECS.items()}
    out["sent"].append(out["sent"][0].__class__("blank", ("",)))  # an empty text is one <unk> everywhere
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory, small_bert_dir) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for kind in ("bilstm", "bilstm_attn", "transformer", "teacher", "static"):
        folder = make_model(kind, small_bert_dir, root / kind)
        export_onnx(folder, root / f"{kind}-onnx", _examples(), quantize="int8")
        out[kind] = (folder, root / f"{kind}-onnx")
    return out


@pytest.mark.parametrize("kind", ["bilstm", "bilstm_attn", "transformer", "teacher"])
def test_one_graph_gives_every_tasks_pytorch_logits_from_raw_text(kind, exported):
    folder, out = exported[kind]
    doc = json.loads((out / MANIFEST).read_text())
    assert doc["graph"] == "model.onnx" and doc["int8_graph"] == "model.int8.onnx"
    assert sorted(p.name for p in out.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]
    model, served = load_model(folder), OnnxModel(out)
    for task, spec in SPECS.items():
        info = doc["tasks"][task]
        assert info["max_abs_diff"] <= TOLERANCE and info["tokenizer_checked_texts"] == len(_examples()[task])
        examples = make_examples(spec, 13, 7)  # other texts, batch size and lengths than the export saw
        columns = [[e.texts[i] for e in examples] for i in range(len(spec.text_fields))]
        want = predict(model, task, model.encode(spec, examples))
        np.testing.assert_allclose(served.logits(task, columns, batch_size=5), want, atol=TOLERANCE, rtol=0)
        if spec.type == "classification":
            assert info["int8"]["argmax_agreement"] >= 0.99 and "accuracy_change" in info["int8"]


def test_the_shared_layers_are_in_the_graph_once(exported):
    import onnx

    graph = onnx.load(str(exported["bilstm"][1] / "model.onnx")).graph
    # bilstm: one BiLSTM (two directions) for the first text of all three tasks, one for the second text
    assert sum(n.op_type == "LSTM" for n in graph.node) == 4
    names = [i.name for i in graph.initializer]
    assert len(names) == len(set(names))


def _int8_gap(out: Path) -> float:
    """Largest |int8 - fp32| logit over every task, relative to the fp32 logits' largest magnitude."""
    fp32, int8 = OnnxModel(out), OnnxModel(out, "int8")
    gaps = []
    for task, spec in SPECS.items():
        examples = make_examples(spec, 40, 3)
        columns = [[e.texts[i] for e in examples] for i in range(len(spec.text_fields))]
        want = fp32.logits(task, columns)
        gaps.append(float(np.abs(int8.logits(task, columns) - want).max() / np.abs(want).max()))
    return max(gaps)


@pytest.mark.parametrize("kind", ["bilstm", "bilstm_attn"])
def test_int8_lstm_students_quantize_their_lstms_and_keep_the_logits(kind, exported, monkeypatch, tmp_path):
    import shutil

    import onnx

    folder, out = exported[kind]
    ops = [n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node]
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert mkd.serving.onnx_graph.unshare_lstm_weights(out / "model.onnx", tmp_path / "unshared.onnx") > 0
    kept = _int8_gap(out)
    # without unsharing, ONNX Runtime's quantizer scrambles the weights a second LSTM node shares
    monkeypatch.setattr(mkd.serving.onnx_graph, "unshare_lstm_weights", lambda src, dst: shutil.copy(src, dst))
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    try:
        export_onnx(folder, tmp_path / "shared", _examples(), quantize="int8", int8_agreement=0.0)
        broken = _int8_gap(tmp_path / "shared")
    except Fail:  # per channel, ONNX Runtime refuses the scrambled weights' scales outright
        broken = float("inf")
    assert kept < 0.1 and broken > 5 * kept


def _scramble(path: Path) -> None:
    """Replace every weight of a graph, quantized or not, by noise (an int8 LSTM refuses non-zero zero
    points outright, so those stay)."""
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in graph_model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size > 16 and arr.dtype in (np.int8, np.uint8, np.float32) and "zero_point" not in init.name:
            noise = rng.integers(0, 127, arr.shape) if arr.dtype != np.float32 else rng.normal(0, 1, arr.shape)
            init.CopyFrom(numpy_helper.from_array(noise.astype(arr.dtype), init.name))
    onnx.save(graph_model, str(path))


def _sharp(exported, tmp_path: Path) -> Path:
    """The bilstm model with heads that decide (an untrained model answers one class)."""
    import torch

    model = load_model(exported["bilstm"][0])
    with torch.no_grad():
        for head in model.heads.heads.values():
            head[1].weight.mul_(30.0)
    model.save(tmp_path / "sharp")
    return tmp_path / "sharp"


def test_int8_lstms_under_the_gate_fall_back_to_the_matrix_products_alone(exported, monkeypatch, tmp_path):
    import onnx

    real = mkd.serving.onnx_graph.quantize

    def lstms_break(src: Path, dst: Path, ops=mkd.serving.onnx_graph.INT8_OPS[0]) -> None:
        real(src, dst, ops)
        if "LSTM" in ops:
            _scramble(dst)

    monkeypatch.setattr(mkd.serving.onnx_graph, "quantize", lstms_break)
    doc = export_onnx(_sharp(exported, tmp_path), tmp_path / "out", _examples(60), quantize="int8")
    assert doc["int8_ops"] == ["MatMul", "Gemm"]
    assert doc["int8_first_try"].startswith("MatMul/Gemm/LSTM: the int8 graph agrees with PyTorch on")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out" / "model.int8.onnx")).graph.node]
    assert "LSTM" in ops and "DynamicQuantizeLSTM" not in ops
    assert all(t["int8"]["argmax_agreement"] >= 0.99 for t in doc["tasks"].values() if t["type"] == "classification")


def test_a_broken_int8_graph_is_refused_and_nothing_is_written(exported, monkeypatch, tmp_path):
    real = mkd.serving.onnx_graph.quantize

    def broken(src: Path, dst: Path, ops=mkd.serving.onnx_graph.INT8_OPS[0]) -> None:
        real(src, dst, ops)
        _scramble(dst)

    sharp = _sharp(exported, tmp_path)
    export_onnx(sharp, tmp_path / "fine", _examples(60), quantize="int8")  # the real one passes
    monkeypatch.setattr(mkd.serving.onnx_graph, "quantize", broken)
    with pytest.raises(MkdError, match=r"int8 graph agrees with PyTorch on .*< 99%") as refused:
        export_onnx(sharp, tmp_path / "out", _examples(60), quantize="int8")
    assert not (tmp_path / "out").exists()
    assert "of 2 of 3 task(s): task nli " in str(refused.value) and ", task sent " in str(refused.value), \
        "every task under the gate is named in one error, not one per try"
    assert "accuracy changes by" in str(refused.value) and "--int8-agreement" in refused.value.fix
    done = export_onnx(sharp, tmp_path / "out", _examples(60), quantize="int8", int8_agreement=0.0)
    assert done["int8_graph"] and all("argmax_agreement" in t["int8"] for t in done["tasks"].values()
                                      if t["type"] == "classification")
    with pytest.raises(MkdError, match="--quantize int8"):
        export_onnx(exported["bilstm"][0], tmp_path / "out", _examples(), quantize="int4")


def test_a_tokenizer_that_differs_from_the_model_is_refused(exported, monkeypatch, tmp_path):
    from tokenizers import normalizers

    real = mkd.serving.onnx_graph.serving_tokenizer

    def sloppy(model):  # forgets to lowercase
        tok, doc = real(model)
        tok.normalizer = normalizers.Sequence([])
        return tok, doc

    monkeypatch.setattr(mkd.serving.onnx_graph, "serving_tokenizer", sloppy)
    examples = _examples()
    examples["sent"][0] = examples["sent"][0].__class__("upper", ("GOOD Movie",))
    with pytest.raises(MkdError, match=r"tokenizer\.json tokenizes dev text upper of task sent differently"):
        export_onnx(exported["bilstm"][0], tmp_path / "out", examples)
    assert not (tmp_path / "out").exists()


def test_predict_onnx_serves_without_torch_and_agrees_with_predict_model(exported):
    folder, out = exported["bilstm_attn"]
    texts = ["good movie very good", "bad plot", "the actor is not bad", ""]
    code = ("import sys, json; from mkd.serving.predict import run_predict; "
            f"lines = run_predict(None, 'sent', {texts!r}, None, True, {str(out)!r}); "
            "print(json.dumps([json.loads(x)['label'] for x in lines])); print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    labels, torch_loaded = res.stdout.strip().splitlines()
    assert torch_loaded == "False"
    want = [json.loads(x)["label"] for x in run_predict(str(folder), "sent", texts, None, True)]
    assert json.loads(labels) == want
    int8 = [json.loads(x)["label"] for x in run_predict(None, "sent", texts, None, True, out, "int8")]
    assert len(int8) == len(texts)
    with pytest.raises(MkdError, match="either --model DIR or --onnx DIR"):
        run_predict(str(folder), "sent", texts, None, True, out)


@pytest.mark.parametrize("kind", ["bilstm_attn", "teacher"])
def test_an_int8_answer_does_not_depend_on_its_batch_mates(kind, exported):
    """Dynamic int8 scales activations over the whole batch; served one text at a time, every text gets
    the very logits (so labels) it gets alone, in batches of 32 or in any order."""
    _, out = exported[kind]
    served = OnnxModel(out, "int8")
    for task, spec in SPECS.items():
        texts = [[e.texts[i] for e in make_examples(spec, 40, 9)] for i in range(len(spec.text_fields))]
        alone = np.concatenate([served.logits(task, [[c[i]] for c in texts]) for i in range(len(texts[0]))])
        np.testing.assert_array_equal(served.logits(task, texts, batch_size=32), alone)
        backwards = served.logits(task, [c[::-1] for c in texts], batch_size=32)[::-1]
        np.testing.assert_array_equal(backwards, alone)


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- serving-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its serving snippet"
    return found.group(1)


@pytest.mark.parametrize("kind", ["bilstm", "bilstm_attn", "transformer", "teacher", "static"])
def test_the_readme_serving_snippet_gives_mkd_predicts_labels(kind, exported):
    """Word-level inputs (LSTMs), subwords read apart without special tokens (static, served by tokie where the
    export checked it), a pair read as one sequence with token types (Transformer, teacher)."""
    folder, out = exported[kind]
    snippet = readme_snippet()
    assert "import torch" not in snippet and "mkd" not in snippet
    fast = json.loads((out / MANIFEST).read_text())["fast_tokenizer"]["tokenizer"]
    for task, spec in SPECS.items():
        if spec.type != "classification":
            continue
        examples = _examples()[task]  # the export's dev texts, the empty one included
        columns = [[e.texts[i] for e in examples] for i in range(len(spec.text_fields))]
        scope = {"folder": str(out), "task": task, "firsts": columns[0],
                 "seconds": columns[1] if len(columns) > 1 else None}
        exec(snippet, scope)  # the README's own code is what is tested
        assert (type(scope["tokenizer"]).__module__ != "tokenizers") == fast.startswith("tokie"), fast
        np.testing.assert_allclose(scope["logits"], OnnxModel(out).logits(task, columns), atol=1e-5, rtol=0)
        texts = [" ||| ".join(c) if spec.is_pair else c[0] for c in zip(*columns, strict=True)]
        rows = [json.loads(x) for x in run_predict(str(folder), task, texts, None, True)]
        served = [json.loads(x) for x in run_predict(None, task, texts, None, True, out)]
        assert len(scope["labels"]) == len(rows) and sum(bool(r.get("empty")) for r in rows) <= 1
        # mkd predict answers a blank text explicitly empty (never a guess); every other label agrees:
        # the README's snippet, mkd predict --model (fp32 by default) and mkd predict --onnx
        want = [r["label"] for r in rows if not r.get("empty")]
        assert [got for got, r in zip(scope["labels"], rows, strict=True) if not r.get("empty")] == want
        assert [r["label"] for r in served if not r.get("empty")] == want


def test_predict_model_serves_at_fp32_unless_asked(exported, monkeypatch):
    """The folder's recipe says precision auto, and this CPU may be fast at bf16: the labels and
    probabilities are still fp32's (the report's), unless --bf16 asks."""
    import mkd.data.evaluate

    folder, _ = exported["bilstm_attn"]
    seen = []
    real = mkd.data.evaluate.predict

    def spy(*args, **kw):
        seen.append(kw.get("precision", "fp32"))
        return real(*args, **kw)

    monkeypatch.setattr(mkd.data.evaluate, "predict", spy)
    monkeypatch.setattr("mkd.precision.fast_bf16", lambda device: True)
    run_predict(str(folder), "sent", ["good movie"], None, True)
    run_predict(str(folder), "sent", ["good movie"], None, True, precision="bf16")
    assert seen == ["fp32", "bf16"]
    with pytest.raises(MkdError, match="--int8 serves an ONNX export"):
        run_predict(str(folder), "sent", ["good movie"], None, True, precision="int8")


def test_ties_go_to_the_lowest_label_on_every_path():
    """An exact tie of logits: mkd predict, numpy's argmax (the README's snippet, the metrics) and torch's
    argmax all pick the first of the tied labels."""
    import torch

    from mkd.serving.predict import rows_of
    from mkd.tasks.task import Example

    spec = SPECS["nli"]
    logits = np.array([[0.5, 2.0, 2.0], [1.0, 1.0, 1.0], [3.0, -1.0, 3.0]], dtype=np.float32)
    examples = [Example(f"t{i}", ("a cat", "a dog")) for i in range(3)]
    labels = [r["label"] for r in rows_of(spec, examples, logits)]
    assert labels == [spec.labels[1], spec.labels[0], spec.labels[0]]
    assert list(logits.argmax(1)) == list(torch.from_numpy(logits).argmax(1).numpy()) == [1, 0, 0]
