"""Baselines in a run (mkd.stages.baselines, mkd.report.baselines): the recipe's section, turning them off,
a missing extra, unknown names, and the verdict's words. The tiny end-to-end run that writes them into
summary.json and report.html is tests/test_run_pipeline.py's."""

from __future__ import annotations

import sys

import pytest
import yaml

from mkd.baselines import DEFAULT
from mkd.config import DEFAULT_BASELINES, Recipe, load_recipe
from mkd.report.baselines import verdict_lines, verdicts
from mkd.stages.baselines import baselines_section, baselines_stage, bench_baselines
from tests.test_run_pipeline import write_recipe
from tests.tinyfix import run_cli, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def recipe_path(tmp_path):
    return write_recipe(tmp_path, write_tiny_bert(tmp_path / "bert", hidden=16))


def test_the_section_defaults_to_both_and_stays_out_of_every_stage_fingerprint():
    on, off = load_recipe(None), load_recipe(None, ["baselines=[]"])
    assert [b.name for b in on.baselines] == list(DEFAULT_BASELINES) == list(DEFAULT) and off.baselines == []
    sections = (("tasks",), ("tasks", "teacher"), ("tasks", "transfer", "student", "distill"), ("finetune",),
                ("bench",), ("tasks", "bench"))
    assert all(on.section_hash(*s) == off.section_hash(*s) for s in sections)
    plain = Recipe(name="plain", tasks=on.tasks)
    assert yaml.safe_load(plain.to_yaml())["baselines"] == ["model2vec", "fasttext"]  # written back as names
    assert on.baselines[0].grid == {"learning_rate": [1e-3]}  # the demo's one model2vec setting
    with pytest.raises(Exception, match="baseline fasttext is listed twice"):
        load_recipe(None, ["baselines=[fasttext, fasttext]"])


def test_empty_baselines_turn_them_off(recipe_path, capsys):
    recipe = load_recipe(recipe_path, ["baselines=[]"])
    assert baselines_stage(recipe) == {} and "baselines: off" in capsys.readouterr().err
    assert not (recipe.run_dir / "baselines").exists() and bench_baselines(recipe, "sent") == {}
    assert baselines_section(recipe, {}, {"batch_size_for_speed": 8}) == {}


def test_a_missing_extra_is_one_line_and_the_stage_finishes(recipe_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fasttext", None)  # import fasttext -> ImportError
    recipe = load_recipe(recipe_path, ["baselines=[fasttext]"])
    records = baselines_stage(recipe)
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "pip install 'mkd[baselines]'" in skipped[0], err
    assert all("skipped" in r for r in records["fasttext"].values()) and set(records["fasttext"]) == {"sent", "nli"}
    section = baselines_section(recipe, {}, {"batch_size_for_speed": 8, "models": {}})
    assert section["baselines"]["fasttext"]["sent"] == {"skipped": records["fasttext"]["sent"]["skipped"]}
    assert section["baseline_verdict"] == {} and bench_baselines(recipe, "sent") == {}


def test_an_unknown_baseline_is_one_line_with_a_did_you_mean_before_anything_trains(recipe_path, monkeypatch,
                                                                                     capsys):
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", str(recipe_path), "--set", "baselines=[fasttxt]")
    assert code == 2 and "unknown baseline 'fasttxt'" in err and "did you mean 'fasttext'" in err, err
    assert len(err.strip().splitlines()) == 1 and not (recipe_path.parent / "runs").exists()


def _summary(student: tuple[float, float], baselines: dict[str, tuple[float, float]]) -> tuple[dict, dict]:
    """A run with one student on task t (test accuracy, ex/s) and baselines (accuracy, ex/s)."""
    acc, speed = student
    models = {"teacher": {"tasks": ["t"], "test": {"tasks": {"t": {"accuracy": 90.0}}}, "status": "current"},
              "student": {"tasks": ["t"], "test": {"tasks": {"t": {"accuracy": acc}}}, "status": "current"}}
    bench = {"tasks": {"t": {"student": {"paths": {"onnx_int8": {"batch_32": {"examples_per_s": speed}}}}}}}
    found = {b: {"t": {"primary": "accuracy", "test": {"accuracy": a}, "examples_per_s": s}}
             for b, (a, s) in baselines.items()}
    return {"models": models, "baselines": found, "batch_size_for_speed": 32}, bench


@pytest.mark.parametrize(("student", "baselines", "outcome", "words"), [
    ((85.0, 40_000.0), {"model2vec": (83.0, 38_000.0), "fasttext": (80.0, 200_000.0)}, "student",
     ["Distilling paid off", "t: student beats the best baseline at its speed, fasttext, by 5.00 points"]),
    ((85.0, 3_000.0), {"model2vec": (88.3, 38_000.0), "fasttext": (82.9, 200_000.0)}, "baseline",
     ["A baseline wins on 1 of 1 task (t)", "ship the model2vec baseline instead of student",
      "at least as fast (38,000 ex/s vs 3,000 ex/s) and 3.30 points more accurate (88.30 vs 85.00)"]),
    ((85.0, 500_000.0), {"model2vec": (88.0, 38_000.0)}, "trade",
     ["faster than every baseline", "3.00 points less accurate than model2vec", "a trade"]),
    ((85.0, 500_000.0), {"model2vec": (80.0, 38_000.0)}, "student",
     ["beats every baseline: faster than all of them and 5.00 points above the best, model2vec"]),
])
def test_the_verdict_says_who_wins_at_the_students_speed_and_by_how_much(student, baselines, outcome, words):
    summary, bench = _summary(student, baselines)
    found = verdicts(summary, bench)
    assert found["t"]["outcome"] == outcome, found
    text = "\n".join(verdict_lines(found))
    assert all(w in text for w in words), text


def test_an_equal_baseline_at_least_as_fast_wins_and_no_baselines_means_no_verdict():
    summary, bench = _summary((85.0, 3_000.0), {"model2vec": (85.0, 3_000.0)})
    assert verdicts(summary, bench)["t"]["outcome"] == "baseline"
    assert "as accurate" in verdict_lines(verdicts(summary, bench))[1]
    summary, bench = _summary((85.0, 3_000.0), {"model2vec": (80.0, None)})  # bench off: scores only
    assert "beats the best baseline, model2vec, by 5.00 points" in verdict_lines(verdicts(summary, {}))[1]
    assert verdict_lines(verdicts({**summary, "baselines": {}}, bench)) == []
