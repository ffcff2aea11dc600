"""The study's peers are the product's baselines (mkd.baselines, tested in test_baselines.py): the shim's
records in the study's terms, saved and reloaded predictions."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks/study"))
import peers

from mkd.tasks.task import Example, TaskData, TaskSpec


def _synthetic(n: int = 300) -> TaskData:
    """Sentiment by word choice: separable, so a working peer reaches high dev accuracy."""
    rng = random.Random(0)
    good, bad, filler = ["good", "great", "fine", "superb"], ["bad", "awful", "poor", "dull"], ["the", "film", "a"]
    spec = TaskSpec("synthetic", ("text",), "classification", ("negative", "positive"))

    def make(i: int) -> Example:
        label = i % 2
        words = [rng.choice(good if label else bad)] * 2 + rng.sample(filler, 2)
        rng.shuffle(words)
        return Example(f"s:{i}", (" ".join(words),), label)

    items = [make(i) for i in range(n)]
    return TaskData(spec, {"train": items[:200], "dev": items[200:250], "test": items[250:]})


def test_fasttext_peer_picks_the_best_dev_setting_and_reloads(tmp_path):
    if why := peers.missing_wheel("fasttext"):
        pytest.skip(why)
    data = _synthetic()
    grid = peers.PeerGrid(fasttext={"epoch": [1, 30], "lr": [0.5], "dim": [8]})
    result = peers.train_peer("fasttext", data, tmp_path / "ft", grid, seed=1)
    tried = {g["setting"]["epoch"]: g["dev"] for g in result["grid"]}
    assert result["dev"] == max(tried.values()) and result["chosen"]["epoch"] in tried
    assert result["test"] >= 90.0
    assert json.loads((tmp_path / "ft" / "baseline.json").read_text())["test"]["test"]["accuracy"] == result["test"]
    again = peers.load_peer("fasttext", tmp_path / "ft")
    test = data.split("test")
    assert 100.0 * sum(p == e.label for p, e in zip(again(test), test, strict=True)) / len(test) == result["test"]
    # a folder trained on the same data, grid and seed is kept, not retrained
    assert peers.train_peer("fasttext", data, tmp_path / "ft", grid, seed=1) == result
