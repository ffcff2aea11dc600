"""The study: MKD's claims on real data, side by side (`make study`, or `python benchmarks/study/study.py`).

Every row is plain `mkd` commands on a recipe derived from a packaged one (`demo` or `full`) by
`--set` overrides, so each number can be reproduced by hand (the log holds every command). Rows
share what they can: one multi-task teacher labels every transfer set; students with the same
tasks and augmentation share one run folder and differ by `student.folder`; a run whose transfer
set would be identical to another run's gets it by hard links (the stages still check its
fingerprint). A finished row is not recomputed (each stage skips itself when unchanged), so the
study resumes where it stopped, and several study processes may run side by side (`--rows`).

The peers (fastText, model2vec; peers.py) are trained by the study on the mkd rows' own splits, and
the teacher's int8 ONNX rows are quantized and scored by it (study_bench.py). Rows that need a piece
of mkd this checkout lacks (`Row.needs`) are skipped with that reason, stored under "_skipped".

`--bench` then measures every row's model, the int8 graphs and the peers in one process, interleaved
round by round (one thread, batch 32, tokenization included); `--table` prints the Markdown tables
(every row; and, per task, each peer against the mkd rows at least as fast) and `--plot` draws the
figures, a Pareto plot per task among them. Results go to benchmarks/study/results-<scale>.json.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # peers.py, study_bench.py, study_report.py, study_rows.py
from study_bench import NEEDS, gpu_checks  # noqa: F401 (NEEDS: the pieces rows may need)
from study_rows import PEER_NAMES, ROOT, SCALES, VECTORS, Row, missing, row_sets, rows  # noqa: F401 (tests read all)


def share_transfer(runs: Path, row: Row, sets: list[str], base: str) -> None:
    """Give the row's run, by hard links, any task's transfer set another run of the study already
    built with the same fingerprint, so it is augmented and labelled once."""
    from mkd.config import load_recipe
    from mkd.stages.augment import manifest_fingerprint, task_fingerprint

    recipe = load_recipe(base, sets)
    for task in recipe.tasks:
        dst = runs / row.run / "transfer" / task.name
        want = task_fingerprint(recipe, task)
        if manifest_fingerprint(dst) == want:
            continue
        for src in sorted(runs.glob(f"*/transfer/{task.name}")):
            if src != dst and manifest_fingerprint(src) == want:
                tmp = dst.with_name(f".{task.name}.sharing")
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(src, tmp, copy_function=os.link)
                shutil.rmtree(dst, ignore_errors=True)
                tmp.rename(dst)
                break


def mkd(stage: str, base: str, sets: list[str], log: Path) -> float:
    cmd = [sys.executable, "-m", "mkd", stage, "-c", base] + [a for s in sets for a in ("--set", s)]
    started = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        code = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"study: `{' '.join(cmd)}` failed with {code}; see {log}")
    return time.time() - started


def model_paths(runs: Path, row: Row, seed: int | None) -> list[Path]:
    folder = runs / row.run / (row.folder if not row.seeded or seed is None else f"{row.folder}-s{seed}")
    if row.extra.get("finetuned"):
        tuned = folder.with_name(f"{folder.name}-finetuned")
        return sorted(p for p in tuned.iterdir() if (p / "mkd.json").is_file())
    return [folder]


def collect(runs: Path, row: Row, seed: int | None) -> list[dict]:
    found = []
    for p in model_paths(runs, row, seed):
        metrics = json.loads((p / "metrics.json").read_text())
        stage = json.loads((p / "stage.json").read_text())
        meta = json.loads((p / "mkd.json").read_text())
        found.append({"path": str(p.relative_to(runs.parent)), "test": metrics["splits"].get("test"),
                      "dev": metrics["splits"].get("dev"), "parameters": meta["parameters"],
                      "train_seconds": stage.get("train_seconds")})
    return found


def update_results(path: Path, key: str, value: dict) -> None:
    """Read-modify-write under a lock, so study processes running side by side keep each other's rows,
    and each other's seeds of one row (a row's stored seeds stay unless this value has them anew)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.exists() else {}
        old = results.get(key)
        if isinstance(old, dict) and "seeds" in value and old.get("sets") == value.get("sets"):
            seeds = {**old.get("seeds", {}), **value["seeds"]}
            value = {**value, "seeds": {k: seeds[k] for k in sorted(seeds)}}
        results[key] = value
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(path)


def int8_source(runs: Path, row: Row, seeds: list[int]) -> Path:
    """The model an int8 row quantizes: a folder of the run, or a seeded student's first seed."""
    of = row.extra["of"]
    return runs / row.run / (f"{of}-s{seeds[0]}" if row.extra.get("of_seeded") else of)


def run_study_stage(stage: str, args: argparse.Namespace, runs: Path, row: Row, sets: list[str]) -> list[dict]:
    """The rows the study runs itself: a peer trained on the row's splits, or the int8 teacher."""
    import study_bench

    scale = SCALES[args.scale]
    if stage == "peer":
        return study_bench.peer_row(row.extra["peer"], scale.base, sets, runs / row.run, row.folder, scale.peer_grid)
    return study_bench.quantize_int8(int8_source(runs, row, args.seeds), runs / row.run / row.folder)


def run_rows(args: argparse.Namespace, runs: Path, results_path: Path) -> None:
    scale = SCALES[args.scale]
    log = runs / "study.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    gpu_checks(args.scale)
    skipped = {row.name: why for row in rows(args.scale, runs) if (why := missing(row))}
    update_results(results_path, "_skipped", skipped)
    for row in rows(args.scale, runs):
        if args.rows and not any(s.lower() in row.name.lower() for s in args.rows):
            continue
        if row.name in skipped:
            print(f"study: {row.name}: skipped: {skipped[row.name]}", flush=True)
            continue
        seeds = args.seeds if row.seeded else [None]
        if row.kind == "ablation" and scale.ablation_seeds:
            seeds = seeds[: scale.ablation_seeds]
        seeds = seeds[: next((n for k, n in scale.row_seeds.items() if row.name.startswith(k)), None)]
        entry = {"run": row.run, "folder": row.folder, "kind": row.kind, "sets": list(row.sets), "seeds": {}}
        for seed in seeds:
            sets = row_sets(args.scale, runs, row, seed)
            if "augment" in row.stages:
                share_transfer(runs, row, sets, scale.base)
            started = time.time()
            if row.stages[0] in ("peer", "int8"):
                models = run_study_stage(row.stages[0], args, runs, row, sets)
            else:
                for stage in row.stages:
                    mkd(stage, scale.base, sets, log)
                models = collect(runs, row, seed)
            wall = time.time() - started
            entry["seeds"][str(seed)] = {"models": models, "wall_seconds": round(wall, 1)}
            print(f"study: {row.name} seed {seed}: done ({wall:.0f}s)", flush=True)
        update_results(results_path, row.name, entry)


def run_bench(args: argparse.Namespace, runs: Path, results_path: Path) -> None:
    """One in-process bench over the first seed's models of every finished row, the int8 graphs and
    the peers, interleaved per task (study_bench.bench)."""
    import study_bench

    scale = SCALES[args.scale]
    results = json.loads(results_path.read_text())
    by_name = {r.name: r for r in rows(args.scale, runs)}
    models: dict[str, Path] = {}
    int8: dict[str, tuple[Path, Path, str]] = {}
    peer_folders: dict[str, tuple[str, Path, str]] = {}
    for name, entry in results.items():
        if name.startswith("_") or name not in by_name:
            continue
        row = by_name[name]
        first = next(iter(entry["seeds"].values()))
        for m in first["models"]:
            folder = runs.parent / m["path"]
            if row.kind == "peer":
                peer_folders[m["path"]] = (row.extra["peer"], folder, m["task"])
            elif row.stages == ("int8",):
                int8[m["path"]] = (int8_source(runs, row, args.seeds), runs.parent / m["graph"], m["task"])
            else:
                models[m["path"]] = folder
    batch, rounds, n = scale.bench
    data = study_bench.task_data(scale.base, list(scale.extra))
    figures = study_bench.bench(models, int8, peer_folders, data, [batch], rounds, n)
    update_results(results_path, "_bench", figures)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rows", nargs="*", help="substrings of row names to run (default: all)")
    ap.add_argument("--runs", type=Path, help="run folders (default: runs/study-<scale>)")
    ap.add_argument("--results", type=Path, help="results file (default: benchmarks/study/results-<scale>.json)")
    ap.add_argument("--bench", action="store_true", help="measure every finished row's CPU throughput")
    ap.add_argument("--table", action="store_true", help="print the Markdown table of stored results")
    ap.add_argument("--plot", type=Path, help="draw the figures into this folder")
    args = ap.parse_args()
    runs = (args.runs or ROOT / f"runs/study-{args.scale}").resolve()
    results_path = args.results or ROOT / f"benchmarks/study/results-{args.scale}.json"
    from study_report import peer_table, plot, table  # beside this file

    if not (args.bench or args.table or args.plot):
        run_rows(args, runs, results_path)
    if args.bench:
        run_bench(args, runs, results_path)
    if args.table or args.plot:
        stored = json.loads(results_path.read_text())
        order = [r.name for r in rows(args.scale, runs)]  # the study's order, whichever process ran a row
        stored = {k: stored[k] for k in sorted(stored, key=lambda k: order.index(k) if k in order else -1)}
        if args.table:
            print(table(stored))
            print()
            print(peer_table(stored))
        if args.plot:
            plot(stored, args.plot)


if __name__ == "__main__":
    main()
