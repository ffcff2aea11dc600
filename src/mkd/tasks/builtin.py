"""The built-in real tasks, read from the offline assets (see ASSETS.md).

rt_polarity: Rotten Tomatoes snippets, fresh = positive, rotten = negative; plot summaries and
exact duplicate texts dropped; an 80/10/10 split BY MOVIE (no movie in two splits), seeded by a
fixed constant so every run and every user sees the same split.
snli: train = the 100k official subset minus a fixed dev set of about 5,000 pairs carved BY
PREMISE (whole premises, so no dev premise is in train: a random carve shared 4,995 of its 5,000
premises with train and rewarded memorising them); test = the official test set (it shares 3 of
its 9,824 premises with the subset); rows whose gold label is "-" (no annotator majority) dropped.
The asset has no official dev set, so dev is carved from train.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
from pathlib import Path

from mkd.assets import asset_path
from mkd.config import TaskConfig
from mkd.tasks.sources import SOURCES, label_index
from mkd.tasks.split import carve, split_by_group, text_group
from mkd.tasks.task import Example, TaskSpec

SPLIT_SEED = 20191108  # fixed: the built-in splits do not move with the recipe's seed
SNLI_DEV_SIZE = 5000


def _rt_rows(path: Path) -> list[dict[str, str]]:
    with bz2.open(path, "rb") as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def rt_polarity(spec: TaskSpec, fetch_missing: bool) -> dict[str, list[Example]]:
    path = asset_path("rt-snippets", fetch_missing) / "rotten_tomatoes_corpus_full.csv.bz2"
    seen: set[str] = set()
    kept: list[tuple[str, Example]] = []
    for i, row in enumerate(_rt_rows(path)):
        category, text = row["category"], row["text"].strip()
        if category not in ("fresh", "rotten") or not text or text in seen:
            continue
        seen.add(text)
        label = spec.labels.index("positive" if category == "fresh" else "negative")
        kept.append((row["movie_name"], Example(f"rt_polarity:{i}", (text,), label)))
    train, dev, test = split_by_group(kept, lambda x: x[0], (0.1, 0.1), SPLIT_SEED)
    return {name: [ex for _, ex in part] for name, part in (("train", train), ("dev", dev), ("test", test))}


def _snli_rows(path: Path, spec: TaskSpec, split: str) -> list[Example]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            if row["gold_label"] == "-":
                continue
            label = label_index(spec, row["gold_label"], f"{path.name} line {i + 1}")
            out.append(Example(f"snli:{row['pairID']}", (row["sentence1"], row["sentence2"]), label))
    return out


def snli(spec: TaskSpec, fetch_missing: bool) -> dict[str, list[Example]]:
    folder = asset_path("snli", fetch_missing)
    train = _snli_rows(folder / "snli_1.0_train_subset.jsonl", spec, "train")
    train, dev = carve(train, SNLI_DEV_SIZE, SPLIT_SEED, text_group(spec.text_fields, spec.group_field))
    test = _snli_rows(folder / "snli_1.0_test.jsonl", spec, "test")
    return {"train": train, "dev": dev, "test": test}


_BUILTIN = {"rt_polarity": rt_polarity, "snli": snli}


@SOURCES.register("builtin")
def load_builtin(spec: TaskSpec, cfg: TaskConfig, seed: int, fetch_missing: bool) -> dict[str, list[Example]]:
    from mkd.errors import MkdError

    if spec.name not in _BUILTIN:
        raise MkdError(f"task {spec.name} is not a built-in task", f"built-in: {', '.join(_BUILTIN)}")
    return _BUILTIN[spec.name](spec, fetch_missing)
