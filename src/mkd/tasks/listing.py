"""`mkd tasks`: every known task, and split sizes where its data is present."""

from __future__ import annotations

import os
from typing import Any

from mkd.config import Recipe, TaskConfig
from mkd.errors import MkdError
from mkd.tasks import load_task
from mkd.tasks.catalog import CATALOG, resolve_spec


def _row(cfg: TaskConfig, seed: int) -> dict[str, Any]:
    spec = resolve_spec(cfg)
    row: dict[str, Any] = {
        "name": spec.name, "type": spec.type, "inputs": list(spec.text_fields), "labels": list(spec.labels),
        "metrics": list(spec.metrics), "primary": spec.primary, "source": spec.source,
        "description": spec.description, "sizes": {}, "status": "present",
    }
    if spec.source == "glue" and not (cfg.glue_dir or os.environ.get("GLUE_DIR")):
        row["status"] = "set GLUE_DIR or glue_dir"
        return row
    if spec.source == "hub":
        row["status"] = "online only"
        return row
    try:
        row["sizes"] = load_task(cfg, seed).sizes()
    except MkdError as e:
        row["status"] = e.line()
    return row


def describe_tasks(recipe: Recipe | None = None) -> list[dict[str, Any]]:
    seed = recipe.seed if recipe else 13
    configs = {name: TaskConfig(name=name) for name in CATALOG}
    if recipe:
        configs.update({t.name: t for t in recipe.tasks})
    return [_row(cfg, seed) for cfg in configs.values()]
