"""The study's user-style recipes for the added real tasks, and the converter a user would run on the raw
files: recipes that name only tasks and validate, TREC's repeated questions kept once, the SMS copy's
swallowed messages split back out, links taken out of the health tweets."""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import yaml

from mkd.config import load_recipe
from mkd.config.presets import DEFAULT_PRESET

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks/study"))
import convert_tasks  # noqa: E402  (beside the study, not a package)

RECIPES = sorted((ROOT / "benchmarks/study/recipes").glob("*.yaml"))


def test_the_recipes_name_only_tasks_and_carve_by_group():
    assert {p.stem for p in RECIPES} >= {"trec", "sms_spam", "health_tweets"}
    for path in RECIPES:
        recipe = load_recipe(path)
        written = set(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert written <= {"name", "fetch_missing", "tasks"}, path.name  # no student or teacher
        assert recipe.student.preset == DEFAULT_PRESET  # so the run trains the default student
        names = [t.name for t in recipe.tasks]
        assert names[:2] == ["rt_polarity", "snli"] and len(names) == (4 if path.stem == "four_tasks" else 3)
        for mine in recipe.tasks[2:]:  # the user's own: one file each, dev and test carved by group
            assert mine.source == "files" and mine.group_field == "group" and mine.dev is None and mine.test is None
            assert mine.train == f"runs/data/{mine.name}/train.csv" and mine.name in convert_tasks.TASKS


def test_trec_keeps_each_question_once_with_its_coarse_type(tmp_path):
    lines = ["DESC:manner How did serfdom develop ?", "ENTY:animal What fowl grabs the spotlight ?",
             "ABBR:exp What is .com ?", "HUM:ind Who was Galileo ?", "LOC:city Where is Erie ?",
             "NUM:date When was it ?", "DESC:manner How did serfdom develop ?"]
    (tmp_path / "q.txt").write_text("\n".join(lines) + "\n")
    rows = convert_tasks.trec(tmp_path / "q.txt")
    assert len(rows) == 6 and rows[0] == ("How did serfdom develop ?", "DESC")


def test_sms_splits_messages_swallowed_by_an_unbalanced_quote(tmp_path):
    text = 'Keep-in-touch" gdeve..\nham\tOk..\nspam\tWIN a prize, text 80086\nham\t"HEY HEY'
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerows([["", "spam", "text"], ["0", "0", "Go until jurong"], ["1", "1", "Free entry"], ["2", "0", text]])
    (tmp_path / "s.csv").write_text(buf.getvalue())
    rows = convert_tasks.sms(tmp_path / "s.csv")
    assert rows == [("Go until jurong", "ham"), ("Free entry", "spam"), ('Keep-in-touch" gdeve..', "ham"),
                    ("Ok..", "ham"), ("WIN a prize, text 80086", "spam"), ("HEY HEY", "ham")]


def test_health_tweets_lose_their_links_and_name_the_outlet(tmp_path):
    body = "source_id,text\nbbchealth-1,VIDEO: Flu season http://bbc.in/x\nnprhealth-2,http://n.pr/y\n"
    with zipfile.ZipFile(tmp_path / "h.zip", "w") as zf:
        zf.writestr("healthtweets.csv", body)
    assert convert_tasks.health(tmp_path / "h.zip") == [("VIDEO: Flu season", "bbchealth")]
    counts = convert_tasks.write([("A b  http://x.y/z", "l")], tmp_path / "out" / "train.csv")
    assert counts == {"l": 1}
    assert (tmp_path / "out" / "train.csv").read_text().splitlines()[1] == "A b  http://x.y/z,l,a b"
