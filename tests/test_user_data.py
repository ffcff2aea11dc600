"""A user's own data (issue 15): blank texts, a task named like a built-in, TSV quoting errors, naming the
text columns of unlabelled files and of `predict --file`, joining two columns into one text, file modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from mkd.config import StudentConfig, TaskConfig
from mkd.data.transfer import read_unlabelled
from mkd.errors import MkdError
from mkd.io import atomic_dir, atomic_path, write_text
from mkd.models.students import build_student
from mkd.tasks import load_task
from mkd.tasks.catalog import resolve_spec
from tests.tinyfix import SPECS, make_examples, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _task(tmp_path: Path, body: str, **extra) -> TaskConfig:
    train = _csv(tmp_path / "train.csv", body)
    return TaskConfig(name="news", source="files", train=train, dev=train, test=train, text_fields=["text"],
                      type="classification", labels=["a", "b"], **extra)


BLANKY = "text,label\ngood one,a\n,b\n   ,a\nbad one,b\nfine,a\n"


def test_blank_training_texts_are_dropped_with_one_line(tmp_path, capsys):
    data = load_task(_task(tmp_path, BLANKY))
    assert [e.texts[0] for e in data.split("train")] == ["good one", "bad one", "fine"]
    err = capsys.readouterr().err
    assert "news: dropped 6 blank text(s) (2 train, 2 dev, 2 test)" in err


def test_blank_training_texts_can_be_refused(tmp_path):
    with pytest.raises(MkdError, match=r"2 blank text\(s\) in the train split \(first: example news:train:1\)"):
        load_task(_task(tmp_path, BLANKY), blank="error")


def test_a_files_task_named_like_a_builtin_is_the_users_own(tmp_path):
    rows = "".join(f"t{i},{'abcde'[i % 5]}\n" for i in range(20))
    cfg = TaskConfig(name="rt_polarity", source="files", train=_csv(tmp_path / "n.csv", "text,label\n" + rows),
                     text_fields=["text"], type="classification", labels=list("abcde"))
    spec = resolve_spec(cfg)
    assert spec.labels == tuple("abcde") and spec.metrics == ("accuracy",) and spec.source == "files"
    with pytest.raises(MkdError, match="it is your own task, not the built-in rt_polarity"):
        resolve_spec(TaskConfig(name="rt_polarity", source="files", train=str(tmp_path / "n.csv")))
    with pytest.raises(MkdError, match="metric f1 is for 2 labels, the task has 5"):
        resolve_spec(cfg.model_copy(update={"metrics": ["f1"]}))


def test_an_unbalanced_quote_is_reported_where_it_opens(tmp_path):
    rows = ["text\tlabel"] + [f"row {i}\ta" for i in range(1, 4)] + ['"he said hi\ta'] + [
        f"row {i}\tb" for i in range(5, 300)]
    path = tmp_path / "q.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = TaskConfig(name="q", source="files", train=str(path), text_fields=["text"], type="classification",
                     labels=["a", "b"])
    with pytest.raises(MkdError) as info:
        load_task(cfg)
    assert "line 5 " in str(info.value) and "a quoted field opened on line 5" in str(info.value), info.value


def test_unlabelled_files_name_their_own_columns_and_skip_blanks(tmp_path):
    spec = SPECS["sent"]
    path = tmp_path / "headlines.csv"
    path.write_text("title,when\nmarkets rally,mon\n,tue\nrates hold,wed\n", encoding="utf-8")
    with pytest.raises(MkdError, match=r"no column 'text' \(columns: title, when\).*text_fields"):
        list(read_unlabelled(spec, str(path)))
    assert [e.texts for e in read_unlabelled(spec, str(path), ("title",))] == [("markets rally",), ("rates hold",)]
    cfg = TaskConfig(name="sent", source="files", train=str(path), text_fields=["title"], type="classification",
                     labels=["a", "b"], unlabelled=[{"path": str(path), "text_fields": ["title"]}, "more.txt"])
    assert cfg.unlabelled_files() == [(str(path), ("title",)), ("more.txt", None)]


def test_join_makes_one_text_of_two_columns(tmp_path):
    train = _csv(tmp_path / "t.csv", "title,body,label\nbig win,the team won,a\nloss,they lost,b\n")
    cfg = TaskConfig(name="news", source="files", train=train, dev=train, test=train, text_fields=["title", "body"],
                     type="classification", labels=["a", "b"], join=" | ")
    data = load_task(cfg)
    assert not data.spec.is_pair and data.spec.inputs == ("title+body",)
    assert data.split("train")[0].texts == ("big win | the team won",)
    plain = TaskConfig(name="news", source="files", train=train, text_fields=["title"], type="classification",
                       labels=["a", "b"])
    assert "join" not in plain.model_dump(mode="json"), "an unset new key must not change old fingerprints"


def test_outputs_respect_the_umask(tmp_path):
    from safetensors.torch import save_file

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("y")
            save_file({"w": torch.zeros(2)}, str(tmp / "w.safetensors"))  # safetensors writes 0600 files
        with atomic_path(tmp_path / "m.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
    finally:
        os.umask(old)
    for name, mode in (("f.txt", 0o644), ("d", 0o755), ("d/w.safetensors", 0o644), ("m.safetensors", 0o644)):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


@pytest.fixture(scope="module")
def sent_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = StudentConfig(type="bilstm", embeddings="random", embedding_dim=8, hidden_size=8, max_length=16)
    texts = [t for e in make_examples(SPECS["sent"], 30, 0) for t in e.texts]
    folder = tmp_path_factory.mktemp("m") / "student"
    build_student(cfg, {"sent": SPECS["sent"]}, texts, None).save(folder)
    return folder


def test_predict_blank_input_is_an_error_or_an_explicit_empty_result(sent_model, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "predict", "--model", str(sent_model), "good movie", "  ")
    assert code == 2 and "text 2 is empty" in err and out == ""
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", str(sent_model), "--json", "good movie", "")
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0 and first["label"] in ("neg", "pos") and "empty" not in first
    assert second == {"task": "sent", "texts": {"text": ""}, "empty": True, "label": None}
    rows = tmp_path / "rows.csv"
    rows.write_text("headline\ngood plot\n\"\"\n", encoding="utf-8")
    code, out, err = run_cli(monkeypatch, capsys, "predict", "--model", str(sent_model), "--file", str(rows))
    assert code == 2 and "no column 'text'" in err and "--column" in err
    code, out, err = run_cli(monkeypatch, capsys, "predict", "--model", str(sent_model), "--file", str(rows),
                             "--column", "headline")
    assert code == 2 and "rows.csv line 3 is empty" in err
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", str(sent_model), "--file", str(rows),
                           "--column", "headline", "--json")
    assert code == 0 and [json.loads(line).get("empty", False) for line in out.splitlines()] == [False, True]


def test_the_saved_recipe_shows_the_students_real_embedding_dim():
    from mkd.assets import ASSETS, _asset_dir, _is_present
    from mkd.config import Recipe
    from mkd.stages.distill import _with_real_dims

    if not _is_present(ASSETS.get("glove-6b-50d"), _asset_dir("glove-6b-50d")):
        pytest.skip("the glove-6b-50d asset is not fetched (mkd fetch glove-6b-50d)")
    texts = [t for e in make_examples(SPECS["sent"], 30, 0) for t in e.texts]
    cfg = StudentConfig(type="bilstm", embeddings="glove-6b-50d", hidden_size=8, max_length=16)
    model = build_student(cfg, {"sent": SPECS["sent"]}, texts, None)
    recipe = Recipe(name="r", tasks=["rt_polarity"], student=cfg)
    assert recipe.student.embedding_dim is None and model.embedding_dim == 50
    assert _with_real_dims(recipe, model).student.embedding_dim == 50
    with pytest.raises(MkdError, match="embedding_dim is 300, but glove-6b-50d vectors have 50 dimensions"):
        build_student(cfg.model_copy(update={"embedding_dim": 300}), {"sent": SPECS["sent"]}, texts, None)
