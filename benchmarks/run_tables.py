"""Per-task tables of a finished run, from its summary.json and bench/bench.json (prints markdown; not a test).

One table per task: every model scored on it and every baseline, with its test score, its share of the
teacher's, its fastest serving path at the bench's largest batch, and its batch-1 p50 / p99 latency
(the path with the lowest p50), both among the paths that passed their gate (mkd.serving.bench).
RESULTS.md's four-task tables come from this.

    python benchmarks/run_tables.py runs/study-four-tasks
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mkd.serving.bench import passed


def rows(summary: dict[str, Any], bench: dict[str, Any], task: str, big: str) -> list[tuple]:
    primary = "accuracy"
    out = []
    for name, fig in bench["tasks"][task].items():
        test = summary["models"][name]["test"]["tasks"]
        if task not in test:  # a model fine-tuned on another task keeps this task's head
            continue
        counted = {p: f for p, f in fig["paths"].items() if passed(fig.get("checks"), p)}  # under its gate: no
        fastest = fig["best_path"]  # the bench's own choice at the largest batch, among the paths that passed
        quickest = min(counted.values(), key=lambda f: f["batch_1"]["p50_ms"])["batch_1"]
        out.append((name, test[task][primary], counted[fastest][big]["examples_per_s"], fastest,
                    quickest["p50_ms"], quickest["p99_ms"]))
    for name, per_task in summary.get("baselines", {}).items():
        if task in per_task:
            fig = bench["baselines"][task][name]
            out.append((f"{name} (baseline, gold labels only)", per_task[task]["test"][primary],
                        fig[big]["examples_per_s"], "native", fig["batch_1"]["p50_ms"], fig["batch_1"]["p99_ms"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run folder (summary.json and bench/bench.json)")
    run = parser.parse_args().run
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    bench = json.loads((run / "bench" / "bench.json").read_text(encoding="utf-8"))
    big = f"batch_{max(bench['batch_sizes'])}"
    for task in bench["tasks"]:
        teacher = summary["models"]["teacher"]["test"]["tasks"][task]["accuracy"]
        print(f"\n### {task}\n\n| model | test accuracy | % of teacher | ex/s, {big.replace('_', ' ')} (path) "
              "| batch-1 p50 / p99 ms |\n|---|---|---|---|---|")
        for name, acc, speed, path, p50, p99 in rows(summary, bench, task, big):
            share = 100 * acc / teacher
            print(f"| {name} | {acc:.2f} | {share:.1f}% | {speed:,.0f} ({path}) | {p50:.3f} / {p99:.3f} |")


if __name__ == "__main__":
    main()
