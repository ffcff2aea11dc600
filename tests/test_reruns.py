"""Reruns keep what the user made, or say what goes: replacing a student names its exports and removes
the models fine-tuned from it; replacing the teacher marks the students trained on it stale, and the
summary (so the report) labels every model that the current recipe would not make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_faults import RECIPE, RUN, environment, mkd
from tests.test_preflight import project  # noqa: F401  (the tiny project fixture)

pytestmark = pytest.mark.slow

FAST = RECIPE.replace("patience: null, log_every: 1}", "patience: null, log_every: 1, max_steps: 6}") + (
    "finetune: {enabled: true, train: {max_steps: 3, batch_size: 8, eval_every: 3}}\n"
    "bench: {rounds: 1, batch_sizes: [1, 4], examples: 4}\nbaselines: []\n")


def statuses(folder: Path) -> dict[str, str]:
    return {k: m["status"] for k, m in json.loads((folder / RUN / "summary.json").read_text())["models"].items()}


def test_replacing_a_model_says_so_and_takes_its_dependents(project, tmp_path):  # noqa: F811
    import shutil

    folder = tmp_path / "p"
    shutil.copytree(project, folder)
    (folder / "recipe.yaml").write_text(FAST, encoding="utf-8")
    mkd(folder, "run")
    assert statuses(folder) == dict.fromkeys(["teacher", "student", "finetuned/nli", "finetuned/sent"], "current")
    subprocess.run([sys.executable, "-m", "mkd", "export", "--model", str(RUN / "student")], cwd=folder,
                   env=environment(), check=True, capture_output=True)
    assert (folder / RUN / "student" / "onnx").is_dir()

    result = mkd(folder, "run", "--set", "student.hidden_size=8")
    line = next(x for x in result.stderr.splitlines() if x.startswith("distill: replaced"))
    assert line == ("distill: replaced runs/tiny/student; its export onnx/ went with it (export again); the 2 model(s) "
                    "fine-tuned from it in runs/tiny/finetuned were removed"), line
    assert "finetune: replaced" not in result.stderr  # they went with their student, then were made again
    assert statuses(folder) == dict.fromkeys(["teacher", "student", "finetuned/nli", "finetuned/sent"], "current")

    mkd(folder, "distill", "--set", "student.folder=small", "--set", "student.hidden_size=4")
    result = mkd(folder, "teach", "--set", "teacher.train.lr=0.001")
    stale = "teach: replaced runs/tiny/teacher; 4 student(s) trained on the old teacher are marked stale"
    assert stale in result.stderr, result.stderr
    mkd(folder, "bench")
    got = statuses(folder)
    assert got["teacher"] == "current" and got["small"] == "stale: trained on an earlier teacher", got
    assert got["student"] == "stale: trained on an earlier teacher"
