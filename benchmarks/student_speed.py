"""Examples/s of model folders on one thread, tokenization included, by wall clock AND by CPU time.

`mkd bench --model` reports wall-clock speed, which a busy shared machine understates by the load
factor; the process's CPU time (one thread, so CPU seconds are the seconds the model needed) is
the contention-robust figure. Both are printed, medians over interleaved rounds, on each task's
test split as the folder's recipe defines it.

    OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python benchmarks/student_speed.py runs/demo/teacher \
        runs/demo/static --batch-size 32 --n 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread: no rayon pool in the tokenizer

import torch

from mkd.config import load_recipe
from mkd.models.loading import load_model
from mkd.serving.bench import torch_runner
from mkd.tasks import load_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n", type=int, default=2000, help="test examples per task")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = {f: load_model(f) for f in args.folders}
    recipe = load_recipe(args.folders[0] / "recipe.yaml")
    print(f"{'model':40s} {'task':12s} {'wall ex/s':>10s} {'cpu ex/s':>10s}")
    for cfg in recipe.tasks:
        examples = load_task(cfg, recipe.seed).split("test")[: args.n]
        runners = {f: torch_runner(m, m.specs[cfg.name]) for f, m in models.items() if cfg.name in m.specs}
        wall: dict[Path, list[float]] = {f: [] for f in runners}
        cpu: dict[Path, list[float]] = {f: [] for f in runners}
        for r in range(args.rounds + 1):  # round 0 warms up
            for f, run in runners.items():
                w, c = time.perf_counter(), time.process_time()
                for i in range(0, len(examples), args.batch_size):
                    run(examples[i: i + args.batch_size])
                if r:
                    wall[f].append(len(examples) / (time.perf_counter() - w))
                    cpu[f].append(len(examples) / (time.process_time() - c))
        for f in runners:
            print(f"{f!s:40s} {cfg.name:12s} {statistics.median(wall[f]):10.0f} {statistics.median(cpu[f]):10.0f}")


if __name__ == "__main__":
    main()
