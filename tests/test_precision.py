"""Precision: the setting's resolution, training at bf16 (fp32 master weights, exact resume, a
checkpoint of another precision refused), precision recorded by the stages, the labelling fidelity
gate and its fp32 fallback, and --threads / OMP_NUM_THREADS."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mkd import precision as prec
from mkd.config import TrainConfig, load_recipe
from mkd.data.evaluate import predict
from mkd.data.fidelity import compare, gate
from mkd.data.transfer import load_transfer, read_manifest
from mkd.errors import MkdError
from mkd.io import read_json
from mkd.models.teacher import TeacherModel
from mkd.stages.augment import augment
from mkd.stages.evaluate import evaluate_folder
from mkd.stages.label import label
from mkd.stages.teach import teach
from mkd.train.loop import fit
from mkd.train.losses import gold_loss
from tests.test_augment import fake_tagger
from tests.tinyfix import SPECS, make_examples, write_tiny_bert


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tinybert"))


def _setup(bert_dir, n_train=48):
    torch.manual_seed(0)
    model = TeacherModel.from_pretrained(str(bert_dir), SPECS, max_length=32, dropout=0.1)
    train = {t: model.encode(s, make_examples(s, n_train, 1)) for t, s in SPECS.items()}
    dev = {t: model.encode(s, make_examples(s, 30, 2)) for t, s in SPECS.items()}
    return model, train, dev


def _cfg(**kw):
    base = dict(epochs=1, batch_size=16, lr=2e-3, warmup_ratio=0.1, patience=None, log_every=5)
    return TrainConfig(**{**base, **kw})


# --------------------------------------------------------------------------- the setting


def test_auto_is_bf16_only_where_the_hardware_is_fast(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert prec.resolve("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert prec.resolve("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert prec.resolve("auto", "cpu") == "fp32"
    assert prec.resolve("no", "cpu") == "fp32" and prec.resolve("bf16", "cpu") == "bf16"
    if not torch.cuda.is_available():
        assert prec.resolve("auto", "cuda") == "fp32"
    with pytest.raises(MkdError, match="precision fp16 needs a CUDA GPU") as info:
        prec.resolve("fp16", "cpu")
    assert "\n" not in info.value.line()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 avx2\n\nprocessor\t: 1\n")
    assert prec.cpu_flags.__wrapped__(str(info)) == {"fpu", "sse", "avx512_bf16", "avx2"}
    assert prec.cpu_flags.__wrapped__(str(tmp_path / "absent")) == frozenset()


def test_autocast_computes_in_bf16_and_predict_returns_fp32(bert_dir):
    model, _, dev = _setup(bert_dir)
    layer = torch.nn.Linear(4, 4)
    with prec.autocast("bf16", "cpu"):
        assert layer(torch.ones(2, 4)).dtype == torch.bfloat16
    with prec.autocast("fp32", "cpu"):
        assert layer(torch.ones(2, 4)).dtype == torch.float32
    full, half = predict(model, "nli", dev["nli"]), predict(model, "nli", dev["nli"], precision="bf16")
    assert half.dtype == np.float32 and half.shape == full.shape
    assert not np.array_equal(full, half) and np.allclose(full, half, atol=0.1)


# --------------------------------------------------------------------------- training


class Interrupt(Exception):
    pass


def test_bf16_training_keeps_fp32_weights_and_resumes_bit_exact(bert_dir, tmp_path):
    cfg = _cfg(epochs=2, eval_every=5, checkpoint_every=3, mixed_precision="bf16")
    model, train, dev = _setup(bert_dir)
    result = fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "a", seed=5, fingerprint="f")
    assert result.precision == "bf16"
    assert all(v.dtype == torch.float32 for v in model.state_dict().values() if v.is_floating_point())
    state = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())
    assert state["train"]["precision"] == "bf16"
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    def stop_at_7(step):
        if step == 7:
            raise Interrupt

    model, train, dev = _setup(bert_dir)
    with pytest.raises(Interrupt):
        fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "b", seed=5, fingerprint="f", on_step=stop_at_7)
    model, train, dev = _setup(bert_dir)
    again = fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "b", seed=5, fingerprint="f", resume=True)
    assert again.steps == result.steps and again.precision == "bf16"
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k
    assert (tmp_path / "a" / "eval_log.csv").read_text() == (tmp_path / "b" / "eval_log.csv").read_text()


def test_bf16_differs_from_fp32(bert_dir, tmp_path):
    """The setting is really used: the same run at fp32 and bf16 ends with other weights."""
    weights = {}
    for mp in ("no", "bf16"):
        model, train, dev = _setup(bert_dir)
        fit(model, SPECS, train, dev, gold_loss, _cfg(max_steps=4, mixed_precision=mp), tmp_path / mp, seed=1,
            fingerprint="f")
        weights[mp] = model.state_dict()["encoder.embeddings.word_embeddings.weight"].clone()
    assert not torch.equal(weights["no"], weights["bf16"])


@pytest.mark.parametrize(("first", "then", "words"), [("no", "bf16", "written at fp32, this run trains at bf16"),
                                                      ("bf16", "no", "written at bf16, this run trains at fp32")])
def test_resume_at_another_precision_is_refused(bert_dir, tmp_path, first, then, words):
    model, train, dev = _setup(bert_dir, n_train=16)
    fit(model, SPECS, train, dev, gold_loss, _cfg(max_steps=2, checkpoint_every=1, mixed_precision=first),
        tmp_path / "w", seed=0, fingerprint="same")
    with pytest.raises(MkdError, match=words) as info:
        fit(model, SPECS, train, dev, gold_loss, _cfg(max_steps=3, checkpoint_every=1, mixed_precision=then),
            tmp_path / "w", seed=0, fingerprint="same", resume=True)
    assert "\n" not in info.value.line() and "start over without --resume" in info.value.line()


# --------------------------------------------------------------------------- the stages record it


def _recipe(tmp_path: Path, bert_dir: Path, **top) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "train.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for e in make_examples(SPECS["sent"], 60, 0):
            w.writerow([e.texts[0], SPECS["sent"].labels[e.label]])
    doc = {"name": "p", "output_dir": str(tmp_path / "runs"),
           "tasks": [{"name": "mine", "source": "files", "train": str(data), "text_fields": ["text"],
                      "type": "classification", "labels": ["neg", "pos"]}],
           "teacher": {"model": str(bert_dir), "max_length": 32,
                       "train": {"max_steps": 3, "batch_size": 16, "patience": None}},
           "transfer": {"shard_size": 20, "label_batch_size": 16, "augment": {"n_iter": 1}}, **top}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("setting", "used"), [("no", "fp32"), ("bf16", "bf16")])
def test_teach_and_evaluate_record_the_precision(bert_dir, tmp_path, setting, used):
    """Training runs at the precision asked for; every stored score is at fp32, the arithmetic `mkd predict`
    and the ONNX graph serve (so the report's accuracy is what a user gets)."""
    path = _recipe(tmp_path, bert_dir, precision=setting)
    out = teach(load_recipe(path, [f"teacher.train.mixed_precision={setting}"]))
    assert read_json(out / "stage.json")["precision"] == used
    assert read_json(out / "metrics.json")["precision"] == "fp32"
    stored = read_json(out / "metrics.json")["splits"]["dev"]
    evaluate_folder(out, "dev", str(path))
    assert read_json(out / "metrics.json")["precision"] == "fp32"
    assert read_json(out / "metrics.json")["splits"]["dev"] == stored  # the same scores, recomputed


def _noisy_bf16(monkeypatch, scale: float) -> None:
    """The gate's bf16 path made unfaithful: large noise on top of the real bf16 logits."""
    import mkd.stages.label as stage

    real = stage.teacher_logits

    def noisy(teacher, task, examples, batch_size=64, device="cpu", precision="fp32"):
        out = real(teacher, task, examples, batch_size, device, precision)
        if precision == "fp32":
            return out
        return out + np.random.default_rng(0).normal(0, scale, out.shape).astype(np.float32)

    monkeypatch.setattr(stage, "teacher_logits", noisy)


def _labelled(tmp_path, bert_dir, setting, threshold=0.99):
    path = _recipe(tmp_path, bert_dir, precision=setting)
    recipe = load_recipe(path, [f"transfer.fidelity_threshold={threshold}", "transfer.fidelity_examples=15"])
    teach(recipe)
    augment(recipe, tagger=fake_tagger)
    label(recipe)
    folder = recipe.run_dir / "transfer" / "mine"
    return read_manifest(folder), load_transfer(folder)[1]


def test_labelling_gate_falls_back_to_fp32_and_records_why(bert_dir, tmp_path, monkeypatch, capsys):
    _, fp32_logits = _labelled(tmp_path / "a", bert_dir, "no")
    _noisy_bf16(monkeypatch, scale=10.0)
    capsys.readouterr()
    manifest, logits = _labelled(tmp_path / "b", bert_dir, "bf16")
    gate_figures = manifest["fidelity"]
    assert manifest["label_precision"] == "fp32" and gate_figures["fell_back"] is True
    assert gate_figures["requested"] == "bf16" and gate_figures["used"] == "fp32" and gate_figures["examples"] == 15
    assert gate_figures["agreement"] < 0.99 and gate_figures["max_abs_diff"] > 1.0
    assert gate_figures["max_abs_diff"] >= gate_figures["mean_abs_diff"] > 0
    assert np.array_equal(logits, fp32_logits)  # labelled at fp32 after all
    lines = [line for line in capsys.readouterr().err.splitlines() if "labelling at fp32 instead" in line]
    assert len(lines) == 1 and "below the threshold 99.00%" in lines[0]


def test_labelling_in_bf16_passes_the_gate_and_records_the_figures(bert_dir, tmp_path):
    _, fp32_logits = _labelled(tmp_path / "a", bert_dir, "no")
    manifest, logits = _labelled(tmp_path / "b", bert_dir, "bf16", threshold=0.5)
    figures = manifest["fidelity"]
    assert manifest["label_precision"] == "bf16" and figures["fell_back"] is False
    assert 0.5 <= figures["agreement"] <= 1 and 0 < figures["max_abs_diff"] < 0.5
    assert not np.array_equal(logits, fp32_logits) and np.allclose(logits, fp32_logits, atol=0.5)


def test_fp32_labelling_records_its_precision_and_keeps_its_fingerprint(bert_dir, tmp_path):
    from mkd.stages.label import label_fingerprint

    manifest, _ = _labelled(tmp_path, bert_dir, "no")
    assert manifest["label_precision"] == "fp32" and "fidelity" not in manifest
    assert label_fingerprint("t", "x", "mine") == label_fingerprint("t", "x", "mine", "fp32")
    assert label_fingerprint("t", "x", "mine") != label_fingerprint("t", "x", "mine", "bf16")


def test_gate_figures_and_decision():
    ref = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.0, 3.0]])
    assert compare(ref, ref) == (1.0, 0.0, 0.0)
    agreement, mean, biggest = compare(ref, ref + np.array([[0, 0], [0, 0], [0, 1.0], [0, 0]]))
    assert agreement == 0.75 and mean == pytest.approx(1 / 8) and biggest == 1.0
    calls = []

    def logits_at(p):
        calls.append(p)
        return ref if p == "fp32" else ref + np.array([[0, 0], [0, 0], [0, 1.0], [0, 0]])

    assert gate(logits_at, "bf16", 0.7).used == "bf16"
    low = gate(logits_at, "bf16", 0.8)
    assert low.used == "fp32" and low.fell_back and low.record()["agreement"] == 0.75
    assert calls == ["fp32", "bf16", "fp32", "bf16"]
    scores = np.array([[1.0], [2.0], [3.0]])
    assert compare(scores, scores + 1e-4)[0] == 1.0 and compare(scores, scores + 1.0)[0] == 0.0


# --------------------------------------------------------------------------- threads

HOOK = """
import sys, torch
import mkd.stages.augment as stage
stage.augment = lambda recipe, force=False: print("threads", torch.get_num_threads())
from mkd.cli import main
sys.argv = ["mkd", "augment", "-c", sys.argv[1], *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(("args", "omp", "expected"), [
    (["--threads", "1"], None, 1), (["--threads", "3"], "1", 3), ([], "2", 2), ([], None, "cores")])
def test_threads_flag_and_omp_num_threads_are_honoured(tmp_path, bert_dir, args, omp, expected):
    path = _recipe(tmp_path, bert_dir)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    done = subprocess.run([sys.executable, "-c", HOOK, str(path), *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert done.stdout.split() == ["threads", str(cores if expected == "cores" else expected)]


def test_bad_thread_counts_are_one_line_errors(tmp_path, bert_dir, monkeypatch):
    path = _recipe(tmp_path, bert_dir)
    bad = subprocess.run([sys.executable, "-m", "mkd", "augment", "-c", str(path), "--threads", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--threads" in bad.stderr
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    before = torch.get_num_threads()
    with pytest.raises(MkdError, match="OMP_NUM_THREADS='many' is not a positive whole number"):
        prec.set_threads()
    assert torch.get_num_threads() == before


def test_report_shows_the_precision_of_each_model(tmp_path):
    from mkd.io import write_json
    from mkd.report.write import write_report

    model = {"arch": "x", "path": str(tmp_path / "none"), "tasks": ["mine"], "dev": None,
             "test": {"tasks": {"mine": {"accuracy": 80.0}}, "macro": 80.0}, "macro": 80.0,
             "parameters": {"total": 10, "without_embeddings": 5}, "examples_per_s": 10.0}
    write_json(tmp_path / "summary.json", {"recipe": "r", "machine": {}, "batch_size_for_speed": 32, "models": {
        "teacher": {**model, "precision": "bf16"}, "student": {**model, "precision": "fp32"}}})
    html = write_report(tmp_path).read_text()
    line = "Training precision (every score at fp32, as mkd predict serves): teacher bf16; student fp32"
    assert line in (tmp_path / "report.md").read_text() and line in html
