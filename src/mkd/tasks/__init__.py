"""Tasks as data: declarations (catalog), data sources, metrics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace

from mkd.config import Recipe, TaskConfig
from mkd.errors import MkdError
from mkd.tasks.blank import drop_blank
from mkd.tasks.catalog import CATALOG, resolve_spec
from mkd.tasks.sources import SOURCES
from mkd.tasks.split import subsample
from mkd.tasks.task import Example, TaskData, TaskSpec

__all__ = ["CATALOG", "Example", "TaskData", "TaskSpec", "load_recipe_tasks", "load_task", "read_once",
           "unlabelled_train"]


def _register_sources() -> None:
    # Importing a source module registers its loader(s).
    from mkd.tasks import builtin, files, glue  # noqa: F401


_READ: dict[str, tuple[TaskSpec, dict[str, list[Example]]]] | None = None
"""Inside `read_once`: every task read so far, by its settings (None: each load reads the files)."""


@contextlib.contextmanager
def read_once() -> Iterator[None]:
    """Within it, each task's source is read once: the stages of `mkd run` load the same tasks again and
    again (reading snli's JSONL takes seconds each time). Examples are frozen; each load gets its own lists."""
    global _READ
    outer = _READ
    _READ = {} if outer is None else outer
    try:
        yield
    finally:
        _READ = outer


def _all_examples(cfg: TaskConfig, seed: int, fetch_missing: bool, blank: str) -> tuple[TaskSpec, dict]:
    """Every example of every split of a task, before subsampling."""
    key = json.dumps([cfg.model_dump(mode="json"), seed, blank], sort_keys=True, default=str)
    if _READ is not None and key in _READ:
        spec, splits = _READ[key]
        return spec, {k: list(v) for k, v in splits.items()}
    _register_sources()
    spec = resolve_spec(cfg)
    splits = SOURCES.get(spec.source)(spec, cfg, seed, fetch_missing)
    if spec.join is not None:  # sources read the columns; a joined task sees one text
        splits = {k: [replace(e, texts=spec.texts_of(e.texts)) for e in v] for k, v in splits.items()}
    splits = drop_blank(spec.name, splits, blank)
    if _READ is not None:
        _READ[key] = (spec, {k: list(v) for k, v in splits.items()})
    return spec, splits


def load_task(cfg: TaskConfig, seed: int = 13, fetch_missing: bool = False, blank: str = "drop") -> TaskData:
    """The examples of one recipe task, blank texts dropped (or refused), subsampled as the recipe
    says, checked for sanity."""
    spec, splits = _all_examples(cfg, seed, fetch_missing, blank)
    limits = {"train": cfg.max_train, "dev": cfg.max_dev, "test": cfg.max_test}
    for name, items in splits.items():
        limit = limits.get(name, cfg.max_test if name.startswith("test") else None)
        splits[name] = subsample(items, limit, seed)
        if not splits[name]:
            raise MkdError(f"task {spec.name}: the {name} split is empty", "check the task's data files")
    if "train" not in splits or "dev" not in splits:
        raise MkdError(f"task {spec.name}: source gave no train/dev split", "check the task's data")
    return TaskData(spec, splits)


def load_recipe_tasks(recipe: Recipe) -> dict[str, TaskData]:
    return {t.name: load_task(t, recipe.seed, recipe.fetch_missing, recipe.blank_texts) for t in recipe.tasks}


def unlabelled_train(cfg: TaskConfig, seed: int = 13, fetch_missing: bool = False) -> list[Example]:
    """`cfg.unlabelled_train` examples of the training split that max_train left out, labels dropped:
    transfer text only (never in dev or test, which are split off before)."""
    if not cfg.unlabelled_train:
        return []
    _, splits = _all_examples(cfg, seed, fetch_missing, "drop")
    train = splits.get("train", [])
    kept = {e.id for e in subsample(train, cfg.max_train, seed)}
    rest = [replace(e, label=None) for e in train if e.id not in kept]
    return subsample(rest, cfg.unlabelled_train, seed)
