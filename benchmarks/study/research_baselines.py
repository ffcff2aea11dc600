"""The baselines of benchmarks/research-static.md: train_baselines on a recipe's TaskData, results to
OUT/results.json (chosen setting, dev and test per baseline and task).

    OMP_NUM_THREADS=1 python benchmarks/study/research_baselines.py research.yaml baselines [model2vec fasttext]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from mkd.baselines import train_baselines
from mkd.config import load_recipe
from mkd.tasks import load_recipe_tasks


def main() -> None:
    torch.set_num_threads(1)
    recipe, out = load_recipe(sys.argv[1]), Path(sys.argv[2])
    tasks = load_recipe_tasks(recipe)
    started = time.time()
    results = train_baselines(sys.argv[3:] or ["model2vec", "fasttext"], tasks, out, recipe.seed)
    print(f"{time.time() - started:.0f} s")
    keep = ("chosen", "dev", "test", "skipped")
    table = {n: {t: {k: r.get(k) for k in keep} for t, r in per.items()} for n, per in results.items()}
    (out / "results.json").write_text(json.dumps(table, indent=1))
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
