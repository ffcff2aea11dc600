"""Data sources: where a task's examples come from. One registered loader per source kind."""

from __future__ import annotations

import math
from collections.abc import Callable

from mkd.config import TaskConfig
from mkd.errors import MkdError
from mkd.registry import Registry
from mkd.tasks.task import Example, TaskSpec

Loader = Callable[[TaskSpec, TaskConfig, int, bool], dict[str, list[Example]]]
"""(spec, recipe task entry, seed, fetch_missing) -> {"train": [...], "dev": [...], "test": [...], ...}"""

SOURCES: Registry[Loader] = Registry("data source")


def label_index(spec: TaskSpec, raw: object, where: str) -> int | float:
    """A gold label as the model sees it: a class index, or a float score for regression."""
    if spec.type == "regression":
        try:
            score = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise MkdError(f"{where}: score {raw!r} is not a number", "fix the label column") from None
        if not math.isfinite(score):  # an inf or nan score would make every loss nan
            raise MkdError(f"{where}: score {raw!r} is not a finite number", "fix the label column")
        return score
    text = str(raw).strip()
    if text in spec.labels:
        return spec.labels.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(spec.labels):
        return int(text)
    raise MkdError(
        f"{where}: label {text!r} is outside the label set {list(spec.labels)}",
        "fix the data or the task's labels:",
    )
