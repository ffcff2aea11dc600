"""The README's serving snippet against mkd's own ONNX runtime on a real export (prints figures; not a test).

Runs the snippet of README.md as it is now, and as it was at a git revision, on an export folder
(`mkd export --model DIR --out EXPORT`), for the first dev texts of each of its tasks (read from the model's
recipe), and prints each version's max |logits difference| and label agreement with mkd.serving.runtime.
OnnxModel. tests/test_onnx_serving.py checks the current snippet on tiny exports of every kind; this shows
what a revision's snippet did on a real one.

    python benchmarks/snippet_check.py runs/demo/student EXPORT [--revision d4bb8d3] [--examples 500]
Run from the repository's folder tree (git must find README.md's history) after `mkd export`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import numpy as np

from mkd.config import load_recipe
from mkd.serving.runtime import OnnxModel
from mkd.tasks import load_task

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(text: str) -> str:
    found = re.search(r"<!-- serving-snippet -->\s*```python\n(.*?)```", text, re.S)
    if not found:
        raise SystemExit("README.md has no serving snippet at that revision")
    return found.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="the exported model's folder (for its recipe and tasks)")
    parser.add_argument("export", type=Path)
    parser.add_argument("--revision", default="d4bb8d3")
    parser.add_argument("--examples", type=int, default=500)
    args = parser.parse_args()
    old = subprocess.run(["git", "-C", str(README.parent), "show", f"{args.revision}:README.md"],
                         capture_output=True, text=True, check=True).stdout
    versions = {f"snippet at {args.revision}": snippet(old), "snippet now": snippet(README.read_text())}
    recipe = load_recipe(args.model / "recipe.yaml")
    served = OnnxModel(args.export)
    for task in served.doc["tasks"]:
        dev = load_task(recipe.task(task), recipe.seed, recipe.fetch_missing).split("dev")[: args.examples]
        columns = [[e.texts[i] for e in dev] for i in range(len(dev[0].texts))]
        want = served.logits(task, columns, batch_size=64)
        for name, code in versions.items():
            scope = {"folder": str(args.export), "task": task, "firsts": columns[0],
                     "seconds": columns[1] if len(columns) > 1 else None}
            try:
                exec(code, scope)  # the README's own code
            except Exception as e:  # an old snippet may not run on this export at all
                print(f"  {task:12s} {name:22s} fails: {type(e).__name__}: {e}")
                continue
            got = scope["logits"]
            print(f"  {task:12s} {name:22s} max |logits diff| {np.abs(got - want).max():.2g}, "
                  f"label agreement {(got.argmax(1) == want.argmax(1)).mean():.4f} on {len(dev)} dev examples")


if __name__ == "__main__":
    main()
