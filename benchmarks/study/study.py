"""The study: MKD's claims on real data, side by side (`make study`, or `python benchmarks/study/study.py`).

Every row is plain `mkd` commands on a recipe derived from a packaged one (`demo` or `full`) by
`--set` overrides, so each number can be reproduced by hand. Rows share what they can: one
multi-task teacher labels every transfer set; students with the same tasks and augmentation share
one run folder (one transfer set) and differ by `student.folder`. A finished row is not recomputed
(each stage skips itself when unchanged), so the study resumes where it stopped.

Results go to benchmarks/study/results-<scale>.json; `--table` prints them as a Markdown table
(test metrics, mean ± standard deviation over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("rt_polarity", "snli")


@dataclass
class Row:
    name: str
    run: str  # run folder name (rows with the same run share teacher/transfer)
    stages: tuple[str, ...]
    sets: tuple[str, ...] = ()
    folder: str = "student"  # model folder inside the run
    seeded: bool = True  # students: repeated over seeds
    kind: str = "student"
    extra: dict = field(default_factory=dict)


def _single(task: str, scale: str) -> tuple[str, ...]:
    """Keep only `task`, with the base recipe's settings for it (sizes stay those of the scale)."""
    from mkd.config import load_recipe

    entry = load_recipe(scale).task(task).model_dump(exclude_defaults=True)
    return (f"tasks=[{json.dumps(entry)}]",)


def rows(scale: str) -> list[Row]:
    """Every row of the study, as data."""
    mt_teacher = f"runs/study-{scale}/mkd/teacher"
    teach_from = tuple(f"transfer.teachers.{t}={mt_teacher}" for t in TASKS)
    out: list[Row] = [
        Row("Teacher MiniLM-L6 (multi-task)", "mkd", ("teach",), folder="teacher", seeded=False, kind="teacher"),
    ]
    for t in TASKS:
        out.append(Row(f"Teacher MiniLM-L6 ({t} only)", f"teacher-{t}", ("teach",), _single(t, scale), "teacher",
                       seeded=False, kind="teacher"))
    for t in TASKS:
        single = (*_single(t, scale), f"transfer.teachers.{t}={mt_teacher}")
        out += [
            Row(f"BiLSTM, no distillation ({t})", f"nodistill-{t}", ("augment", "label", "distill"),
                (*single, "transfer.augment.enabled=false", "distill.alpha=1.0", "student.type=bilstm"), "bilstm"),
            Row(f"Tang: BiLSTM single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"),
                (*single, "student.type=bilstm"), "bilstm"),
            Row(f"bilstm_attn single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"),
                single, "attn"),
        ]
    out += [
        Row("MKD-LSTM (bilstm_attn, multi-task)", "mkd", ("augment", "label", "distill"), teach_from, "mkd-lstm"),
        Row("MKD-LSTM + fine-tuning", "mkd", ("finetune",), teach_from, "mkd-lstm", extra={"finetuned": True}),
        Row("MKD-Transformer (3 layers of MiniLM-L6)", "mkd", ("distill",),
            (*teach_from, "student.type=transformer", "student.init_from=minilm-l6", "student.init_layers=3",
             "distill.train.lr=1e-4", "distill.train.batch_size=32", "distill.train.epochs=2"), "mkd-tf"),
        Row("Gap: MKD-LSTM wider (hidden 300) and longer (8 epochs)", "mkd", ("distill",),
            (*teach_from, "student.hidden_size=300", "distill.train.epochs=8"), "mkd-lstm-wide"),
        Row("Ablation: no augmentation", "mkd-noaug", ("augment", "label", "distill"),
            (*teach_from, "transfer.augment.enabled=false"), "mkd-lstm"),
        Row("Ablation: KL with T^2 (T=2)", "mkd", ("distill",), (*teach_from, "distill.loss=kl",
                                                               "distill.temperature=2"), "mkd-lstm-kl"),
        Row("Ablation: uniform task mixing", "mkd", ("distill",), (*teach_from, "distill.train.mixing=uniform"),
            "mkd-lstm-uniform"),
        Row("Ablation: spaCy 300-d vectors", "mkd", ("distill",), (*teach_from, "student.embeddings=spacy-en-md"),
            "mkd-lstm-spacy"),
        Row("Ablation: teacher WordPiece embeddings", "mkd", ("distill",),
            (*teach_from, "student.embeddings=teacher"), "mkd-lstm-wordpiece"),
    ]
    return out


def mkd(stage: str, base: str, scale: str, row: Row, seed: int | None, log: Path) -> float:
    sets = [f"name={row.run}", f"output_dir=runs/study-{scale}", *row.sets]
    if row.seeded:
        folder = row.folder if seed is None else f"{row.folder}-s{seed}"
        sets += [f"student.folder={folder}"] + ([f"distill.seed={seed}"] if seed is not None else [])
    cmd = [sys.executable, "-m", "mkd", stage, "-c", base] + [a for s in sets for a in ("--set", s)]
    started = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        code = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"study: `{' '.join(cmd)}` failed with {code}; see {log}")
    return time.time() - started


def collect(scale: str, row: Row, seed: int | None) -> list[dict]:
    run = ROOT / f"runs/study-{scale}" / row.run
    folder = row.folder if not row.seeded or seed is None else f"{row.folder}-s{seed}"
    paths = ([p for p in sorted((run / f"{folder}-finetuned").iterdir())] if row.extra.get("finetuned")
             else [run / folder])
    found = []
    for p in paths:
        metrics = json.loads((p / "metrics.json").read_text())
        stage = json.loads((p / "stage.json").read_text())
        meta = json.loads((p / "mkd.json").read_text())
        found.append({"path": str(p.relative_to(ROOT)), "test": metrics["splits"].get("test"),
                      "dev": metrics["splits"].get("dev"), "parameters": meta["parameters"],
                      "train_seconds": stage.get("train_seconds")})
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=["demo", "full"], default="full")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rows", nargs="*", help="substrings of row names to run (default: all)")
    ap.add_argument("--table", action="store_true", help="only print the Markdown table of stored results")
    args = ap.parse_args()
    if args.table:
        print(table(args.scale))
        return
    base = args.scale
    log = ROOT / f"runs/study-{args.scale}/study.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    results_path = ROOT / f"benchmarks/study/results-{args.scale}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for row in rows(args.scale):
        if args.rows and not any(s.lower() in row.name.lower() for s in args.rows):
            continue
        seeds = args.seeds if row.seeded else [None]
        entry = {"run": row.run, "folder": row.folder, "sets": list(row.sets), "seeds": {}}
        for seed in seeds:
            wall = 0.0
            for stage in row.stages:
                wall += mkd(stage, base, args.scale, row, seed, log)
            entry["seeds"][str(seed)] = {"models": collect(args.scale, row, seed), "wall_seconds": round(wall, 1)}
            print(f"study: {row.name} seed {seed}: done ({wall:.0f}s)", flush=True)
        results[row.name] = entry
        results_path.write_text(json.dumps(results, indent=1))


def summarize(entry: dict) -> dict:
    """Mean and standard deviation over seeds of each task's primary test metric and the macro."""
    per_seed = []
    for seed in entry["seeds"].values():
        scores = {}
        for m in seed["models"]:
            for t, vals in (m["test"] or {}).get("tasks", {}).items():
                scores[t] = next(iter(vals.values()))
        per_seed.append(scores)
    tasks = sorted({t for s in per_seed for t in s})
    out = {}
    for t in tasks:
        vals = [s[t] for s in per_seed if t in s]
        out[t] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out


def table(scale: str) -> str:
    """The stored results as a Markdown table (test metrics: mean ± std over seeds)."""
    results = json.loads((ROOT / f"benchmarks/study/results-{scale}.json").read_text())
    lines = ["| row | " + " | ".join(TASKS) + " | macro | params (no emb.) | seeds | train s |",
             "|---|" + "---|" * (len(TASKS) + 4)]
    for name, entry in results.items():
        stats = summarize(entry)
        cells = [f"{stats[t][0]:.2f} ± {stats[t][1]:.2f}" if t in stats else "-" for t in TASKS]
        macro = statistics.mean(stats[t][0] for t in stats) if stats else float("nan")
        first = next(iter(entry["seeds"].values()))
        p = first["models"][0]["parameters"]
        secs = [m.get("train_seconds") or 0 for m in first["models"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {macro:.2f} | {p['total'] / 1e6:.2f}M "
                     f"({p['without_embeddings'] / 1e6:.2f}M) | {len(entry['seeds'])} | {sum(secs):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
