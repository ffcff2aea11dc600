"""fastText supervised (`fasttext-community` in the `baselines` extra): word and bigram features, one thread.

Its input is one line per example: lower-cased word and punctuation tokens; a pair's tokens are
prefixed `p:` and `h:` (fastText has no notion of two texts; unprefixed, a pair is a bag of both and
snli falls to chance). The word-bigram hash table has `bucket` rows: fastText's default (2,000,000)
makes a 800 MB model file per task, so the default here is 200,000 (measured: the same dev
accuracy on rt_polarity and snli at a tenth of the size; see `bucket` in the module's grid).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mkd.baselines.base import Baseline, Fitted, Setting, register
from mkd.tasks.task import Example, TaskData

TOKEN = re.compile(r"\w+|[^\w\s]")
MODEL = "model.bin"


def fasttext_line(ex: Example) -> str:
    """One input line: lower-cased word and punctuation tokens; a pair's tokens prefixed p: and h:."""
    if len(ex.texts) == 1:
        return " ".join(TOKEN.findall(ex.texts[0].lower()))
    return " ".join(f"{p}:{w}" for p, text in zip("ph", ex.texts, strict=False) for w in TOKEN.findall(text.lower()))


def _predictor(model: Any) -> Callable[[Sequence[Example]], list[int]]:
    def predict(examples: Sequence[Example]) -> list[int]:
        labels, _ = model.predict([fasttext_line(e) for e in examples], k=1)
        return [int(lab[0].removeprefix("__label__")) for lab in labels]

    return predict


class _FittedFastText(Fitted):
    def __init__(self, model: Any) -> None:
        self.model = model
        self.predict = _predictor(model)  # type: ignore[method-assign]

    def save(self, folder: Path) -> None:
        self.model.save_model(str(folder / MODEL))


@register
class FastTextBaseline(Baseline):
    name = "fasttext"
    title = "fastText supervised"
    modules = ("fasttext",)
    grid: ClassVar[dict[str, list[Any]]] = {
        "epoch": [5, 25], "lr": [0.1, 0.5], "wordNgrams": [1, 2], "dim": [100], "bucket": [200_000]}

    def fit(self, data: TaskData, setting: Setting, seed: int) -> Fitted:
        import fasttext

        fd, path = tempfile.mkstemp(prefix="mkd-fasttext-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for ex in data.split("train"):
                    f.write(f"__label__{ex.label} {fasttext_line(ex)}\n")
            model = fasttext.train_supervised(input=path, thread=1, seed=seed, verbose=0, **setting)
        finally:
            os.unlink(path)
        return _FittedFastText(model)

    def load(self, folder: Path, meta: dict[str, Any]) -> Callable[[Sequence[Example]], list]:
        import fasttext

        return _predictor(fasttext.load_model(str(folder / MODEL)))
