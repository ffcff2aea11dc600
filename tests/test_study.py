"""The study's rows are valid recipes: every override of every row parses against its scale."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mkd.config import load_recipe

SPEC = importlib.util.spec_from_file_location("study", Path(__file__).parents[1] / "benchmarks/study/study.py")
study = importlib.util.module_from_spec(SPEC)
sys.modules["study"] = study  # dataclasses look their module up
SPEC.loader.exec_module(study)


@pytest.mark.parametrize("scale", ["demo", "full"])
def test_every_row_is_a_valid_recipe(scale):
    rows = study.rows(scale)
    assert len({(r.run, r.folder, r.stages) for r in rows}) == len(rows)
    for row in rows:
        sets = [f"name={row.run}", f"output_dir=runs/study-{scale}", *row.sets, f"student.folder={row.folder}-s1",
                "distill.seed=1"]
        recipe = load_recipe(scale, sets)
        assert recipe.name == row.run
        if row.run.startswith(("single-", "nodistill-", "teacher-")):
            assert [t.name for t in recipe.tasks] == [row.run.split("-", 1)[1]]
            base = load_recipe(scale).task(recipe.tasks[0].name)
            assert recipe.tasks[0].max_train == base.max_train  # single-task rows keep the scale's sizes
