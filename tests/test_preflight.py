"""`mkd run` opens every input of every stage before the teacher trains: a wrong column in an unlabelled
file, a missing per-task teacher or a misspelt vectors source fails at once, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_faults import RECIPE, write_csv
from tests.tinyfix import SPECS, make_examples, run_cli, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    write_tiny_bert(folder / "bert", hidden=16)
    (folder / "data").mkdir()
    for split, n, seed in (("train", 32, 1), ("dev", 8, 2), ("test", 8, 3)):
        write_csv(folder / "data" / f"sent_{split}.csv", ["text", "label"],
                  [[e.texts[0], SPECS["sent"].labels[e.label]] for e in make_examples(SPECS["sent"], n, seed)])
        write_csv(folder / "data" / f"nli_{split}.csv", ["a", "b", "label"],
                  [[*e.texts, SPECS["nli"].labels[e.label]] for e in make_examples(SPECS["nli"], n, seed)])
    write_csv(folder / "data" / "headlines.csv", ["title", "when"], [["markets rally", "mon"]])
    return folder


CASES = {
    "unlabelled-column": ("labels: [neg, pos]}", "labels: [neg, pos], unlabelled: [data/headlines.csv]}",
                          "headlines.csv line 2: no column 'text' (columns: title, when)"),
    "unlabelled-path": ("labels: [neg, pos]}", "labels: [neg, pos], unlabelled: [data/nope.txt]}",
                        "unlabelled file", ),
    "foreign-teacher": ("  shard_size: 4\n", "  shard_size: 4\n  teachers: {sent: elsewhere/teacher}\n",
                        "teacher folder elsewhere/teacher for task(s) sent holds no mkd model"),
    "vectors": ("embeddings: random", "embeddings: glove-7b", "unknown student.embeddings 'glove-7b'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_checks_every_input_before_training(case, project, monkeypatch, capsys):
    old, new, needle = CASES[case]
    assert old in RECIPE
    (project / f"{case}.yaml").write_text(RECIPE.replace(old, new), encoding="utf-8")
    monkeypatch.chdir(project)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", f"{case}.yaml")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (project / "runs").exists(), "nothing may be written before the inputs are checked"
