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


@pytest.mark.parametrize("scale", ["demo", "full", "tiny"])
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
        if row.kind == "teacher" and scale == "full":  # equal batches per task: 1,000 = about 100 rt + 900 snli
            assert recipe.teacher.train.max_steps == {"mkd": 1000, "teacher-rt_polarity": 100}.get(row.run, 900)


@pytest.mark.parametrize("scale", ["demo", "full"])
def test_ablations_differ_from_the_base_student(scale):
    """Every vector ablation changes the scale's own vectors; every student row names its own folder."""
    rows = study.rows(scale)
    base = load_recipe(study.SCALES[scale].base).student.embeddings
    vectors = [r for r in rows if r.name.endswith("vectors")]
    assert len(vectors) == len(study.VECTORS) - 1
    assert all(f"student.embeddings={base}" not in r.sets for r in vectors)


def test_a_tiny_study_runs_end_to_end(tmp_path):
    """The whole study (every row, real assets, tiny sizes): results, shared transfer sets, bench, table, plots."""
    script = Path(__file__).parents[1] / "benchmarks/study/study.py"
    runs, results = tmp_path / "runs", tmp_path / "results.json"
    base = [sys.executable, str(script), "--scale", "tiny", "--runs", str(runs), "--results", str(results)]
    subprocess.run([*base, "--seeds", "1"], check=True, capture_output=True, text=True, timeout=900)
    stored = json.loads(results.read_text())
    names = [r.name for r in study.rows("tiny", runs)]
    assert list(stored) == names
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
    subprocess.run([*base, "--seeds", "1", "--rows", row], check=True, capture_output=True, text=True, timeout=300)
    second = (runs / "study.log").read_text()[before:]
    assert "augment: unchanged" in second and "label: unchanged" in second and "distill: unchanged" in second
    assert "wrote" not in second
    assert json.loads(results.read_text())[row]["seeds"]["1"]["models"] == stored[row]["seeds"]["1"]["models"]
    out = subprocess.run([*base, "--bench", "--table", "--plot", str(tmp_path / "plots")], check=True,
                         capture_output=True, text=True, timeout=600)
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(names) + 1  # header and one line per row
    teacher = next(line for line in table if line.startswith("| Teacher MiniLM-L6 (multi-task)"))
    assert "100.0%" in teacher and "1.0×" in teacher
    assert all(line.split("|")[8].strip() not in ("", "-") for line in table[1:])  # every row has a speed
    assert (tmp_path / "plots" / "quality-vs-speed.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / "per-task.png").stat().st_size > 10_000
