"""The study: MKD's claims on real data, side by side (`make study`, or `python benchmarks/study/study.py`).

Every row is plain `mkd` commands on a recipe derived from a packaged one (`demo` or `full`) by
`--set` overrides, so each number can be reproduced by hand (the log holds every command). Rows
share what they can: one multi-task teacher labels every transfer set; students with the same
tasks and augmentation share one run folder and differ by `student.folder`; a run whose transfer
set would be identical to another run's gets it by hard links (the stages still check its
fingerprint). A finished row is not recomputed (each stage skips itself when unchanged), so the
study resumes where it stopped, and several study processes may run side by side (`--rows`).

`--bench` then measures every row's model in one `mkd bench --model ...` call (interleaved, so
all rows are measured under the same conditions); `--table` prints the Markdown table and `--plot`
draws the figures. Results go to benchmarks/study/results-<scale>.json.
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("rt_polarity", "snli")
VECTORS = {"glove-6b-50d": "GloVe 50-d", "spacy-en-md": "spaCy 300-d", "teacher": "teacher WordPiece"}


@dataclass(frozen=True)
class Scale:
    """What a scale adds to the packaged recipe it starts from: its compute budget, as overrides."""

    base: str
    teacher: tuple[str, ...] = ()  # teacher rows
    teacher_steps: dict[str, int] = field(default_factory=dict)  # run -> teacher.train.max_steps
    student: tuple[str, ...] = ()  # every LSTM student row
    transformer: tuple[str, ...] = ()
    finetune: tuple[str, ...] = ()
    longer: tuple[str, ...] = ()  # the gap row: twice the distillation budget
    ablation_seeds: int | None = None  # ablation rows run only the first n seeds (None: all)
    row_seeds: dict[str, int] = field(default_factory=dict)  # row-name prefix -> only the first n seeds
    extra: tuple[str, ...] = ()  # every row (the tiny scale's sizes)


TF = ("distill.train.lr=1e-4", "distill.train.batch_size=32")
SCALES = {
    # 2,000 training examples per task (the packaged demo recipe), GloVe-50d, hidden 150
    "demo": Scale("demo", transformer=(*TF, "distill.train.epochs=2"), longer=("distill.train.epochs=8",)),
    # all the data, with a CPU budget: step-limited teachers (equal batches per task: 1,000 multi-task
    # = about 100 rt + 900 snli), students limited to 1,500 steps of 50 over the full transfer set;
    # the two slowest student rows get 2 seeds, ablations 1 (2 CPU cores, one session)
    "full": Scale(
        "full", teacher=("teacher.train.epochs=1", "teacher.train.eval_every=500"),
        teacher_steps={"mkd": 1000, "teacher-rt_polarity": 100, "teacher-snli": 900},
        student=("distill.train.max_steps=1500", "distill.train.eval_every=500"),
        transformer=(*TF, "distill.train.max_steps=1000", "distill.train.eval_every=500"),
        finetune=("finetune.train.max_steps=300", "finetune.train.eval_every=100"),
        longer=("distill.train.max_steps=3000", "distill.train.eval_every=500"), ablation_seeds=1,
        row_seeds={"bilstm_attn single": 2, "MKD-Transformer": 2}),
    # a smoke test of the whole study on the real assets (tests/test_study.py)
    "tiny": Scale(
        "demo", teacher_steps={"mkd": 2, "teacher-rt_polarity": 2, "teacher-snli": 2},
        student=("distill.train.max_steps=3",), transformer=("distill.train.max_steps=2", "distill.train.batch_size=8"),
        finetune=("finetune.train.max_steps=2",), longer=("distill.train.max_steps=4",),
        extra=("tasks.rt_polarity.max_train=48", "tasks.rt_polarity.max_dev=16", "tasks.rt_polarity.max_test=16",
               "tasks.snli.max_train=48", "tasks.snli.max_dev=16", "tasks.snli.max_test=16",
               "teacher.max_length=32", "teacher.train.batch_size=8", "teacher.train.epochs=1",
               "transfer.augment.n_iter=1", "student.hidden_size=8", "student.max_length=32",
               "distill.train.batch_size=8", "bench.rounds=1", "bench.examples=8", "bench.batch_sizes=[1,4]")),
}


@dataclass
class Row:
    name: str
    run: str  # run folder name (rows with the same run share teacher/transfer)
    stages: tuple[str, ...]
    sets: tuple[str, ...] = ()
    folder: str = "student"  # model folder inside the run
    seeded: bool = True  # students: repeated over seeds
    kind: str = "student"  # teacher | student | ablation
    extra: dict = field(default_factory=dict)


def _short(path: Path) -> Path:
    """Paths under the repository relative to it (mkd runs there), so recipes do not depend on where
    the checkout lives."""
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _single(task: str, scale: Scale) -> tuple[str, ...]:
    """Keep only `task`, with the scale's settings for it (its sizes stay those of the scale)."""
    from mkd.config import load_recipe

    entry = load_recipe(scale.base, list(scale.extra)).task(task).model_dump(exclude_defaults=True)
    return (f"tasks=[{json.dumps(entry)}]",)


def rows(scale: str, runs: Path | None = None) -> list[Row]:
    """Every row of the study, as data."""
    from mkd.config import load_recipe

    s = SCALES[scale]
    runs = runs or ROOT / f"runs/study-{scale}"
    mt_teacher = _short(runs / "mkd" / "teacher")
    teach_from = tuple(f"transfer.teachers.{t}={mt_teacher}" for t in TASKS)
    mkd_student = (*teach_from, *s.student)

    def teacher(run: str) -> tuple[str, ...]:
        steps = s.teacher_steps.get(run)
        return (*s.teacher, *((f"teacher.train.max_steps={steps}",) if steps else ()))

    out = [Row("Teacher MiniLM-L6 (multi-task)", "mkd", ("teach",), teacher("mkd"), "teacher", False, "teacher")]
    for t in TASKS:
        out.append(Row(f"Teacher MiniLM-L6 ({t} only)", f"teacher-{t}", ("teach",),
                       (*_single(t, s), *teacher(f"teacher-{t}")), "teacher", False, "teacher"))
    for t in TASKS:
        single = (*_single(t, s), f"transfer.teachers.{t}={mt_teacher}", *s.student)
        out += [
            Row(f"BiLSTM, no distillation ({t})", f"nodistill-{t}", ("augment", "label", "distill"),
                (*single, "transfer.augment.enabled=false", "distill.alpha=1.0", "student.type=bilstm"), "bilstm"),
            Row(f"Tang: BiLSTM single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"),
                (*single, "student.type=bilstm"), "bilstm"),
            Row(f"bilstm_attn single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"), single, "attn"),
        ]
    out += [
        Row("MKD-LSTM (bilstm_attn, multi-task)", "mkd", ("augment", "label", "distill"), mkd_student, "mkd-lstm"),
        Row("MKD-LSTM + fine-tuning", "mkd", ("finetune",), (*mkd_student, *s.finetune), "mkd-lstm",
            extra={"finetuned": True}),
        Row("MKD-Transformer (3 layers of MiniLM-L6)", "mkd", ("distill",),
            (*teach_from, *s.transformer, "student.type=transformer", "student.init_from=minilm-l6",
             "student.init_layers=3"), "mkd-tf"),
        Row("Gap: MKD-LSTM, twice the distillation budget", "mkd", ("distill",), (*mkd_student, *s.longer),
            "mkd-lstm-longer", kind="ablation"),
        Row("Ablation: KL with T^2 (T=2)", "mkd", ("distill",),
            (*mkd_student, "distill.loss=kl", "distill.temperature=2"), "mkd-lstm-kl", kind="ablation"),
        Row("Ablation: uniform task mixing", "mkd", ("distill",), (*mkd_student, "distill.train.mixing=uniform"),
            "mkd-lstm-uniform", kind="ablation"),
    ]
    base_vectors = load_recipe(s.base).student.embeddings
    for name, label in VECTORS.items():
        if name != base_vectors:
            out.append(Row(f"Ablation: {label} vectors", "mkd", ("distill",),
                           (*mkd_student, f"student.embeddings={name}"), f"mkd-lstm-{name}", kind="ablation"))
    out.append(Row("Ablation: no augmentation", "mkd-noaug", ("augment", "label", "distill"),
                   (*mkd_student, "transfer.augment.enabled=false"), "mkd-lstm", kind="ablation"))
    return out


def row_sets(scale: str, runs: Path, row: Row, seed: int | None) -> list[str]:
    sets = [f"name={row.run}", f"output_dir={_short(runs)}", *SCALES[scale].extra, *row.sets]
    if row.seeded:
        folder = row.folder if seed is None else f"{row.folder}-s{seed}"
        sets += [f"student.folder={folder}"] + ([f"distill.seed={seed}"] if seed is not None else [])
    return sets


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
    """Read-modify-write under a lock, so study processes running side by side keep each other's rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.exists() else {}
        results[key] = value
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(path)


def run_rows(args: argparse.Namespace, runs: Path, results_path: Path) -> None:
    scale = SCALES[args.scale]
    log = runs / "study.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for row in rows(args.scale, runs):
        if args.rows and not any(s.lower() in row.name.lower() for s in args.rows):
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
            wall = sum(mkd(stage, scale.base, sets, log) for stage in row.stages)
            entry["seeds"][str(seed)] = {"models": collect(runs, row, seed), "wall_seconds": round(wall, 1)}
            print(f"study: {row.name} seed {seed}: done ({wall:.0f}s)", flush=True)
        update_results(results_path, row.name, entry)


def run_bench(args: argparse.Namespace, runs: Path, results_path: Path) -> None:
    """One `mkd bench --model ...` over the first seed's models of every finished row."""
    results = json.loads(results_path.read_text())
    folders = []
    for name, entry in results.items():
        if name.startswith("_"):
            continue
        first = next(iter(entry["seeds"].values()))
        folders += [runs.parent / m["path"] for m in first["models"]]
    folders = list(dict.fromkeys(folders))  # rows sharing a model (none today) are measured once
    cmd = [sys.executable, "-m", "mkd", "bench"] + [a for f in folders for a in ("--model", str(f))]
    with open(runs / "study.log", "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
    if subprocess.call(cmd, cwd=ROOT):
        raise SystemExit("study: mkd bench failed")
    bench = {}
    for folder in folders:
        figures = json.loads((folder / "bench.json").read_text())
        bench[str(folder.relative_to(runs.parent))] = figures
    update_results(results_path, "_bench", bench)


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
    sys.path.insert(0, str(Path(__file__).parent))
    from study_report import plot, table  # beside this file

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
        if args.plot:
            plot(stored, args.plot)


if __name__ == "__main__":
    main()
