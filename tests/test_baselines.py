"""The baselines (mkd.baselines): dev-chosen settings, saved and reloaded predictors, kept folders,
model2vec's own distillation on the transformers mkd uses, and one line when the extra is missing."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from mkd.baselines import BASELINES, load_baseline, missing_extra, train_baseline, train_baselines
from mkd.baselines.fasttext_baseline import fasttext_line
from mkd.errors import MkdError
from mkd.tasks.task import Example, TaskData
from tests.tinyfix import PAIR, REG, SINGLE, make_examples

pytestmark = pytest.mark.usefixtures("one_thread")
SRC = Path(__file__).parents[1] / "src" / "mkd" / "baselines"


def _data(spec=SINGLE, n: int = 90) -> TaskData:
    items = make_examples(spec, n, seed=0)
    return TaskData(spec, {"train": items[:60], "dev": items[60:75], "test": items[75:]})


def _need(name: str) -> None:
    if why := missing_extra(name):
        pytest.skip(why)


def test_fasttext_lines_prefix_pairs_and_keep_singles_plain():
    assert fasttext_line(Example("a", ("A man, sleeping.",))) == "a man , sleeping ."
    assert fasttext_line(Example("b", ("Two dogs run", "Dogs move!"))) == "p:two p:dogs p:run h:dogs h:move h:!"


def test_fasttext_picks_the_best_dev_setting_reloads_and_keeps_a_trained_folder(tmp_path):
    _need("fasttext")
    data = _data()
    grid = {"epoch": [1, 40], "lr": [0.5], "dim": [8]}
    rec = train_baseline("fasttext", data, tmp_path / "ft", seed=1, grid=grid)
    tried = {g["setting"]["epoch"]: g["dev"] for g in rec["grid"]}
    assert rec["dev"]["accuracy"] == max(tried.values()) and rec["chosen"]["epoch"] in tried
    assert rec["test"]["test"]["accuracy"] >= 90.0  # the keyword task is learnable
    predict = load_baseline(tmp_path / "ft")
    test = data.split("test")
    assert 100.0 * sum(p == e.label for p, e in zip(predict(test), test, strict=True)) / len(test) == \
        rec["test"]["test"]["accuracy"]
    stamp = (tmp_path / "ft" / "baseline.json").stat().st_mtime_ns
    assert train_baseline("fasttext", data, tmp_path / "ft", seed=1, grid=grid) == rec  # same key: kept
    assert (tmp_path / "ft" / "baseline.json").stat().st_mtime_ns == stamp
    assert train_baseline("fasttext", data, tmp_path / "ft", seed=2, grid=grid)["seed"] == 2  # new key: retrained


def test_fasttext_reads_pairs_and_skips_regression(tmp_path):
    _need("fasttext")
    lines = []
    out = train_baselines(["fasttext"], {"nli": _data(PAIR, 150), "score": _data(REG)}, tmp_path, seed=1,
                          grids={"fasttext": {"epoch": [40], "lr": [0.5], "dim": [8]}}, say=lines.append)
    assert out["fasttext"]["nli"]["test"]["test"]["accuracy"] >= 80.0  # the label word sits in the hypothesis
    assert "fits classification tasks, score is regression" in out["fasttext"]["score"]["skipped"]
    assert not (tmp_path / "fasttext" / "score").exists()


def test_model2vec_distils_a_tiny_bert_and_fits_classification_and_regression(tmp_path, monkeypatch,
                                                                                small_bert_dir):
    _need("model2vec")
    monkeypatch.setenv("MKD_HOME", str(tmp_path / "home"))
    grid = {"learning_rate": [1e-2, 3e-2], "max_epochs": [8], "batch_size": [16], "hidden_dim": [16]}
    options = {"model2vec": {"encoder": str(small_bert_dir), "pca_dims": 8}}
    said: list[str] = []
    out = train_baselines(["model2vec"], {"sent": _data(), "score": _data(REG)}, tmp_path / "runs", seed=3,
                          grids={"model2vec": grid}, options=options, say=said.append)
    sent, score = out["model2vec"]["sent"], out["model2vec"]["score"]
    assert sum("distilling static vectors" in s for s in said) == 1  # once for both tasks
    vectors = Path(sent["fixed"]["vectors"])
    assert vectors.parent == tmp_path / "home" / "baselines" and (vectors / "model.safetensors").is_file()
    assert len(sent["grid"]) == 2 and sent["dev"]["accuracy"] == max(g["dev"] for g in sent["grid"])
    assert sent["test"]["test"]["accuracy"] >= 75.0 and score["test"]["test"]["pearson"] > 50.0
    for rec, data in ((sent, _data()), (score, _data(REG))):
        again = load_baseline(rec["folder"])(data.split("test"))
        assert all(isinstance(v, int if data.spec.type == "classification" else float) for v in again)
    assert not list(Path(sent["folder"]).rglob("*.pkl")) and not list(Path(sent["folder"]).rglob("*.skops"))
    stamp = (vectors / "model.safetensors").stat().st_mtime_ns
    BASELINES.get("model2vec")().prepare(options["model2vec"], said.append)  # reused, not distilled again
    assert (vectors / "model.safetensors").stat().st_mtime_ns == stamp and len(said) == 3


def test_a_missing_extra_is_one_line_and_the_baseline_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fasttext", None)  # import fasttext -> ImportError
    why = missing_extra("fasttext")
    assert why is not None and "\n" not in why and "pip install 'mkd[baselines]'" in why
    said: list[str] = []
    out = train_baselines(["fasttext"], {"sent": _data()}, tmp_path, say=said.append)
    assert out == {"fasttext": {"sent": {"skipped": why}}} and said == [f"skipped: {why}"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "baseline.json").write_text('{"baseline": "fasttext"}')
    with pytest.raises(MkdError, match="needs the Python module `fasttext`"):
        load_baseline(tmp_path / "x")


def test_unknown_names_fail_before_anything_trains(tmp_path):
    with pytest.raises(MkdError, match="unknown baseline 'fasttxt'; did you mean 'fasttext'"):
        train_baselines(["model2vec", "fasttxt"], {"sent": _data()}, tmp_path)
    assert not any(tmp_path.iterdir())
    with pytest.raises(MkdError, match="is not a trained baseline"):
        load_baseline(tmp_path)


def _imports(nodes) -> list[str]:
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
    return out


def test_the_package_imports_no_extra_at_load_time_and_only_allowed_layers():
    """Importing mkd.baselines must work without the extra (module-level imports only), and the package
    sits below the pipeline: no stages, cli, serving, report, models or training loop."""
    forbidden = ("mkd.stages", "mkd.cli", "mkd.serving.bench", "mkd.serving", "mkd.report", "mkd.models", "mkd.train")
    for path in SRC.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = _imports(tree.body)
        assert not [m for m in top if m.split(".")[0] in ("fasttext", "model2vec")], path.name
        assert not [m for m in _imports(ast.walk(tree)) if m.startswith(forbidden)], path.name
