"""`mkd bench` figures: every serving path, a spread, pinned threads, and reuse by fingerprint (identical
models are measured once; unchanged ones are not re-measured). No assertion here is about time."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import mkd.serving.bench
from mkd.config import load_recipe
from mkd.models.loading import load_model
from mkd.serving.bench import PATHS, bench_folders, mean_speed
from mkd.serving.lstm_kernels import KERNEL
from mkd.stages.pipeline import bench_stage, best_serving
from tests.test_config import GOOD, write
from tests.test_export_predict import make_model
from tests.tinyfix import SPECS, make_examples

NO_NUMPY = set(PATHS) - {"numpy"}
BILSTM_PATHS = set(PATHS) if KERNEL is not None else NO_NUMPY
"""A one-layer `bilstm` student has a numpy path where numba compiles its kernel; bilstm_attn has none."""

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def three(tmp_path_factory, small_bert_dir):
    """Two copies of one tiny student and a different one."""
    root = tmp_path_factory.mktemp("bench")
    a = make_model("bilstm", small_bert_dir, root / "a")
    shutil.copytree(a, root / "copy")
    b = make_model("bilstm_attn", small_bert_dir, root / "b")
    return {"a": a, "copy": root / "copy", "b": b}


def _counting(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = mkd.serving.bench.measure

    def counted(runners, *args, **kw):
        seen.extend(runners)
        return real(runners, *args, **kw)

    monkeypatch.setattr(mkd.serving.bench, "measure", counted)
    return seen


def test_identical_models_are_measured_once_and_every_path_has_a_spread(three, monkeypatch):
    seen = _counting(monkeypatch)
    cache: dict = {}
    examples = make_examples(SPECS["sent"], 8, 1)
    out = bench_folders(three, "sent", examples, [1, 4], rounds=3, threads=1, precision="bf16", cache=cache)
    assert out["a"]["fingerprint"] == out["copy"]["fingerprint"] != out["b"]["fingerprint"]
    assert out["a"]["paths"] == out["copy"]["paths"] and out["copy"]["reused"] and not out["a"]["reused"]
    assert sorted({r.split("@")[0] for r in seen}) == ["a", "b"]  # the copy was not measured again
    assert sorted({r.split("@")[1] for r in seen}) == sorted(BILSTM_PATHS) and len(cache) == 2
    for name in three:
        figures = out[name]
        assert figures["threads"] == 1 and figures["precision"] == "bf16" and figures["best_path"] in PATHS
        assert figures["batch_4"] == figures["paths"]["torch_fp32"]["batch_4"]  # PyTorch fp32 where it was
        assert figures["onnxruntime"]["graph"] == "exported for the benchmark"
        assert set(figures["paths"]) == (NO_NUMPY if name == "b" else BILSTM_PATHS)
        for path in figures["paths"]:
            for b in (1, 4):
                f = figures["paths"][path][f"batch_{b}"]
                s = f["spread"]
                assert s["rounds"] == 3 and s["min"] <= s["p25"] <= f["examples_per_s"] <= s["p75"] <= s["max"]
                assert 0 < f["p50_ms"] <= f["p99_ms"] and f["calls"] >= 3
    assert mean_speed({"sent": out["a"]}, 4, "best") == max(mean_speed({"sent": out["a"]}, 4, p) or 0 for p in PATHS)
    best = best_serving({"sent": out}, "b", 4)
    assert best["best_path"] == out["b"]["best_path"] and set(best["path_examples_per_s"]) == set(PATHS) - {"numpy"}
    assert best["best_batch_1_ms"]["p50_ms"] == out["b"]["paths"][best["best_path"]]["batch_1"]["p50_ms"]
    for name in three:  # every path checked on the same texts against PyTorch fp32
        checks = out[name]["checks"]
        assert set(checks) == (NO_NUMPY if name == "b" else BILSTM_PATHS) and checks["torch_fp32"]["agreement"] == 1.0
        assert all(c["examples"] == 8 and 0 <= c["score"] <= 100 and "passed" in c for c in checks.values())


def test_path_checks_reuse_the_export_gates_logits_only_on_the_same_texts():
    """The bench texts open the gate's texts: a path whose logits the gates computed is not run again, and
    its agreement and score come from those logits; other texts mean every path runs."""
    import numpy as np

    from mkd.serving.bench import path_checks

    spec = SPECS["sent"]
    examples = make_examples(spec, 6, 3)
    gate = [*examples, *make_examples(spec, 4, 4)]
    width = len(spec.labels)
    calls: list[str] = []

    def runner(name: str, shift: float):
        def run(part):
            calls.append(name)
            out = np.zeros((len(part), width), np.float32)
            out[:, 0] = shift
            return out
        return run

    runners = {"m@torch_fp32": runner("m@torch_fp32", 1.0), "m@onnx_int8": runner("m@onnx_int8", 1.0)}
    known = np.zeros((len(gate), width), np.float32)
    known[:, 1] = 1.0  # the gate's int8 logits pick label 1 everywhere: agreement 0 with PyTorch fp32
    checks = path_checks(runners, examples, spec, 4, {"m@onnx_int8": known}, gate)
    assert calls and set(calls) == {"m@torch_fp32"}
    assert checks["m@onnx_int8"]["agreement"] == 0.0 and not checks["m@onnx_int8"]["passed"]
    calls.clear()
    other = make_examples(spec, 6, 5)
    checks = path_checks(runners, other, spec, 4, {"m@onnx_int8": known}, gate)
    assert set(calls) == {"m@torch_fp32", "m@onnx_int8"} and checks["m@onnx_int8"]["agreement"] == 1.0
    calls.clear()  # the gates scored fewer texts than the bench has: run it
    path_checks(runners, examples, spec, 4, {"m@onnx_int8": known[:3]}, gate)
    assert set(calls) == {"m@torch_fp32", "m@onnx_int8"}


def test_a_path_under_its_gate_never_counts_as_the_speed(monkeypatch):
    """The fastest path agrees with PyTorch fp32 on too few texts on one task: the next fastest counts,
    and the summary says why the other did not."""
    def figures(int8_agreement: float) -> dict:
        speeds = {"torch_fp32": 100.0, "torch_precision": 120.0, "onnx_fp32": 150.0, "onnx_int8": 400.0}
        checks = {p: {"passed": True, "agreement": 1.0, "score": 80.0} for p in PATHS}
        checks["onnx_int8"] = {"passed": int8_agreement >= 0.99, "agreement": int8_agreement, "score": 70.0}
        return {"m": {"paths": {p: {"batch_4": {"examples_per_s": v}} for p, v in speeds.items()},
                      "checks": checks}}

    best = best_serving({"sent": figures(0.995), "nli": figures(0.97)}, "m", 4)
    assert best["best_path"] == "onnx_fp32" and best["best_examples_per_s"] == 150.0
    assert "onnx_int8" not in best["path_examples_per_s"] and best["path_scores"]["onnx_fp32"] == 80.0
    assert best["refused_paths"] == {"onnx_int8": "agrees with PyTorch fp32 on 97.0% of nli's bench texts (< 99%)"}
    assert best_serving({"sent": figures(0.995)}, "m", 4)["best_path"] == "onnx_int8"


def test_unchanged_models_are_not_measured_again_and_changed_ones_are(three, monkeypatch, tmp_path):
    examples = make_examples(SPECS["sent"], 6, 2)
    cache: dict = {}
    folders = {"a": three["a"], "b": three["b"]}
    first = bench_folders(folders, "sent", examples, [2], rounds=1, precision="fp32", cache=cache)
    seen = _counting(monkeypatch)
    again = bench_folders(folders, "sent", examples, [2], rounds=1, precision="fp32", cache=cache)
    assert seen == [] and all(again[n]["reused"] for n in folders)
    assert again["a"]["paths"] == first["a"]["paths"]
    changed = tmp_path / "a2"
    model = load_model(three["a"])
    with torch.no_grad():
        model.heads.heads["sent"][1].bias.add_(1.0)
    model.save(changed)
    third = bench_folders({"a": changed, "b": three["b"]}, "sent", examples, [2], rounds=1, precision="fp32",
                          cache=cache)
    assert {r.split("@")[0] for r in seen} == {"a"} and third["b"]["reused"] and not third["a"]["reused"]
    # other bench settings are another fingerprint
    seen.clear()
    bench_folders(folders, "sent", examples, [2], rounds=2, precision="fp32", cache=cache)
    assert {r.split("@")[0] for r in seen} == {"a", "b"}


def test_bench_can_be_turned_off(tmp_path, capsys):
    recipe = load_recipe(write(tmp_path, GOOD), ["bench.enabled=false", f"output_dir={tmp_path}"])
    assert bench_stage(recipe) == {}
    assert "bench: off" in capsys.readouterr().err


def test_bench_command_on_model_folders_prints_every_path(tmp_path, monkeypatch, capsys):
    import yaml

    from mkd.config import StudentConfig
    from mkd.models.students import build_student
    from tests.test_run_pipeline import _write_csv
    from tests.tinyfix import run_cli

    spec = SPECS["sent"]
    files = {s: _write_csv(tmp_path / f"{s}.csv", spec, 12, i) for i, s in enumerate(("train", "dev", "test"))}
    recipe = {"name": "b", "tasks": [{"name": "sent", "source": "files", **files, "text_fields": ["text"],
                                      "type": "classification", "labels": list(spec.labels)}],
              "bench": {"rounds": 2, "batch_sizes": [1, 4], "examples": 8}}
    torch.manual_seed(0)
    cfg = StudentConfig(type="bilstm", embeddings="random", embedding_dim=8, hidden_size=8, max_length=16)
    folder = tmp_path / "m" / "student"
    build_student(cfg, {"sent": spec}, [e.texts[0] for e in make_examples(spec, 12, 0)], None).save(folder)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "bench", "--model", str(folder))
    assert code == 0, err
    header, row = err.strip().splitlines()[-2:]
    assert "int8 b=4" in header and "best b=4" in header and row.split()[0] == "m/student"
    figures = json.loads((folder / "bench.json").read_text())
    assert figures["threads"] == 1 and set(figures["tasks"]["sent"]["paths"]) == BILSTM_PATHS
