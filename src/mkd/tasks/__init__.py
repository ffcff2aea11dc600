"""Tasks as data: declarations (catalog), data sources, metrics."""

from __future__ import annotations

from dataclasses import replace

from mkd.config import Recipe, TaskConfig
from mkd.errors import MkdError
from mkd.tasks.blank import drop_blank
from mkd.tasks.catalog import CATALOG, resolve_spec
from mkd.tasks.sources import SOURCES
from mkd.tasks.split import subsample
from mkd.tasks.task import Example, TaskData, TaskSpec

__all__ = ["CATALOG", "Example", "TaskData", "TaskSpec", "load_recipe_tasks", "load_task"]


def _register_sources() -> None:
    # Importing a source module registers its loader(s).
    from mkd.tasks import builtin, files, glue  # noqa: F401


def load_task(cfg: TaskConfig, seed: int = 13, fetch_missing: bool = False, blank: str = "drop") -> TaskData:
    """The examples of one recipe task, blank texts dropped (or refused), subsampled as the recipe
    says, checked for sanity."""
    _register_sources()
    spec = resolve_spec(cfg)
    splits = SOURCES.get(spec.source)(spec, cfg, seed, fetch_missing)
    if spec.join is not None:  # sources read the columns; a joined task sees one text
        splits = {k: [replace(e, texts=spec.texts_of(e.texts)) for e in v] for k, v in splits.items()}
    splits = drop_blank(spec.name, splits, blank)
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
