"""The per-task tables of benchmarks/research-static.md: dev and test accuracy of every student folder
given, the run's teacher and the baselines (results.json written by train_baselines' caller).

    python benchmarks/study/research_table.py --run runs/research-static --baselines baselines/results.json \\
        --rows "default=runs/research-static/static" "base vectors=runs/research-static/static-base" ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _scores(folder: Path) -> dict[str, dict[str, float]]:
    """split -> task -> accuracy (the first metric) of a model folder's metrics.json."""
    splits = json.loads((folder / "metrics.json").read_text())["splits"]
    return {s: {t: next(iter(m.values())) for t, m in d["tasks"].items()} for s, d in splits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--baselines", type=Path, required=True)
    ap.add_argument("--rows", nargs="+", required=True, help="label=folder (a student folder)")
    args = ap.parse_args()
    rows: list[tuple[str, dict]] = [("teacher (MiniLM-L6, refined)", _scores(args.run / "teacher"))]
    for item in args.rows:
        label, folder = item.split("=", 1)
        if (Path(folder) / "metrics.json").is_file():
            rows.append((label, _scores(Path(folder))))
    for name, per_task in json.loads(args.baselines.read_text()).items():
        title = {"model2vec": "model2vec classifier (gold only)", "fasttext": "fastText (gold only)"}.get(name, name)
        rows.append((title, {"dev": {t: r["dev"]["accuracy"] for t, r in per_task.items()},
                             "test": {t: r["test"]["test"]["accuracy"] for t, r in per_task.items()}}))
    tasks = sorted({t for _, s in rows for t in s.get("test", {})})
    for task in tasks:
        m2v = next(s["test"][task] for label, s in rows if label.startswith("model2vec"))
        teacher = rows[0][1]["test"][task]
        print(f"\n### {task}\n\n| row | dev | test | test - model2vec | % of teacher (test) |\n|---|---|---|---|---|")
        for label, s in rows:
            if task not in s.get("test", {}):
                continue
            dev, test = s["dev"].get(task), s["test"][task]
            print(f"| {label} | {dev:.2f} | {test:.2f} | {test - m2v:+.2f} | {100 * test / teacher:.1f}% |")


if __name__ == "__main__":
    main()
