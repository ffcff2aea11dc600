"""The any-teacher round trip on real data (prints figures; not a test).

Run A trains the demo's teacher with `pooling: pooler` and distils it; `mkd export --format hf` turns
that teacher into one Hugging Face folder per task; run B uses those folders as `kind: hf` teachers
(so it skips teach). Printed: the largest logit difference between A's and B's transfer sets (joined
by id), and both runs' teacher and student test scores.

    OMP_NUM_THREADS=1 python benchmarks/teacher_roundtrip.py --out runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SMALL = ["teacher.pooling=pooler", "teacher.train.max_steps=60",
         *[f"tasks.{t}.{k}={v}" for t in ("rt_polarity", "snli")
           for k, v in (("max_train", 500), ("max_dev", 200), ("max_test", 400))],
         "distill.train.max_steps=150", "bench.rounds=1", "bench.examples=64"]


def mkd(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mkd", *args], check=True)


def main() -> None:
    from mkd.data.transfer import load_transfer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs", help="output_dir of both runs")
    args = parser.parse_args()
    sets = [a for s in [*SMALL, f"output_dir={args.out}"] for a in ("--set", s)]
    out = Path(args.out)
    mkd("run", *sets, "--set", "name=rt-a")
    mkd("export", "--model", str(out / "rt-a" / "teacher"), "--format", "hf")
    hf = out / "rt-a" / "teacher" / "hf"
    mkd("run", *sets, "--set", "name=rt-b",
        *[a for t in ("rt_polarity", "snli") for a in ("--set", f"transfer.teachers.{t}={{kind: hf, path: {hf / t}}}")])
    for task in ("rt_polarity", "snli"):
        a_ex, a = load_transfer(out / "rt-a" / "transfer" / task)
        b_ex, b = load_transfer(out / "rt-b" / "transfer" / task)
        assert [e.id for e in a_ex] == [e.id for e in b_ex]
        print(f"{task}: {len(a_ex)} transfer examples, max |logit diff| internal vs HF {np.abs(a - b).max():.2e}")
    for run in ("rt-a", "rt-b"):
        summary = json.loads((out / run / "summary.json").read_text(encoding="utf-8"))
        for name, m in summary["models"].items():
            test = {t: v[next(iter(v))] for t, v in m["test"]["tasks"].items()}
            print(f"{run} {name:8s} test {test} macro {m['macro']} ex/s {m['examples_per_s']}")


if __name__ == "__main__":
    main()
