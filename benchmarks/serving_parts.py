"""Where serving time goes (prints figures; not a test).

(a) The static student's numpy path on each task of a run, per example, one thread, batches of 32 dev
    examples: the token ids (tokie where exact), the pooled vectors (bag sums), the head, and the whole
    `StaticNumpy.logits` call; the head's first layer in numpy against PyTorch fp32 and bf16 (why
    the numpy path keeps fp32: its logits must stay within 1e-4 of PyTorch's); and the whole call as it
    serves (first layer folded into the token table, pooled in one compiled pass where numba is
    installed) against the folded arithmetic pooled by scipy and against the arithmetic unfolded.
(b) `--bench-stage`: the run's bench stage (`bench_stage(force=True)`: it measures the run again and
    rewrites its bench folder) under cProfile, in seconds: the ONNX exports with their gates, the
    interleaved timing, the per-path checks, loading the models, and the whole stage.

    OMP_NUM_THREADS=1 python benchmarks/serving_parts.py runs/demo
    python benchmarks/serving_parts.py runs/demo --bench-stage
Run from the folder that holds runs/ (a recipe's `source: files` paths are relative to it).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import numpy as np

from mkd.config import load_recipe
from mkd.serving.fast_bench import texts_of
from mkd.serving.static_numpy import StaticNumpy
from mkd.tasks import load_recipe_tasks

BATCH = 32


def per_example_us(fn, batches: list, reps: int) -> float:
    fn(batches[0])
    start = time.perf_counter()
    for _ in range(reps):
        for b in batches:
            fn(b)
    return (time.perf_counter() - start) / (reps * len(batches) * BATCH) * 1e6


def head(served: StaticNumpy, task: str):
    def run(x: np.ndarray) -> np.ndarray:
        for i, (w, b) in enumerate(served.heads[task]):
            x = x @ w + b
            if i < len(served.heads[task]) - 1:
                np.maximum(x, 0.0, out=x)
        return x
    return run


def static_parts(run: Path, reps: int) -> None:
    recipe = load_recipe(run / "recipe.yaml")
    print(f"(a) the static student's numpy path, us per example, one thread, batches of {BATCH}")
    for name, data in load_recipe_tasks(recipe).items():
        task_parts(run / "student", name, data.split("dev"), reps)


def task_parts(student: Path, name: str, dev: list, reps: int) -> None:
    served = StaticNumpy.from_folder(student, texts_of(dev))
    width = 2 if served.tasks[name]["is_pair"] else 1
    n = len(dev) - len(dev) % BATCH
    batches = [[[e.texts[i] for e in dev[s: s + BATCH]] for i in range(width)] for s in range(0, n, BATCH)]
    flat = [[t for col in b for t in col] for b in batches]
    ragged = [served.encode(f) for f in flat]
    pooled = [served.sentences(r) for r in ragged]
    features = [p if width == 1 else
                np.concatenate([p[:BATCH], p[BATCH:], np.abs(p[:BATCH] - p[BATCH:]), p[:BATCH] * p[BATCH:]], 1)
                for p in pooled]
    run_head = head(served, name)
    parts = {
        "token ids": per_example_us(served.encode, flat, reps),
        "bag sums (pooled vectors)": per_example_us(served.sentences, ragged, reps),
        "head": per_example_us(run_head, features, reps),
        "whole logits call": per_example_us(lambda b: served.logits(name, b), batches, reps),
    }
    tokenizer = served.tokenizer_info.get("tokenizer")
    print(f"  {name} ({n} dev examples, {tokenizer}; first layer {served.heads[name][0][0].shape}):")
    for part, us in parts.items():
        print(f"    {part:28s} {us:7.2f} us  ({1e6 / us:10,.0f} ex/s alone)")
    first_layer(served.heads[name][0][0], features[0])
    whole_call_ways(served, name, batches, width, run_head)


def whole_call_ways(served: StaticNumpy, name: str, batches: list, width: int, run_head,
                            rounds: int = 7) -> None:
    """The whole call as it serves (one compiled pass, mkd.serving.static_kernels, where numba is installed)
    against the same folded arithmetic pooled by scipy's kernel (three passes a pair batch), and against
    the arithmetic unfolded (pooled vectors, then every head layer, as before the fold): mkd.serving.timing's
    interleaved, time-boxed rounds (the bench's clock), medians with their spread."""
    from mkd.serving import timing
    from mkd.serving.static_kernels import KERNELS

    def unfolded(b: list) -> np.ndarray:
        p = served.sentences(served.encode([t for col in b for t in col]))
        if width == 2:
            n = len(b[0])
            p = np.concatenate([p[:n], p[n:], np.abs(p[:n] - p[n:]), p[:n] * p[n:]], 1)
        return run_head(p)

    def scipy_folded(b: list) -> np.ndarray:
        x = served.folded[name].first_layer(served.encode([t for col in b for t in col]), len(b[0]), None)
        for w, bias in served.heads[name][1:]:
            np.maximum(x, 0.0, out=x)
            x = x @ w + bias
        return x

    ways = {"serving": lambda b: served.logits(name, b), "scipy folded": scipy_folded, "unfolded": unfolded}
    logits = {k: np.concatenate([f(b) for b in batches]) for k, f in ways.items()}
    rows = [tuple(col[i] for col in b) for b in batches for i in range(len(b[0]))]

    def columns(part: list) -> list:
        return [[r[i] for r in part] for i in range(width)]

    runners = {k: (lambda part, f=f: f(columns(part))) for k, f in ways.items()}
    figures = timing.measure(runners, rows, (BATCH,), rounds, budget_s=0.2)
    speed = {k: v[f"batch_{BATCH}"]["examples_per_s"] for k, v in figures.items()}
    print(f"    whole call, {rounds} interleaved rounds (serving = {'compiled pass' if KERNELS else 'scipy folded'}):")
    for k, f in figures.items():
        sp = f[f"batch_{BATCH}"]["spread"]
        diff = np.abs(logits[k] - logits["unfolded"]).max()
        agree = (logits[k].argmax(1) == logits["unfolded"].argmax(1)).mean()
        print(f"      {k:13s} {speed[k]:9,.0f} ex/s ({sp['min']:,.0f}-{sp['max']:,.0f}); "
              f"{speed[k] / speed['unfolded']:.2f}x unfolded; max |logits diff| {diff:.1e}, "
              f"argmax agreement {agree:.4f}")
    print(f"      compiled pass against scipy folded: {speed['serving'] / speed['scipy folded']:.2f}x")


def first_layer(w: np.ndarray, x: np.ndarray) -> None:
    import torch

    torch.set_num_threads(1)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    timings = {"numpy fp32": lambda: x @ w, "torch fp32": lambda: xt @ wt,
               "torch bf16": lambda b=xt.bfloat16(), v=wt.bfloat16(): b @ v}
    figures = []
    for name, fn in timings.items():
        fn()
        start = time.perf_counter()
        for _ in range(2000):
            fn()
        figures.append(f"{name} {(time.perf_counter() - start) / 2000 * 1e6:.0f} us")
    print(f"    first layer, {x.shape[0]} x {w.shape[0]} x {w.shape[1]}: {', '.join(figures)}")


PARTS = {"ONNX exports with their gates": "export_onnx", "interleaved timing": "measure",
         "per-path checks": "path_checks", "loading models": "load_model"}


def bench_stage_parts(run: Path) -> None:
    from mkd.stages.pipeline import bench_stage

    recipe = load_recipe(run / "recipe.yaml")
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(bench_stage, recipe, True)
    total = time.perf_counter() - start
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    print(f"(b) the bench stage of {run}, under cProfile: {total:.1f} s in all")
    for label, func in PARTS.items():
        cum = max((v[3] for (path, _, name), v in stats.items() if name == func and "mkd" in path), default=0.0)
        print(f"  {label:32s} {cum:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder with a static student (e.g. runs/demo)")
    parser.add_argument("--reps", type=int, default=30, help="passes over the dev batches per figure")
    parser.add_argument("--bench-stage", action="store_true", help="profile the run's bench stage instead")
    args = parser.parse_args()
    if args.bench_stage:
        bench_stage_parts(args.run)
    else:
        static_parts(args.run, args.reps)


if __name__ == "__main__":
    main()
