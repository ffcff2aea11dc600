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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # peers.py, study_bench.py, study_report.py
from peers import NAMES as PEER_NAMES
from peers import PeerGrid
from study_bench import NEEDS, gpu_checks, missing_piece  # noqa: F401 (NEEDS: the pieces rows may need)

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("rt_polarity", "snli")
VECTORS = {"glove-6b-50d": "GloVe 50-d", "spacy-en-md": "spaCy 300-d", "teacher": "teacher WordPiece",
           "teacher-static": "teacher static (model2vec-distilled)"}


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
    teacher_label: str = "MiniLM-L6"
    only: tuple[str, ...] = ()  # keep only rows whose names start with one of these (empty: every row)
    drop: tuple[str, ...] = ()  # and drop rows whose names contain one of these
    static: tuple[str, ...] = ()  # every static student row
    lstm: tuple[str, ...] = ()  # every LSTM student row: its type, vectors, learning rate (when the base's differ)
    small: tuple[str, ...] = ()  # the small BiLSTM rows' budget (scales without one leave those rows out)
    peer_grid: PeerGrid = field(default_factory=PeerGrid)
    bench: tuple[int, int, int] = (32, 5, 256)  # batch size, rounds, dev examples per task


TF = ("distill.train.lr=1e-4", "distill.train.batch_size=32")
# the static student as chosen on the demo's dev split (RESULTS.md, "The demo's student"): its vectors
# from the run's teacher, learned token weights (dev above mean pooling), learning rate 1e-2 (dev 70.0
# against 69.7 at 3e-3)
STATIC = ("student.type=static", "student.embeddings=teacher-static", "student.pooling=weighted",
          "distill.train.lr=1e-2")
# Tang's BiLSTM made small enough to serve at >= 10,000 ex/s on one thread (GloVe-50d, 48 units a
# direction): hidden 128 measured 9,600-10,700 ex/s on rt_polarity, 96 10,800-12,600 (RESULTS.md,
# "A small BiLSTM"); between 64 and 96 dev chose 96
SMALL = ("student.type=bilstm", "student.embeddings=glove-6b-50d", "student.pooling=mean", "student.hidden_size=96",
         "distill.train.lr=1e-3")
SMALL_ROWS = "small BiLSTM"  # a fragment of the names of those rows
# every small-BiLSTM row trains the same number of steps (the multi-task one and each single-task one);
# fine-tuning continues each task of the multi-task one at the same learning rate
SMALL_BUDGET = ("distill.train.max_steps=12000", "distill.train.eval_every=1000", "finetune.train.lr=1e-3",
                "finetune.train.batch_size=50", "finetune.train.max_steps=3000", "finetune.train.eval_every=500",
                "finetune.train.warmup_ratio=0")
TINY_GRID = PeerGrid(fasttext={"epoch": [2], "lr": [0.1, 0.3], "dim": [16]},
                     model2vec={"learning_rate": [3e-3], "max_epochs": [1], "batch_size": [16]})
TINY_SIZES = ("tasks.rt_polarity.max_train=48", "tasks.rt_polarity.max_dev=16", "tasks.rt_polarity.max_test=16",
              "tasks.snli.max_train=48", "tasks.snli.max_dev=16", "tasks.snli.max_test=16",
              "teacher.max_length=32", "teacher.train.batch_size=8", "transfer.augment.n_iter=1",
              "student.max_length=32", "distill.train.batch_size=8", "transfer.label_batch_size=16",
              "tasks.rt_polarity.unlabelled_train=16", "tasks.snli.unlabelled_train=16")
GPU_PRECISION = ("teacher.train.mixed_precision=bf16", "distill.train.mixed_precision=bf16",
                 "finetune.train.mixed_precision=bf16")
GPU: dict = {
    "teacher": ("teacher.train.epochs=1", "teacher.train.batch_size=64", "teacher.train.lr=5e-5",
                "teacher.train.eval_every=400", "teacher.train.patience=null"),  # the whole epoch, best on dev
    "student": ("distill.train.max_steps=2000", "distill.train.batch_size=256", "distill.train.eval_every=500"),
    "static": ("distill.train.max_steps=2000", "distill.train.batch_size=256", "distill.train.eval_every=500"),
    "transformer": ("distill.train.lr=1e-4", "distill.train.batch_size=128", "distill.train.max_steps=1500",
                    "distill.train.eval_every=500"),
    "finetune": ("finetune.train.max_steps=300", "finetune.train.batch_size=256", "finetune.train.eval_every=100"),
    "bench": (32, 3, 128),
    "teacher_label": "MPNet-base",
    # the paper's comparison (MKD against Tang), each family's MKD row and the peers; fine-tuning and the
    # static single-task rows are left to the CPU scales (they would not fit in 8 minutes)
    "only": ("Teacher", "Tang", "MKD-LSTM (", "MKD-Static (", "MKD-Transformer (", "fastText", "model2vec"),
    "drop": ("only)",),
    "extra": ("teacher.model=mpnet-base", "teacher.max_length=64", "student.max_length=64",
              "transfer.augment.n_iter=2", "transfer.label_batch_size=1024", *GPU_PRECISION),
}
SCALES = {
    # the packaged demo recipe: 2,000 labelled training examples per task and more of the training split
    # unlabelled (6,000 rt, 20,000 snli) in the transfer set; its static student; the LSTM rows on GloVe-50d
    # (hidden 150), 2 epochs of the transfer set like the static ones; the Transformer 1 epoch
    "demo": Scale("demo", transformer=(*TF, "distill.train.epochs=1"), longer=("distill.train.epochs=4",),
                  lstm=("student.type=bilstm_attn", "student.embeddings=glove-6b-50d", "student.pooling=mean",
                       "distill.train.lr=1e-3")),
    # all the data, with a CPU budget: teachers one full epoch of all the data, students limited to
    # 1,500 steps of 50 over the full transfer set (static students 3,000: a step costs far less);
    # the two slowest student rows get 2 seeds, ablations 1 (2 CPU cores, one session)
    "full": Scale(
        "full", teacher=("teacher.train.epochs=1", "teacher.train.eval_every=500", "teacher.train.patience=null"),
        static=("distill.train.max_steps=3000", "distill.train.eval_every=500"),
        student=("distill.train.max_steps=1500", "distill.train.eval_every=500"),
        transformer=(*TF, "distill.train.max_steps=1000", "distill.train.eval_every=500"),
        finetune=("finetune.train.max_steps=300", "finetune.train.eval_every=100"),
        longer=("distill.train.max_steps=3000", "distill.train.eval_every=500"), ablation_seeds=1,
        row_seeds={"bilstm_attn single": 2, "MKD-Transformer": 2}),
    # all the data with one augmented copy per example (n_iter 1), so that the transfer set (about 207k
    # examples) is labelled in minutes on 2 cores: the rows that answer the user's decision (the teacher
    # fp32 and int8, MKD-Static and MKD-LSTM, Tang's BiLSTM, the peers) in about an hour
    "full-core": Scale(
        "full", teacher=("teacher.train.epochs=1", "teacher.train.eval_every=1000", "teacher.train.patience=null"),
        static=("distill.train.max_steps=8000", "distill.train.eval_every=1000"),
        student=("distill.train.max_steps=1500", "distill.train.eval_every=500"),
        finetune=("finetune.train.max_steps=300", "finetune.train.eval_every=100"),
        extra=("transfer.augment.n_iter=1",),
        small=SMALL_BUDGET,
        only=("Teacher MiniLM-L6 (multi-task)", "MKD-Static", "MKD-LSTM (", "MKD-LSTM, small", "Tang", "More rt text",
              "fastText", "model2vec")),
    # a smoke test of the whole study on the real assets (tests/test_study.py)
    "tiny": Scale(
        "demo", teacher_steps={"mkd": 2, "teacher-rt_polarity": 2, "teacher-snli": 2},
        drop=("More rt text",),  # a variant of MKD-Static's recipe: the valid-recipe test covers it (full-core)
        student=("distill.train.max_steps=3",), transformer=("distill.train.max_steps=2", "distill.train.batch_size=8"),
        finetune=("finetune.train.max_steps=2",), longer=("distill.train.max_steps=4",),
        lstm=("student.type=bilstm_attn", "student.embeddings=glove-6b-50d", "student.pooling=mean",
              "distill.train.lr=1e-3"),
        extra=("tasks.rt_polarity.max_train=48", "tasks.rt_polarity.max_dev=16", "tasks.rt_polarity.max_test=16",
               "tasks.snli.max_train=48", "tasks.snli.max_dev=16", "tasks.snli.max_test=16",
               "tasks.rt_polarity.unlabelled_train=16", "tasks.snli.unlabelled_train=16",
               "teacher.max_length=32", "teacher.train.batch_size=8", "teacher.train.epochs=1",
               "transfer.augment.n_iter=1", "student.hidden_size=8", "student.max_length=32",
               "distill.train.batch_size=8", "bench.rounds=1", "bench.examples=8", "bench.batch_sizes=[1,4]"),
        static=("distill.train.max_steps=3",), peer_grid=TINY_GRID, bench=(4, 1, 8)),
    # one H200, under 8 minutes: the MPNet-base teacher (the paper's BERT-base setting), one epoch of
    # all the data of both tasks, its whole transfer set (every training example, augmented 2x: n_iter
    # 2) labelled once; bf16 everywhere; students step-limited with large batches; no ablations
    "gpu": Scale("full", **GPU),
    # the gpu scale's rows, steps and precision at tiny sizes on CPU with MiniLM-L6 (tests/test_study.py),
    # so that the gpu command runs the first time it meets a GPU
    "gpu-tiny": Scale("full", **{
        **GPU, "teacher": ("teacher.train.epochs=1", "teacher.train.max_steps=2"),
        "student": ("distill.train.max_steps=3",), "static": ("distill.train.max_steps=3",),
        "transformer": ("distill.train.max_steps=2",), "finetune": ("finetune.train.max_steps=2",),
        "teacher_label": "MiniLM-L6", "peer_grid": TINY_GRID, "bench": (4, 1, 8),
        "extra": (*GPU_PRECISION, *TINY_SIZES, "student.hidden_size=8", "student.embeddings=glove-6b-50d")}),
}


@dataclass
class Row:
    name: str
    run: str  # run folder name (rows with the same run share teacher/transfer)
    stages: tuple[str, ...]  # mkd stages; or ("peer",) / ("int8",), which the study runs itself
    sets: tuple[str, ...] = ()
    folder: str = "student"  # model folder inside the run
    seeded: bool = True  # students: repeated over seeds
    kind: str = "student"  # teacher | student | ablation | peer
    extra: dict = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # pieces of mkd (NEEDS) or peer wheels the row cannot run without


def missing(row: Row) -> str | None:
    """Why the row cannot run in this checkout, or None."""
    return missing_piece(row.needs)


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
    mkd_student = (*teach_from, *s.lstm, *s.student)
    static = (*teach_from, *s.static, *STATIC)
    small = (*teach_from, *SMALL, *s.small)
    small_recipe = load_recipe(s.base, [*s.extra, *s.small])
    small_total = len(TASKS) * (small_recipe.distill.train.max_steps or 0)  # what the Tang rows spend together
    small_all_in = small_total - len(TASKS) * (small_recipe.finetune.train.max_steps or 0)  # fine-tuning included
    tl = s.teacher_label

    def teacher(run: str) -> tuple[str, ...]:
        steps = s.teacher_steps.get(run)
        return (*s.teacher, *((f"teacher.train.max_steps={steps}",) if steps else ()))

    out = [Row(f"Teacher {tl} (multi-task)", "mkd", ("teach",), teacher("mkd"), "teacher", False, "teacher"),
           Row(f"Teacher {tl} (multi-task), ONNX int8", "mkd", ("int8",), teacher("mkd"), "teacher-int8", False,
               "teacher", extra={"of": "teacher"})]
    for t in TASKS:
        out.append(Row(f"Teacher {tl} ({t} only)", f"teacher-{t}", ("teach",),
                       (*_single(t, s), *teacher(f"teacher-{t}")), "teacher", False, "teacher"))
    for t in TASKS:
        single = (*_single(t, s), f"transfer.teachers.{t}={mt_teacher}", *s.lstm, *s.student)
        single_static = (*_single(t, s), f"transfer.teachers.{t}={mt_teacher}", *s.static, *STATIC)
        # gold labels only: no augmented copies, no unlabelled text (it has no gold label), trained
        no_kd = ("transfer.augment.enabled=false", "distill.alpha=1.0", f"tasks.{t}.unlabelled_train=null",
                 "distill.train.epochs=20")  # to a dev plateau (patience): 2 epochs of 2,000 would be unfair
        out += [
            Row(f"BiLSTM, no distillation ({t})", f"nodistill-{t}", ("augment", "label", "distill"),
                (*single, *no_kd, "student.type=bilstm"), "bilstm"),
            Row(f"Tang: BiLSTM single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"),
                (*single, "student.type=bilstm"), "bilstm"),
            Row(f"bilstm_attn single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"), single, "attn"),
            Row(f"Tang: {SMALL_ROWS} single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"),
                (*_single(t, s), f"transfer.teachers.{t}={mt_teacher}", *SMALL, *s.small), "bilstm-small"),
            Row(f"Static, no distillation ({t})", f"nodistill-{t}", ("augment", "label", "distill"),
                (*single_static, *no_kd), "static", needs=("static",)),
            Row(f"Static single-task KD ({t})", f"single-{t}", ("augment", "label", "distill"), single_static,
                "static", needs=("static",)),
        ]
    tf = (*teach_from, *s.transformer, "student.type=transformer", "student.pooling=mean",
          "student.init_from=minilm-l6", "student.init_layers=3")
    out += [
        Row("MKD-LSTM (bilstm_attn, multi-task)", "mkd", ("augment", "label", "distill"), mkd_student, "mkd-lstm"),
        Row("MKD-LSTM + fine-tuning", "mkd", ("finetune",), (*mkd_student, *s.finetune), "mkd-lstm",
            extra={"finetuned": True}),
        *_small_rows(small, small_total, small_all_in),
        Row("MKD-Static (multi-task)", "mkd", ("distill",), static, "mkd-static", needs=("static",)),
        Row("MKD-Static + fine-tuning", "mkd", ("finetune",), (*static, *s.finetune), "mkd-static",
            extra={"finetuned": True}, needs=("static",)),
        # rt_polarity has 10k training sentences: the static student's lever is more transfer text
        Row("More rt text: MKD-Static, 10 augmented copies of each rt_polarity example", "mkd-rt-aug10",
            ("augment", "label", "distill"), (*static, "tasks.rt_polarity.augment={p_mask: 0.1, p_pos: 0.1, "
                                              "p_ng: 0.25, n_iter: 10}"), "mkd-static", kind="ablation",
            needs=("static",)),
        Row("MKD-Transformer (3 layers of MiniLM-L6)", "mkd", ("distill",), tf, "mkd-tf"),
        Row("MKD-Transformer (3 layers of MiniLM-L6), ONNX int8", "mkd", ("int8",), tf, "mkd-tf-int8", False,
            extra={"of": "mkd-tf", "of_seeded": True}),
        Row("MKD-Transformer + fine-tuning", "mkd", ("finetune",), (*tf, *s.finetune, "finetune.train.lr=5e-5"),
            "mkd-tf",
            extra={"finetuned": True}),
        Row("Gap: MKD-LSTM, twice the distillation budget", "mkd", ("distill",), (*mkd_student, *s.longer),
            "mkd-lstm-longer", kind="ablation"),
        Row("Ablation: KL with T^2 (T=2)", "mkd", ("distill",),
            (*mkd_student, "distill.loss=kl", "distill.temperature=2"), "mkd-lstm-kl", kind="ablation"),
        Row("Ablation: uniform task mixing", "mkd", ("distill",), (*mkd_student, "distill.train.mixing=uniform"),
            "mkd-lstm-uniform", kind="ablation"),
    ]
    base_vectors = load_recipe(s.base, [*s.extra, *s.lstm]).student.embeddings
    for name, label in VECTORS.items():
        if name != base_vectors:
            out.append(Row(f"Ablation: {label} vectors", "mkd", ("distill",),
                           (*mkd_student, f"student.embeddings={name}"), f"mkd-lstm-{name}", kind="ablation",
                           needs=("teacher-static",) if name == "teacher-static" else ()))
    out.append(Row("Ablation: no augmentation", "mkd-noaug", ("augment", "label", "distill"),
                   (*mkd_student, "transfer.augment.enabled=false"), "mkd-lstm", kind="ablation"))
    for peer, label in PEER_NAMES.items():
        for t in TASKS:
            out.append(Row(f"{label} ({t})", f"peer-{peer}", ("peer",), _single(t, s), t, False, "peer",
                           extra={"peer": peer}, needs=(peer,)))
    if not s.small:
        out = [r for r in out if SMALL_ROWS not in r.name]
    if s.only:
        out = [r for r in out if r.name.startswith(s.only)]
    return [r for r in out if not any(d in r.name for d in s.drop)]


def _small_rows(sets: tuple[str, ...], total: int, all_in: int) -> list[Row]:
    """The multi-task small BiLSTM, each budget as a distillation row and its fine-tuning row: the
    single-task rows' own steps; what the Tang rows spend together (all on distillation, or with the
    fine-tuning steps counted in it); and half again that total (what more budget buys)."""
    budgets = [("", None, "mkd-lstm-small", ""),
               (", the Tang rows' total steps", total, "mkd-lstm-small-total", ""),
               (f", {total * 3 // 2:,} steps", total * 3 // 2, "mkd-lstm-small-longest", ""),
               (f", {all_in:,} steps", all_in, "mkd-lstm-small-all-in", ": the Tang rows' total steps in all")]
    out = []
    for label, steps, folder, tuned_note in budgets:
        budget_sets = (*sets, *((f"distill.train.max_steps={steps}",) if steps else ()))
        out += [Row(f"MKD-LSTM, {SMALL_ROWS}{label} (multi-task)", "mkd", ("distill",), budget_sets, folder),
                Row(f"MKD-LSTM, {SMALL_ROWS}{label} + fine-tuning{tuned_note}", "mkd", ("finetune",), budget_sets,
                    folder, extra={"finetuned": True})]
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
