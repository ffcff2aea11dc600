"""Baselines: what a user would ship instead of distilling, trained on the run's exact splits.

Each registered baseline (BASELINES) fits one task's gold train split, chooses its settings on dev
from a small grid, and is scored on every test split with the task's own metrics:

- `model2vec`: model2vec's StaticModelForClassification (regression too) on vectors distilled by
  model2vec from the base encoder (the MiniLM-L6 asset by default);
- `fasttext`: fastText supervised (classification only).

Their libraries are the optional extra `baselines` (`pip install 'mkd[baselines]'`). Importing this
package never imports them: a missing one is one line (`missing_extra`), and `train_baselines`
records it as skipped instead of failing.

    from mkd.baselines import train_baselines, load_baseline
    results = train_baselines(["model2vec", "fasttext"], tasks, "runs/demo/baselines", seed=13)
    # {"fasttext": {"rt_polarity": {"dev": {...}, "test": {"test": {...}}, "chosen": {...},
    #                               "folder": "runs/demo/baselines/fasttext/rt_polarity", ...}}, ...}
    predict = load_baseline(results["fasttext"]["rt_polarity"]["folder"])
    predict(examples)  # class indices (or scores) of raw Examples, tokenization included
"""

from __future__ import annotations

from mkd.baselines import fasttext_baseline, model2vec_baseline  # noqa: F401  (registers them)
from mkd.baselines.base import (
    BASELINES,
    EXTRA,
    Baseline,
    Fitted,
    Predictor,
    load_baseline,
    missing_extra,
    train_baseline,
    train_baselines,
)

DEFAULT = ("model2vec", "fasttext")
"""The baselines a run trains unless told otherwise."""

__all__ = ["BASELINES", "DEFAULT", "EXTRA", "Baseline", "Fitted", "Predictor", "load_baseline", "missing_extra",
           "train_baseline", "train_baselines"]
