"""The study's rows and scales, as data: what each row trains (its `mkd` stages and `--set` overrides)
and what each scale adds to the packaged recipe it starts from (study.py runs them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from peers import NAMES as PEER_NAMES
from peers import PeerGrid
from study_bench import missing_piece

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
