"""Where one stage of a run spends its time: the stage rerun (force) under cProfile, its wall time and
the functions with the most time of their own (prints figures; not a test).

The stage rewrites what it makes in the run folder (`teach` replaces the teacher and marks the students
stale), so profile a copy of a run:

    cp -r runs /tmp/prof-runs && cd /tmp/prof-runs/..
    python benchmarks/stage_profile.py prof-runs/demo teach [--top 15]

Stages: teach, label, distill. Run from the folder that holds the run's folder (a recipe's `source:
files` paths are relative to it). Numbers are the host's at that moment: compare stages of one run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from mkd.config import load_recipe


def stage_call(name: str):
    if name == "teach":
        from mkd.stages.teach import teach

        return teach
    if name == "label":
        from mkd.stages.label import label

        return label
    from mkd.stages.distill import distill

    return distill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (a copy: the stage rewrites it)")
    parser.add_argument("stage", choices=["teach", "label", "distill"])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    recipe = load_recipe(args.run / "recipe.yaml", [f"output_dir={args.run.resolve().parent}"])
    call = stage_call(args.stage)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(call, recipe, force=True)
    wall = time.perf_counter() - start
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = sorted(((tt, ct, n, f"{Path(f).name}:{line}({fn})") for (f, line, fn), (_, n, tt, ct, _) in stats.items()),
                  reverse=True)[: args.top]
    print(f"{args.stage} of {args.run}: {wall:.1f} s (under cProfile)")
    print(f"  {'own s':>7s} {'with callees s':>14s} {'calls':>8s}  function")
    for tt, ct, n, where in rows:
        print(f"  {tt:7.2f} {ct:14.2f} {n:8d}  {where}")


if __name__ == "__main__":
    main()
