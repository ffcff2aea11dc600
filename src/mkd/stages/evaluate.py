"""`mkd evaluate`: the metric table of any model folder on a split of its tasks."""

from __future__ import annotations

from pathlib import Path

from mkd.config import Recipe, load_recipe
from mkd.data.evaluate import evaluate_tasks
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.models.base import read_meta
from mkd.models.loading import load_model
from mkd.stages.common import SCORING, metrics_document, say, table_lines
from mkd.tasks import load_task


def evaluate_folder(folder: Path, split: str = "test", recipe_src: str | None = None,
                    overrides: list[str] | None = None) -> dict:
    """Score `folder` on `split`; the data comes from the given recipe, else the folder's own."""
    if split not in ("dev", "test"):
        raise MkdError(f"unknown split '{split}'", "use --split dev or --split test")
    read_meta(folder)  # a missing or foreign folder is named as such, before its recipe is looked for
    if recipe_src is None and not (folder / "recipe.yaml").is_file():
        raise MkdError(f"{folder} holds no recipe.yaml to find its data", "pass the recipe with -c")
    recipe: Recipe = load_recipe(recipe_src or folder / "recipe.yaml", overrides)
    model = load_model(folder)
    tasks = {t.name: load_task(t, recipe.seed, recipe.fetch_missing) for t in recipe.tasks if t.name in model.specs}
    if not tasks:
        raise MkdError(f"the recipe has none of the model's tasks ({', '.join(model.specs)})", "pass a matching -c")
    data = {t: model.encode(model.specs[t], d.split(split)) for t, d in tasks.items()}
    precision = SCORING  # the arithmetic of every stored score (whatever the training precision)
    result = evaluate_tasks(model, model.specs, data, recipe.teacher.train.eval_batch_size, precision=precision)
    path = folder / "metrics.json"
    old = read_json(path) if path.is_file() else {}
    per_split = dict(old.get("splits", {}))
    per_split[split] = result
    write_json(path, metrics_document(per_split, "test" if "test" in per_split else split, precision))
    for line in table_lines({split: result}, sorted(result["tasks"])):
        say(line)
    return result
