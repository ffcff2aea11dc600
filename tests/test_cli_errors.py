"""The `mkd` command as a user runs it: bad inputs end in ONE `error:` line and exit status 2.

The stage commands import torch (a few seconds each), so the `mkd teach` cases are started all at
once in a module fixture and the tests only read their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STAGES = ["fetch", "tasks", "teach", "augment", "label", "distill", "finetune", "baselines", "evaluate", "bench",
          "export", "predict", "run", "report"]  # fmt: skip
ASSET_NAMES = {"minilm-l6", "mpnet-base", "glove-6b-50d", "spacy-en-md", "rt-snippets", "snli", "trec-questions",
               "sms-spam", "health-tweets"}
FILES_TASK = (
    "name: {name}\noutput_dir: out\ntasks:\n"
    "  - {{name: mine, source: files, train: {train}, text_fields: [text], type: classification, "
    "labels: [pos, neg]}}\n"
)
GLUE_TASK = "name: g\noutput_dir: out\ntasks:\n  - {name: sst2, source: glue, glue_dir: glue}\n"

Result = subprocess.CompletedProcess[str]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mkd", *args]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}


def mkd(*args: str, cwd: Path) -> Result:
    return subprocess.run(command(*args), cwd=cwd, env=environment(), capture_output=True, text=True, timeout=120)


def assert_user_error(result: Result, *needles: str) -> str:
    """Exit status 2, exactly one stderr line starting with 'error:', no traceback; the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def recipe(folder: Path, text: str, name: str = "recipe.yaml") -> str:
    (folder / name).write_text(text, encoding="utf-8")
    return name


# Each case: files to write into its own folder (None: an empty folder), then the arguments of `mkd teach`.
TEACH_CASES: dict[str, tuple[dict[str, str | None], list[str]]] = {
    "unknown-key": (
        {"recipe.yaml": "name: x\ntasks: [snli]\nteacher: {train: {epohcs: 1}}\n"},
        ["-c", "recipe.yaml"],
    ),
    "missing-recipe": ({}, ["-c", "nowhere/recipe.yaml"]),
    "bad-label": (
        {
            "data.csv": "text,label\ngood film,pos\nawful,neg\nmeh,maybe\n",
            "recipe.yaml": FILES_TASK.format(name="bad-label", train="data.csv"),
        },
        ["-c", "recipe.yaml"],
    ),
    "header-only": (
        {"train.csv": "text,label\n", "recipe.yaml": FILES_TASK.format(name="header", train="train.csv")},
        ["-c", "recipe.yaml"],
    ),
    "one-row": (  # the carved test split takes the only row, leaving train empty
        {"train.csv": "text,label\nonly one,pos\n", "recipe.yaml": FILES_TASK.format(name="tiny", train="train.csv")},
        ["-c", "recipe.yaml"],
    ),
    "missing-file": (
        {"recipe.yaml": FILES_TASK.format(name="typo", train="no-such-file.csv")},
        ["-c", "recipe.yaml"],
    ),
    "glue-empty-dir": (
        {"glue": None, "recipe.yaml": GLUE_TASK},
        ["-c", "recipe.yaml"],
    ),
}


@pytest.fixture(scope="module")
def teach_runs(tmp_path_factory) -> dict[str, tuple[Path, Result]]:
    """(folder, result) of `mkd teach` for every case of TEACH_CASES, run in parallel."""
    started = {}
    for case, (files, args) in TEACH_CASES.items():
        folder = tmp_path_factory.mktemp(case)
        for name, text in files.items():
            if text is None:
                (folder / name).mkdir()
            else:
                (folder / name).write_text(text, encoding="utf-8")
        proc = subprocess.Popen(command("teach", *args), cwd=folder, env=environment(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        started[case] = (folder, proc)
    done = {}
    for case, (folder, proc) in started.items():
        out, err = proc.communicate(timeout=180)
        done[case] = (folder, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


# --------------------------------------------------------------------------- recipe problems


def test_unknown_task(tmp_path):
    path = recipe(tmp_path, "name: x\ntasks: [snil]\n")
    assert_user_error(mkd("tasks", "-c", path, cwd=tmp_path), "unknown task 'snil'", "did you mean 'snli'?")


def test_malformed_yaml(tmp_path):
    path = recipe(tmp_path, "name: x\ntasks: [snli\nteacher: {}\n")
    assert_user_error(mkd("tasks", "-c", path, cwd=tmp_path), "malformed YAML", "at line")


def test_unknown_key(teach_runs):
    folder, result = teach_runs["unknown-key"]
    assert_user_error(result, "unknown key 'teacher.train.epohcs'", "did you mean 'epochs'?")
    assert not (folder / "runs").exists()  # nothing was written


def test_wrong_type(tmp_path):
    path = recipe(tmp_path, "name: x\ntasks: [snli]\nteacher: {max_length: long}\n")
    assert_user_error(mkd("tasks", "-c", path, cwd=tmp_path), "'teacher.max_length'", "'long'")


def test_wrong_type_in_set_override(tmp_path):
    assert_user_error(mkd("tasks", "--set", "tasks.snli.max_train=ten", cwd=tmp_path), "max_train", "'ten'")


def test_bad_override_path(tmp_path):
    assert_user_error(mkd("tasks", "--set", "tasks.cola.max_train=3", cwd=tmp_path), "no item named 'cola'")
    assert_user_error(mkd("tasks", "--set", "seed", cwd=tmp_path), "not key=value")


def test_missing_recipe_file(teach_runs):
    _, result = teach_runs["missing-recipe"]
    assert_user_error(result, "nowhere/recipe.yaml", "not found")


# --------------------------------------------------------------------------- data problems


def test_label_outside_the_label_set(teach_runs):
    _, result = teach_runs["bad-label"]
    assert_user_error(result, "data.csv line 4", "'maybe'", "outside the label set")


def test_empty_train_file(teach_runs):
    _, result = teach_runs["header-only"]
    assert_user_error(result, "train.csv", "has no rows")


def test_split_left_empty(teach_runs):
    _, result = teach_runs["one-row"]
    assert_user_error(result, "task mine", "train split is empty")


def test_missing_data_file(teach_runs):
    _, result = teach_runs["missing-file"]
    assert_user_error(result, "no-such-file.csv", "not found")


def test_a_data_error_leaves_no_run_folder(teach_runs):
    folder, result = teach_runs["missing-file"]
    assert result.returncode == 2
    assert not (folder / "out").exists()


def test_missing_glue_file(teach_runs):
    _, result = teach_runs["glue-empty-dir"]
    assert_user_error(result, "SST-2/train.tsv", "not found", "glue_dir")


# --------------------------------------------------------------------------- the command itself


@pytest.mark.parametrize(
    "args",
    [["distil"], ["tasks", "--bogus"], ["evaluate"]],
    ids=["unknown-command", "unknown-option", "missing-option"],
)
def test_usage_errors_exit_2(tmp_path, args):
    result = mkd(*args, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert "unexpected" not in result.stderr
    assert result.returncode == 2


def test_help_lists_the_stages(tmp_path):
    result = mkd("--help", cwd=tmp_path)
    assert result.returncode == 0
    commands = result.stdout.split("Commands:", 1)[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line.strip()]
    assert set(STAGES) <= set(listed), listed
    assert [s for s in listed if s in STAGES] == STAGES  # in pipeline order


def test_console_script(tmp_path):
    script = Path(sys.executable).parent / "mkd"
    if not script.exists():
        pytest.skip("no mkd console script beside this Python")
    result = subprocess.run(
        [str(script), "tasks", "-c", "missing.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert_user_error(result, "missing.yaml", "not found")


def test_fetch_list_shows_every_asset(tmp_path):
    result = mkd("fetch", "--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert {row[0] for row in rows} == ASSET_NAMES
    assert len(rows) == len(ASSET_NAMES)
    assert all(row[1] in ("cached", "missing") for row in rows)


@pytest.mark.real
def test_tasks_json_shows_rt_polarity_sizes(tmp_path):
    result = mkd("tasks", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["rt_polarity"]["sizes"] == {"train": 10334, "dev": 1189, "test": 1229}
    assert rows["rt_polarity"]["status"] == "present"
    assert rows["snli"]["sizes"] == {"train": 94890, "dev": 5000, "test": 9824}
    assert rows["sst2"]["sizes"] == {} and "GLUE_DIR" in rows["sst2"]["status"]
    assert rows["stsb"]["type"] == "regression"
