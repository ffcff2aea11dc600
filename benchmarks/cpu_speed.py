"""Every stage at fp32 and at `auto` on this CPU, side by side in one run (prints figures; not a test).

Per stage, the same work is timed at fp32 and at what `mixed_precision: auto` resolves to here
(bf16 autocast on a CPU with AVX512-BF16 or AMX, else fp32), in interleaved rounds (the order
alternates every round), and the medians and their ratio are printed:

- teacher training: MiniLM-L6 (~/.cache/mkd/assets/minilm-l6), batch 32, max_length 40, on the
  demo's tasks (rt_polarity, snli): forward under the precision, fp32 loss, backward, clipping,
  AdamW, as in mkd.train.loop (without its evaluation and checkpoints);
- labelling: the teacher's forward passes over the examples in batches of 64 (mkd.data.evaluate.predict,
  what `mkd label` runs per shard);
- student training: the recipe student (`--student-type`, default the demo's bilstm_attn on
  glove-6b-50d, hidden 150) on distillation targets (MSE), batch 50, as the loop does; whatever
  that student type's code is today (e.g. a faster exact LSTM path) is what is measured.

Training batches are drawn as the loop draws them (mkd.data.sampler: length-bucketed within a task);
`--bucket 1` draws batches of random lengths instead. The students' "before" is the step before
issue 12 (packed sequences, fp32, unfused AdamW, torch's dropout) on the same weights and batches.

`--dev-scores` also runs the demo (teach, augment, label, distill; shortened with --dev-steps) once
at fp32 and once at auto and prints both dev macro scores (minutes to hours: a flag); with
`--dev-seeds N` the student is distilled N times (distill.seed 1..N) on each precision's transfer
set, and the mean difference is printed beside each seed's (a student's seed-to-seed spread is
larger than the 0.5-point band, so one seed cannot show it).

    python benchmarks/cpu_speed.py --threads 1 --rounds 5
    python benchmarks/cpu_speed.py --parts student --student-hidden 300
    python benchmarks/cpu_speed.py --parts --dev-scores --dev-steps 300
    python benchmarks/cpu_speed.py --parts --dev-scores --dev-seeds 4 --dev-out /tmp/devs
    python benchmarks/cpu_speed.py --parts --dev-scores --dev-steps 20 --dev-set tasks.snli.max_train=200 \
        --dev-set tasks.rt_polarity.max_train=200 --dev-set transfer.augment.n_iter=1   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mkd.config import StudentConfig, TaskConfig, load_recipe
from mkd.data.batch import EncodedSplit
from mkd.data.evaluate import predict
from mkd.data.sampler import MultiTaskSampler
from mkd.models.base import MkdModel
from mkd.precision import autocast, cpu_flags, resolve
from mkd.tasks import load_task
from mkd.train.losses import distillation_loss, gold_loss

TASKS = ("rt_polarity", "snli")
STAGES = ("teacher", "label", "student")


def examples(n: int) -> dict:
    """The first n training examples of each demo task (real data, from the fetched assets)."""
    return {t: load_task(TaskConfig(name=t, max_train=n), seed=13) for t in TASKS}


def batches(data: dict[str, EncodedSplit], size: int, count: int, seed: int = 0,
            bucket: int = 50) -> list[tuple[str, dict]]:
    """`count` full batches as the training loop draws them (mkd.data.sampler: random, length-bucketed
    within a task; `bucket=1`: random lengths), tasks alternating, collated once (so tokenization is
    not timed)."""
    sampler = MultiTaskSampler({t: d.lengths for t, d in data.items()}, size, seed=seed, bucket=bucket)
    rng = np.random.default_rng(seed)
    streams = {t: [b for b in sampler.task_batches(t, rng) if len(b) == size] for t in TASKS}
    tasks = [TASKS[i % len(TASKS)] for i in range(count)]
    return [(t, data[t].collate(streams[t][i // len(TASKS)])) for i, t in enumerate(tasks)]


def train_steps(model: MkdModel, loss_fn: Callable, ready: list[tuple[str, dict]], precision: str,
                lr: float, fused: bool = True) -> Callable[[], int]:
    """A function running one training step per ready batch (the loop's arithmetic: fused AdamW, as
    mkd.train.loop; `fused=False` is the optimizer before it); returns examples."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, fused=fused)
    model.train()

    def run() -> int:
        n = 0
        for task, batch in ready:
            with autocast(precision, "cpu"):
                outputs = model(task, batch)
            loss = loss_fn(model.specs[task], outputs.float(), batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            n += len(batch["index"])
        return n

    return run


def interleaved(runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Median examples/s of each run over `rounds` rounds; one untimed warm-up each; order alternates."""
    for run in runs.values():
        run()
    speeds: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            n = runs[name]()
            speeds[name].append(n / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in speeds.items()}


def teacher_model(max_length: int) -> MkdModel:
    from mkd.models.teacher import TeacherModel
    from mkd.tasks.catalog import CATALOG

    torch.manual_seed(0)
    return TeacherModel.from_pretrained("minilm-l6", {t: CATALOG[t] for t in TASKS}, max_length=max_length)


def fresh_copies(make: Callable[[], MkdModel], precisions: list[str]) -> dict[str, MkdModel]:
    """One model per precision, with the same initial weights (each trains on its own)."""
    first = make()
    out = {precisions[0]: first}
    for p in precisions[1:]:
        twin = make()
        twin.load_state_dict(first.state_dict())
        out[p] = twin
    return out


def bench_teacher(args: argparse.Namespace, data: dict, precisions: list[str]) -> dict[str, float]:
    models = fresh_copies(lambda: teacher_model(args.teacher_length), precisions)
    encoded = {t: models[precisions[0]].encode(d.spec, d.split("train")) for t, d in data.items()}
    ready = batches(encoded, 32, args.teacher_steps, bucket=args.bucket)
    return interleaved({p: train_steps(models[p], gold_loss, ready, p, 5e-5) for p in precisions}, args.rounds)


def bench_label(args: argparse.Namespace, data: dict, precisions: list[str]) -> dict[str, float]:
    model = teacher_model(args.label_length).eval()
    encoded = {t: model.encode(d.spec, d.split("train")[: args.label_examples]) for t, d in data.items()}

    def labeller(p: str) -> Callable[[], int]:
        def run() -> int:
            for task, split in encoded.items():
                predict(model, task, split, 64, "cpu", p)
            return sum(len(s) for s in encoded.values())
        return run

    return interleaved({p: labeller(p) for p in precisions}, args.rounds)


def bench_student(args: argparse.Namespace, data: dict, precisions: list[str]) -> dict[str, float]:
    from mkd.models.students import build_student

    cfg = StudentConfig(type=args.student_type, embeddings=args.student_embeddings, hidden_size=args.student_hidden,
                        embedding_dim=300 if args.student_embeddings == "random" else None)  # vectors bring theirs
    specs = {t: d.spec for t, d in data.items()}
    texts = [text for d in data.values() for ex in d.split("train") for text in ex.texts]

    def make() -> MkdModel:
        torch.manual_seed(0)
        return build_student(cfg, specs, texts, None, fetch_missing=False)

    models = fresh_copies(make, precisions)
    rng = np.random.default_rng(1)
    encoded = {}
    for t, d in data.items():
        split = d.split("train")
        targets = rng.normal(size=(len(split), d.spec.num_outputs)).astype(np.float32)
        encoded[t] = models[precisions[0]].encode(d.spec, split, targets)
    ready = batches(encoded, 50, args.student_steps, bucket=args.bucket)
    loss = distillation_loss("mse", 1.0, 0.0)
    runs = {p: train_steps(models[p], loss, ready, p, 1e-3) for p in precisions}
    baseline = make()  # before issue 12: packed sequences at fp32, unfused AdamW, the same weights
    baseline.load_state_dict(models[precisions[0]].state_dict())
    runs[PACKED] = packed(train_steps(baseline, loss, ready, "fp32", 1e-3, fused=False))
    return interleaved(runs, args.rounds)


PACKED = "packed fp32"


def packed(run: Callable[[], int]) -> Callable[[], int]:
    """`run` on the LSTM students' path before issue 12 while it runs: packed sequences and torch's own
    dropout (one Bernoulli draw per element) instead of mkd.models.dropout's mask."""
    import mkd.models.dropout as fast
    import mkd.models.students.bilstm as bilstm
    import mkd.models.students.bilstm_attn as bilstm_attn
    import mkd.models.students.wordlevel as wordlevel

    def wrapped() -> int:
        saved = bilstm.run_lstm, bilstm_attn.run_lstm, fast.dropout, wordlevel.dropout
        bilstm.run_lstm = bilstm_attn.run_lstm = wordlevel.packed_lstm
        fast.dropout = wordlevel.dropout = torch.nn.functional.dropout
        try:
            return run()
        finally:
            bilstm.run_lstm, bilstm_attn.run_lstm, fast.dropout, wordlevel.dropout = saved

    return wrapped


def dev_scores(args: argparse.Namespace) -> None:
    """The demo, shortened, once at fp32 and once at auto: dev macro of teacher and student."""
    from mkd.io import read_json
    from mkd.stages.augment import augment
    from mkd.stages.distill import distill
    from mkd.stages.label import label
    from mkd.stages.teach import teach

    out = Path(args.dev_out or tempfile.mkdtemp(prefix="cpu-speed-"))
    scores = {}
    for setting in ("no", "auto"):
        steps = [f"teacher.train.max_steps={args.dev_steps}", f"distill.train.max_steps={args.dev_steps}"]
        recipe = load_recipe(None, [f"name=cpu-speed-{setting}", f"output_dir={out}", f"precision={setting}",
                                    f"teacher.train.mixed_precision={setting}",
                                    f"distill.train.mixed_precision={setting}", *(steps if args.dev_steps else []),
                                    *args.dev_set])
        started = time.perf_counter()
        teacher = teach(recipe)
        augment(recipe)
        label(recipe)
        folders = {"teacher": teacher, "student": distill(recipe)}
        for seed in range(1, args.dev_seeds + 1):
            folders[f"student seed {seed}"] = distill(recipe.model_copy(update={
                "distill": recipe.distill.model_copy(update={"seed": seed}),
                "student": recipe.student.model_copy(update={"folder": f"student-s{seed}"})}))
        scores[setting] = {name: (read_json(folder / "metrics.json")["splits"]["dev"]["macro"],
                                  read_json(folder / "stage.json").get("precision", "?"))
                           for name, folder in folders.items()}
        scores[setting]["seconds"] = time.perf_counter() - started
    print(f"\ndev macro, demo recipe{f', max_steps {args.dev_steps}' if args.dev_steps else ''} (runs in {out}):")
    diffs = []
    for name in (n for n in scores["no"] if n != "seconds"):
        (a, pa), (b, pb) = scores["no"][name], scores["auto"][name]
        diffs += [b - a] if name.startswith("student") else []
        print(f"  {name:15s} fp32 {a:6.2f} ({pa})   auto {b:6.2f} ({pb})   auto - fp32 {b - a:+.2f} points")
    if diffs:
        print(f"  student over {len(diffs)} seeds (the recipe's and 1..N): auto - fp32 mean "
              f"{statistics.mean(diffs):+.2f} points (spread {min(diffs):+.2f} .. {max(diffs):+.2f})")
    print(f"  wall     fp32 {scores['no']['seconds']:.0f}s   auto {scores['auto']['seconds']:.0f}s")


TARGETS = {"teacher": 2.0, "label": 2.5, "student": 1.8}
RUNNERS = {"teacher": bench_teacher, "label": bench_label, "student": bench_student}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="*", default=list(STAGES), choices=STAGES)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=512, help="training examples read per task")
    ap.add_argument("--teacher-steps", type=int, default=4, help="teacher batches per round")
    ap.add_argument("--teacher-length", type=int, default=40)
    ap.add_argument("--label-examples", type=int, default=256, help="examples labelled per task per round")
    ap.add_argument("--label-length", type=int, default=64, help="the demo teacher's max_length")
    ap.add_argument("--bucket", type=int, default=50,
                    help="training batches drawn as the loop's sampler does (length-bucketed in chunks of this many "
                         "batches); 1: batches of random lengths, which the loop never draws")
    ap.add_argument("--student-steps", type=int, default=10, help="student batches per round")
    ap.add_argument("--student-type", default="bilstm_attn")
    ap.add_argument("--student-embeddings", default="glove-6b-50d")
    ap.add_argument("--student-hidden", type=int, default=150)
    ap.add_argument("--dev-scores", action="store_true", help="also train the demo at fp32 and auto (long)")
    ap.add_argument("--dev-steps", type=int, default=None, help="max_steps of teacher and student for --dev-scores")
    ap.add_argument("--dev-seeds", type=int, default=0, help="--dev-scores: also distil the student with seeds 1..N")
    ap.add_argument("--dev-out", default=None, help="folder of the --dev-scores runs (default: a temporary one)")
    ap.add_argument("--dev-set", action="append", default=[], metavar="KEY=VALUE",
                    help="more --set overrides of the demo recipe for --dev-scores (repeatable)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    auto = resolve("auto", "cpu")
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); bf16 flags: {', '.join(flags) or 'none'}; "
          f"auto -> {auto}; {args.rounds} interleaved rounds, medians")
    precisions = ["fp32", auto] if auto != "fp32" else ["fp32"]
    data = examples(args.n) if args.parts else {}
    if args.parts:
        print(f"{'stage':10s} {'fp32 ex/s':>10s} {f'auto ({auto}) ex/s':>18s} {'ratio':>7s} {'target':>7s}")
    for part in args.parts:
        speed = RUNNERS[part](args, data, precisions)
        fast = speed[precisions[-1]]
        target = f"{TARGETS[part]:6.1f}x" if PACKED not in speed else f"{'-':>7s}"  # students: over PACKED
        print(f"{part:10s} {speed['fp32']:10.1f} {fast:18.1f} {fast / speed['fp32']:6.2f}x {target}", flush=True)
        if PACKED in speed:  # the baseline for students: today's fp32 packed path
            print(f"{'':10s} before: {PACKED} {speed[PACKED]:.1f} ex/s; auto over it "
                  f"{fast / speed[PACKED]:.2f}x (target {TARGETS[part]:.1f}x), fp32 padded over it "
                  f"{speed['fp32'] / speed[PACKED]:.2f}x", flush=True)
    if args.dev_scores:
        dev_scores(args)


if __name__ == "__main__":
    main()
