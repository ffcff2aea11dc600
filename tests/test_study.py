"""The study: its rows are valid recipes at every scale, and a tiny study runs end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mkd.config import load_recipe

SPEC = importlib.util.spec_from_file_location("study", Path(__file__).parents[1] / "benchmarks/study/study.py")
study = importlib.util.module_from_spec(SPEC)
sys.modules["study"] = study  # dataclasses look their module up
SPEC.loader.exec_module(study)


@pytest.mark.parametrize("scale", ["demo", "full", "full-core", "tiny", "gpu", "gpu-tiny"])
def test_every_row_is_a_valid_recipe(scale, tmp_path):
    rows = study.rows(scale, tmp_path)
    base_name = study.SCALES[scale].base
    assert len({(r.run, r.folder, r.stages) for r in rows}) == len(rows)
    for row in rows:
        recipe = load_recipe(base_name, study.row_sets(scale, tmp_path, row, 1))
        assert recipe.name == row.run and Path(recipe.output_dir).resolve() == tmp_path.resolve()
        if row.seeded:
            assert recipe.student.folder == f"{row.folder}-s1" and recipe.distill.seed == 1
        if row.run.startswith(("single-", "nodistill-", "teacher-")):
            assert [t.name for t in recipe.tasks] == [row.run.split("-", 1)[1]]
            base = load_recipe(base_name, list(study.SCALES[scale].extra)).task(recipe.tasks[0].name)
            assert recipe.tasks[0].max_train == base.max_train  # single-task rows keep the scale's sizes
        if row.kind == "teacher" and scale in ("full", "full-core", "gpu"):  # at least one full epoch of all the data
            assert recipe.teacher.train.max_steps is None and recipe.teacher.train.epochs >= 1
            assert recipe.teacher.train.patience is None  # no early stop before the epoch ends
            assert all(t.max_train is None for t in recipe.tasks)
        if scale.startswith("gpu"):  # bf16 in every training stage; MPNet-base on the GPU itself
            trains = (recipe.teacher.train, recipe.distill.train, recipe.finetune.train)
            assert all(t.mixed_precision == "bf16" for t in trains)
            assert recipe.teacher.model == ("mpnet-base" if scale == "gpu" else "minilm-l6")
        if row.kind == "peer":  # peers see exactly the splits the mkd rows of the task see
            assert row.needs == (row.extra["peer"],) and [t.name for t in recipe.tasks] == [row.folder]
            base = load_recipe(base_name, list(study.SCALES[scale].extra)).task(row.folder)
            assert recipe.tasks[0] == base


@pytest.mark.parametrize("scale", ["demo", "full"])
def test_ablations_differ_from_the_base_student(scale):
    """Every vector ablation changes the scale's own vectors; every student row names its own folder."""
    rows = study.rows(scale)
    base = load_recipe(study.SCALES[scale].base, list(study.SCALES[scale].lstm)).student.embeddings
    vectors = [r for r in rows if r.name.endswith("vectors")]
    assert len(vectors) == len(study.VECTORS) - 1
    chosen = {load_recipe(study.SCALES[scale].base, study.row_sets(scale, Path("runs"), r, 1)).student.embeddings
              for r in vectors}
    assert base not in chosen and len(chosen) == len(vectors)


def test_the_gpu_scale_is_a_subset_with_peers_and_both_teacher_rows():
    names = [r.name for r in study.rows("gpu")]
    assert names == [r.name.replace("MiniLM-L6 (multi", "MPNet-base (multi") for r in study.rows("gpu-tiny")]
    assert "Teacher MPNet-base (multi-task)" in names and "Teacher MPNet-base (multi-task), ONNX int8" in names
    assert not any(n.startswith(("Ablation", "Gap")) or "only)" in n for n in names)
    assert {r.extra["peer"] for r in study.rows("gpu") if r.kind == "peer"} == set(study.PEER_NAMES)


def test_rows_missing_a_piece_say_which(monkeypatch):
    """A row needing code this checkout lacks is skipped with a reason naming the piece (the lead's merge
    brings it); with the piece present, nothing is missing."""
    static = next(r for r in study.rows("tiny") if r.name == "MKD-Static (multi-task)")
    monkeypatch.setitem(study.NEEDS, "static", (lambda: False, "`student.type: static` (branch students)"))
    assert "student.type: static" in study.missing(static) and "branch students" in study.missing(static)
    monkeypatch.setitem(study.NEEDS, "static", (lambda: True, "-"))
    assert study.missing(static) is None


def test_versus_peers_finds_the_best_mkd_row_at_least_as_fast():
    from study_report import versus_peers

    from mkd.report.plots import Point

    pts = {"rt": [Point("ft", 70_000, 73.6), Point("m2v", 11_000, 75.2), Point("static", 12_000, 76.5),
                  Point("lstm", 900, 78.0), Point("fast-bad", 80_000, 60.0)],
           "snli": [Point("ft", 70_000, 62.0), Point("lstm", 800, 70.0)]}
    found = {(r["task"], r["peer"].name): r for r in versus_peers(pts, {"rt": {"ft", "m2v"}, "snli": {"ft"}})}
    assert found["rt", "m2v"]["mkd"].name == "static" and found["rt", "m2v"]["ahead"] == 1.3
    assert found["rt", "ft"]["mkd"].name == "fast-bad" and found["rt", "ft"]["ahead"] == -13.6
    assert found["snli", "ft"]["mkd"] is None and found["snli", "ft"]["ahead"] is None
    assert len(found) == 3  # a peer is never compared with another peer


def test_a_task_speed_comes_from_the_model_scored_on_that_task():
    from study_report import task_speed

    def model(path: str, task: str) -> dict:
        return {"path": path, "test": {"tasks": {task: {"accuracy": 70.0}}}}

    def figures(fast: float) -> dict:
        return {"batch_sizes": [32], "tasks": {t: {"batch_32": {"examples_per_s": fast}} for t in ("rt", "snli")}}

    entry = {"seeds": {"1": {"models": [model("tuned/rt", "rt"), model("tuned/snli", "snli")]}}}
    bench = {"tuned/rt": figures(100.0), "tuned/snli": figures(200.0)}  # each model has both tasks' heads
    assert task_speed(entry, bench, "rt") == 100.0 and task_speed(entry, bench, "snli") == 200.0


def test_processes_side_by_side_keep_each_others_seeds(tmp_path):
    path = tmp_path / "results.json"
    study.update_results(path, "row", {"sets": ["a=1"], "seeds": {"3": {"models": [3]}}})
    study.update_results(path, "row", {"sets": ["a=1"], "seeds": {"1": {"models": [1]}, "2": {"models": [2]}}})
    assert list(json.loads(path.read_text())["row"]["seeds"]) == ["1", "2", "3"]
    study.update_results(path, "row", {"sets": ["a=2"], "seeds": {"1": {"models": [9]}}})  # a changed recipe
    assert json.loads(path.read_text())["row"]["seeds"] == {"1": {"models": [9]}}


TINY_ROWS = ("Teacher MiniLM-L6 (multi-task)", "single-task KD (rt_polarity)", "MKD-LSTM (", "MKD-Static",
             "supervised (rt_polarity)", "StaticModelForClassification (rt_polarity)")
"""One row of every kind (teachers fp32 and int8, single-task KD, the LSTM and static MKD families,
fine-tuning, the peers; the Transformer row runs in the gpu-tiny test), on one task for the single-task
ones: every row's recipe is checked by test_every_row_is_a_valid_recipe,
and this keeps the end-to-end run within a CI budget."""


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 25 `mkd` commands: minutes alone, far more on a loaded machine
def test_a_tiny_study_runs_end_to_end(tmp_path):
    """The study's rows of every kind (real assets, tiny sizes): results, shared transfer sets, bench, table, plots."""
    script = Path(__file__).parents[1] / "benchmarks/study/study.py"
    runs, results = tmp_path / "runs", tmp_path / "results.json"
    base = [sys.executable, str(script), "--scale", "tiny", "--runs", str(runs), "--results", str(results)]
    subprocess.run([*base, "--seeds", "1", "--rows", *TINY_ROWS], check=True, capture_output=True, text=True,
                   timeout=3000)
    stored = json.loads(results.read_text())
    skipped = stored.pop("_skipped")
    every = [r for r in study.rows("tiny", runs) if any(k.lower() in r.name.lower() for k in TINY_ROWS)]
    assert skipped == {r.name: study.missing(r) for r in every if study.missing(r)}
    # only rows needing a piece this branch lacks (static student; peers only without their wheels) are skipped
    assert all(("branch students" in why and r.needs[0] in study.NEEDS) or "pip install -e .[study]" in why
               for r in every if (why := skipped.get(r.name)))
    names = [r.name for r in every if r.name not in skipped]
    assert list(stored) == names
    peers = [n for n in names if stored[n]["kind"] == "peer"]
    assert len(peers) == 2 or any("pip install" in why for why in skipped.values())  # fastText, model2vec (rt)
    for name in peers:  # trained on the tiny scale's own splits, hyper-parameters chosen on dev
        entry = json.loads((runs / stored[name]["run"] / stored[name]["folder"] / "baseline.json").read_text())
        assert entry["sizes"] == {"train": 48, "dev": 16, "test": 16} and len(entry["grid"]) >= 1
    for name in names:
        for seed in stored[name]["seeds"].values():
            for model in seed["models"]:
                assert model["test"]["tasks"], name
    # the single-task runs got their transfer sets from other runs (hard links), labelled once
    log = (runs / "study.log").read_text()
    assert log.count("label: unchanged") >= 2
    shard = next((runs / "single-rt_polarity" / "transfer" / "rt_polarity").glob("logits-*.parquet"))
    assert shard.stat().st_nlink > 1
    # a second pass recomputes nothing: every stage of the row says so, and the stored result is unchanged
    before = len(log)
    row = "MKD-LSTM (bilstm_attn, multi-task)"
    subprocess.run([*base, "--seeds", "1", "--rows", row], check=True, capture_output=True, text=True, timeout=900)
    second = (runs / "study.log").read_text()[before:]
    assert "augment: unchanged" in second and "label: unchanged" in second and "distill: unchanged" in second
    assert "wrote" not in second
    assert json.loads(results.read_text())[row]["seeds"]["1"]["models"] == stored[row]["seeds"]["1"]["models"]
    out = subprocess.run([*base, "--bench", "--table", "--plot", str(tmp_path / "plots")], check=True,
                         capture_output=True, text=True, timeout=1200)
    lines = [line for line in out.stdout.splitlines() if line.startswith("| ") and "|---" not in line]
    split = next(i for i, line in enumerate(lines) if line.startswith("| task | peer |"))
    table, per_peer = lines[:split], lines[split + 1 :]
    assert len(table) == len(names) + 1  # header and one line per row
    assert len(per_peer) == len(peers)  # one line per peer and task: the mkd row at least as fast, or none
    teacher = next(line for line in table if line.startswith("| Teacher MiniLM-L6 (multi-task)"))
    assert "100.0%" in teacher and "1.0×" in teacher
    assert all(line.split("|")[8].strip() not in ("", "-") for line in table[1:])  # every row has a speed
    assert (tmp_path / "plots" / "quality-vs-speed.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / "per-task.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / "pareto.png").stat().st_size > 10_000
    bench = json.loads(results.read_text())["_bench"]  # one thread, every row (peers and int8 graphs too)
    for name in names:
        for model in stored[name]["seeds"][next(iter(stored[name]["seeds"]))]["models"]:
            figures = bench[model["path"]]["tasks"]
            assert all(f["threads"] == 1 and f["batch_4"]["examples_per_s"] > 0 for f in figures.values()), name


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_gpu_scale_runs_tiny_on_cpu(tmp_path):
    """The gpu command's rows, stages and bf16 settings on CPU at tiny sizes (MiniLM-L6 for MPNet-base),
    so that `study.py --scale gpu` runs the first time it meets a GPU."""
    script = Path(__file__).parents[1] / "benchmarks/study/study.py"
    runs, results = tmp_path / "runs", tmp_path / "results.json"
    base = [sys.executable, str(script), "--scale", "gpu-tiny", "--runs", str(runs), "--results", str(results)]
    keep = ("Teacher", "MKD-LSTM (", "MKD-Transformer (", "fastText supervised (rt")  # the kinds, in CI time
    subprocess.run([*base, "--seeds", "1", "--rows", *keep], check=True, capture_output=True, text=True, timeout=3000)
    out = subprocess.run([*base, "--bench", "--table", "--plot", str(tmp_path / "plots")], check=True,
                         capture_output=True, text=True, timeout=1200)
    stored = json.loads(results.read_text())
    skipped = stored.pop("_skipped")
    chosen = [r.name for r in study.rows("gpu-tiny") if any(k.lower() in r.name.lower() for k in keep)]
    assert [n for n in stored if n != "_bench"] == [n for n in chosen if n not in skipped]
    for name in ("MKD-LSTM (bilstm_attn, multi-task)", "MKD-Transformer (3 layers of MiniLM-L6)"):
        model = runs.parent / stored[name]["seeds"]["1"]["models"][0]["path"]
        assert load_recipe(model / "recipe.yaml").distill.train.mixed_precision == "bf16"
        assert (model / "metrics.json").is_file()
    assert "| rt_polarity | fastText" in out.stdout or "fasttext" in " ".join(skipped)
    assert (tmp_path / "plots" / "pareto.png").stat().st_size > 10_000
