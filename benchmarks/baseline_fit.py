"""How long the baselines (mkd.baselines) take to fit, on one thread, on a recipe's own splits (prints
figures; not a test). Each grid point's fit and dev score, the chosen setting, test, total seconds and
the saved folder's size; `--bucket` also tries fastText's bigram table sizes (model file size against
dev accuracy).

    OMP_NUM_THREADS=1 python benchmarks/baseline_fit.py                       # the demo recipe's tasks
    OMP_NUM_THREADS=1 python benchmarks/baseline_fit.py --tasks rt_polarity --bucket 2000000 200000 50000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mkd.baselines import DEFAULT, train_baselines
from mkd.baselines.fasttext_baseline import FastTextBaseline
from mkd.config import load_recipe
from mkd.tasks import load_recipe_tasks


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=None, help="a recipe file (default: the demo recipe)")
    ap.add_argument("--tasks", nargs="*", default=None, help="only these tasks of the recipe")
    ap.add_argument("--baselines", nargs="*", default=list(DEFAULT))
    ap.add_argument("--bucket", nargs="*", type=int, default=None, help="fastText bucket sizes to compare")
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipe = load_recipe(args.recipe)
    tasks = load_recipe_tasks(recipe)
    tasks = {t: d for t, d in tasks.items() if not args.tasks or t in args.tasks}
    for task, data in tasks.items():
        print(f"{task}: {data.sizes()}")
    with tempfile.TemporaryDirectory(prefix="mkd-baseline-fit-") as tmp:
        grids = None
        if args.bucket:
            grid = {**FastTextBaseline.grid, "bucket": args.bucket}
            grids = {"fasttext": grid}
        t0 = time.perf_counter()
        results = train_baselines(args.baselines, tasks, tmp, recipe.seed, grids=grids)
        print(f"all baselines, all tasks: {time.perf_counter() - t0:.1f} s (vectors distilled or reused included)")
        for name, per_task in results.items():
            for task, r in per_task.items():
                if "skipped" in r:
                    print(f"{name} {task}: skipped: {r['skipped']}")
                    continue
                print(f"{name} {task}: {r['train_seconds']:.1f} s for {len(r['grid'])} grid points; chosen "
                      f"{r['chosen']} dev {r['dev']} test {r['test']}; folder {_size_mb(Path(r['folder'])):.1f} MB")
                for g in r["grid"]:
                    print(f"    {g}")


if __name__ == "__main__":
    main()
