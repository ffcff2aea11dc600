"""The built-in tasks on the real assets: sizes, labels, movie-disjoint splits, determinism."""

from __future__ import annotations

import bz2
import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from mkd.assets import asset_path
from mkd.config import TaskConfig
from mkd.tasks import TaskData, load_task
from mkd.tasks.catalog import CATALOG

pytestmark = pytest.mark.real

RT_SIZES = {"train": 10334, "dev": 1189, "test": 1229}
SNLI_SIZES = {"train": 94890, "dev": 5000, "test": 9824}


@pytest.fixture(scope="module")
def rt() -> TaskData:
    return load_task(TaskConfig(name="rt_polarity"))


@pytest.fixture(scope="module")
def snli() -> TaskData:
    return load_task(TaskConfig(name="snli"))


@pytest.fixture(scope="module")
def rt_rows() -> list[dict[str, str]]:
    """The rows of the raw CSV; the Example id rt_polarity:<i> is data row i."""
    path = asset_path("rt-snippets") / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rb") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    assert set(rows[0]) >= {"category", "text", "movie_name"}
    return rows


def row_of(example_id: str) -> int:
    task, index = example_id.split(":")
    assert task == "rt_polarity"
    return int(index)


def ids(data: TaskData) -> dict[str, list[str]]:
    return {name: [e.id for e in items] for name, items in data.splits.items()}


def all_ids(data: TaskData) -> list[str]:
    return [i for items in ids(data).values() for i in items]


def snli_raw(name: str) -> list[tuple[str, str]]:
    """(pairID, gold_label) of every row of a raw SNLI file."""
    with open(asset_path("snli") / name, encoding="utf-8") as f:
        return [(row["pairID"], row["gold_label"]) for row in map(json.loads, f)]


# --------------------------------------------------------------------------- rt_polarity


def test_rt_sizes(rt):
    assert rt.sizes() == RT_SIZES
    assert rt.spec == CATALOG["rt_polarity"]


def test_rt_labels_follow_the_csv_and_are_roughly_balanced(rt, rt_rows):
    labels = rt.spec.labels
    assert labels == ("negative", "positive")
    for split, items in rt.splits.items():
        for ex in items:
            row = rt_rows[row_of(ex.id)]
            assert row["category"] in ("fresh", "rotten")  # plot summaries are dropped
            assert labels[ex.label] == ("positive" if row["category"] == "fresh" else "negative")
            assert ex.texts == (row["text"].strip(),)
        positive = sum(ex.label == 1 for ex in items) / len(items)
        assert 0.45 < positive < 0.7, (split, positive)


def test_rt_drops_duplicate_and_empty_texts(rt):
    texts = [ex.texts[0] for items in rt.splits.values() for ex in items]
    assert all(texts)
    assert len(set(texts)) == len(texts)
    everything = all_ids(rt)
    assert len(set(everything)) == len(everything)


def test_rt_keeps_every_distinct_fresh_or_rotten_text(rt, rt_rows):
    distinct = {r["text"].strip() for r in rt_rows if r["category"] in ("fresh", "rotten") and r["text"].strip()}
    assert sum(rt.sizes().values()) == len(distinct)


def test_rt_splits_are_movie_disjoint(rt, rt_rows):
    movies = {split: {rt_rows[row_of(ex.id)]["movie_name"] for ex in items} for split, items in rt.splits.items()}
    assert not movies["train"] & movies["dev"]
    assert not movies["train"] & movies["test"]
    assert not movies["dev"] & movies["test"]
    total = sum(len(m) for m in movies.values())
    # an 80/10/10 split of the movies
    assert len(movies["dev"]) / total == pytest.approx(0.1, abs=0.01)
    assert len(movies["test"]) / total == pytest.approx(0.1, abs=0.01)


def test_rt_is_deterministic_and_ignores_the_recipe_seed(rt):
    again = load_task(TaskConfig(name="rt_polarity"), seed=999)
    assert ids(again) == ids(rt)
    assert again.splits == rt.splits


def test_rt_subsampling_is_seeded_and_keeps_order(rt):
    cfg = TaskConfig(name="rt_polarity", max_train=100, max_dev=20, max_test=30)
    small = load_task(cfg, seed=1)
    assert small.sizes() == {"train": 100, "dev": 20, "test": 30}
    for split, items in small.splits.items():
        full = ids(rt)[split]
        positions = [full.index(ex.id) for ex in items]
        assert positions == sorted(positions)  # a subset, in the original order
    assert ids(load_task(cfg, seed=1)) == ids(small)
    assert ids(load_task(cfg, seed=2))["train"] != ids(small)["train"]


# --------------------------------------------------------------------------- snli


def test_snli_sizes(snli):
    assert snli.sizes() == SNLI_SIZES
    assert snli.spec.labels == ("entailment", "neutral", "contradiction")
    assert snli.spec.is_pair
    assert all(len(ex.texts) == 2 and all(ex.texts) for ex in snli.splits["dev"])


def test_snli_labels_are_roughly_balanced(snli):
    for split, items in snli.splits.items():
        counts = Counter(ex.label for ex in items)
        assert set(counts) == {0, 1, 2}, split
        for label, n in counts.items():
            assert 0.3 < n / len(items) < 0.37, (split, label)


def test_snli_has_no_unlabelled_pairs(snli):
    train_raw = snli_raw("snli_1.0_train_subset.jsonl")
    test_raw = snli_raw("snli_1.0_test.jsonl")
    dashes = {f"snli:{pid}" for pid, gold in train_raw + test_raw if gold == "-"}
    assert dashes  # the raw files do hold "-" rows, so this test can fail
    assert not dashes & set(all_ids(snli))
    gold = {f"snli:{pid}": label for pid, label in train_raw + test_raw}
    for items in snli.splits.values():
        for ex in items:
            assert snli.spec.labels[ex.label] == gold[ex.id]
    assert snli.sizes()["train"] + snli.sizes()["dev"] == sum(g != "-" for _, g in train_raw)
    assert snli.sizes()["test"] == sum(g != "-" for _, g in test_raw)
    assert set(ids(snli)["test"]) == {f"snli:{pid}" for pid, g in test_raw if g != "-"}


def test_snli_splits_do_not_overlap(snli):
    split_ids = {k: set(v) for k, v in ids(snli).items()}
    assert sum(len(v) for v in split_ids.values()) == sum(SNLI_SIZES.values())
    assert not split_ids["train"] & split_ids["dev"]
    assert not split_ids["train"] & split_ids["test"]
    assert not split_ids["dev"] & split_ids["test"]


def test_snli_dev_is_carved_by_premise(snli):
    """No premise of dev is in train (a random carve shared 4,995 of 5,000 dev premises); the
    official test shares almost none, read from the raw files, not from mkd's own group key."""
    with open(asset_path("snli") / "snli_1.0_train_subset.jsonl", encoding="utf-8") as f:
        premise = {f"snli:{row['pairID']}": row["sentence1"] for row in map(json.loads, f)}
    train = {premise[ex.id] for ex in snli.splits["train"]}
    dev = {premise[ex.id] for ex in snli.splits["dev"]}
    assert len(dev) > 1000  # many groups, not a few big ones
    assert not train & dev
    assert not {p.lower().strip() for p in train} & {p.lower().strip() for p in dev}
    test = {ex.texts[0] for ex in snli.splits["test"]}
    assert len(test & train) <= 3


def test_snli_is_deterministic(snli):
    again = load_task(TaskConfig(name="snli"), seed=5)
    assert ids(again) == ids(snli)


def test_assets_are_in_the_cache():
    for name in ("rt-snippets", "snli"):
        assert Path(asset_path(name)).is_dir()
