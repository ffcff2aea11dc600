"""Labelling benchmarks (prints figures; not a test).

(a) `mkd label`'s throughput (read shard, tokenize, batch, forward, write logits) against the bare
    teacher forward pass on the very same batches; goal: at least 0.9 of it.
(b) length-bucketed dynamic padding against padding every batch to max_length.
(c) memory while writing and labelling a synthetic set of 1,000,000 short examples with a tiny fake
    teacher: RSS must stay flat (shards are streamed).

    python benchmarks/label_throughput.py --part a b --n 1000
    python benchmarks/label_throughput.py --part c --synthetic 1000000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mkd.config import TaskConfig
from mkd.data.batch import EncodedSplit
from mkd.data.transfer import ShardWriter, label_task, load_transfer, write_manifest
from mkd.models.base import MkdModel
from mkd.models.loading import load_model
from mkd.tasks import load_task
from mkd.tasks.task import Example, TaskSpec

TASKS = ("rt_polarity", "snli")


def rss_mb() -> float:
    """Current resident set size (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def teacher(n_tasks: tuple[str, ...]) -> tuple[MkdModel, str]:
    folder = Path("runs/demo/teacher")
    if (folder / "model.safetensors").is_file():
        return load_model(folder, tasks=list(n_tasks)), str(folder)
    from mkd.models.teacher import TeacherModel
    from mkd.tasks.catalog import CATALOG

    model = TeacherModel.from_pretrained("minilm-l6", {t: CATALOG[t] for t in n_tasks}, max_length=64)
    return model.eval(), "minilm-l6 asset with fresh heads"


def real_examples(task: str, n: int) -> list[Example]:
    return load_task(TaskConfig(name=task, max_train=n), seed=13).split("train")


def bare_forward(model: MkdModel, task: str, data: EncodedSplit, batches: list[list[int]]) -> float:
    """Seconds of the forward passes alone, on batches collated beforehand."""
    ready = [data.collate(b) for b in batches]
    with torch.inference_mode():
        start = time.perf_counter()
        for batch in ready:
            model(task, batch)
        return time.perf_counter() - start


def part_a(model: MkdModel, args: argparse.Namespace) -> None:
    print(f"(a) labelling vs bare forward, batch size {args.batch_size}, {torch.get_num_threads()} threads")
    for task in TASKS:
        spec = model.specs[task]
        examples = real_examples(task, args.n)
        with tempfile.TemporaryDirectory() as tmp:
            writer = ShardWriter(Path(tmp), args.shard_size)
            for e in examples:
                writer.add(e, "original")
            write_manifest(Path(tmp), spec, "bench", writer)
            data = model.encode(spec, examples)
            batches = data.eval_batches(args.batch_size)
            labelled, bare = [], []
            for r in range(args.repeats):  # interleaved, best of: the machine is shared
                start = time.perf_counter()
                label_task(model, task, Path(tmp), f"bench{r}", args.batch_size)
                labelled.append(time.perf_counter() - start)
                bare.append(bare_forward(model, task, data, batches))
            got, targets = load_transfer(Path(tmp))
            assert len(got) == len(examples) == len(targets)
        n = len(examples)
        ratio = min(bare) / min(labelled)
        print(f"  {task:12s} {n} examples: label {n / min(labelled):7.1f} ex/s, bare forward "
              f"{n / min(bare):7.1f} ex/s, ratio {ratio:.2f} {'(>= 0.9: ok)' if ratio >= 0.9 else '(< 0.9)'}")


def fixed_batches(data: EncodedSplit, batch_size: int, width: int) -> list[dict[str, torch.Tensor]]:
    """Batches in data order, every one padded to `width` (what a naive labeller does)."""
    out = []
    for i in range(0, len(data), batch_size):
        batch = data.collate(list(range(i, min(i + batch_size, len(data)))))
        for key, value in list(batch.items()):
            if value.dim() == 2 and value.shape[1] < width:
                pad = data.pad_values.get(key, 0) if not key.startswith("attention_mask") else 0
                batch[key] = nn.functional.pad(value, (0, width - value.shape[1]), value=pad)
        out.append(batch)
    return out


def part_b(model: MkdModel, args: argparse.Namespace) -> None:
    width = getattr(model, "max_length", 128)
    print(f"(b) length bucketing vs padding to max_length={width}, batch size {args.batch_size}")
    for task in TASKS:
        examples = real_examples(task, args.n)
        data = model.encode(model.specs[task], examples)
        n = len(examples)
        sorted_b = data.eval_batches(args.batch_size)
        plain_b = [list(range(i, min(i + args.batch_size, n))) for i in range(0, n, args.batch_size)]
        fixed = fixed_batches(data, args.batch_size, width)
        times = {"bucketed": [], "dynamic, unsorted": [], "fixed max_length": []}
        for _ in range(args.repeats):
            times["bucketed"].append(bare_forward(model, task, data, sorted_b))
            times["dynamic, unsorted"].append(bare_forward(model, task, data, plain_b))
            with torch.inference_mode():
                start = time.perf_counter()
                for batch in fixed:
                    model(task, batch)
                times["fixed max_length"].append(time.perf_counter() - start)
        mean_len = float(np.mean(data.lengths))
        tokens = {"bucketed": sum(len(b) * max(data.lengths[i] for i in b) for b in sorted_b),
                  "dynamic, unsorted": sum(len(b) * max(data.lengths[i] for i in b) for b in plain_b),
                  "fixed max_length": n * width}
        cells = ", ".join(f"{k} {n / min(v):7.1f} ex/s ({tokens[k] / (n * mean_len):.2f}x tokens)"
                          for k, v in times.items())
        print(f"  {task:12s} mean length {mean_len:.1f}: {cells}; bucketed speed-up over fixed "
              f"{min(times['fixed max_length']) / min(times['bucketed']):.2f}x")


class TinyFake(MkdModel):
    """A tiny teacher for the memory test: hashed words -> mean embedding -> one linear layer."""

    arch = "bench-fake"

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__()
        self.specs = {spec.name: spec}
        self.emb = nn.EmbeddingBag(1024, 16, mode="mean", padding_idx=0)
        self.out = nn.Linear(16, spec.num_outputs)

    def encode(self, spec, examples, targets=None):  # type: ignore[no-untyped-def]
        ids = [[1 + hash(w) % 1023 for w in e.texts[0].split()] for e in examples]
        return EncodedSplit(spec.name, spec.type, [e.id for e in examples], {"input_ids": ids}, {"input_ids": 0})

    def forward(self, task, batch):  # type: ignore[no-untyped-def]
        return self.out(self.emb(batch["input_ids"]))


def part_c(args: argparse.Namespace) -> None:
    n = args.synthetic
    marks = {m for m in (100_000, 500_000, 1_000_000, n) if m <= n}
    spec = TaskSpec("synthetic", ("text",), "classification", ("a", "b"))
    words = ["good", "bad", "movie", "plot", "the", "a", "very", "not", "actor", "scene"]
    rng = np.random.default_rng(0)
    print(f"(c) memory, {n} synthetic examples, shards of {args.shard_size} "
          f"(RSS before: {rss_mb():.0f} MB, peak {peak_mb():.0f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writer = ShardWriter(folder, args.shard_size)
        start = time.perf_counter()
        for i in range(n):
            k = rng.integers(3, 10)
            text = " ".join(words[j] for j in rng.integers(0, len(words), size=k))
            writer.add(Example(f"s:{i}", (text,), int(k % 2)), "original")
            if i + 1 in marks:
                print(f"  written {i + 1:>9,}: RSS {rss_mb():6.0f} MB, peak {peak_mb():6.0f} MB, "
                      f"{time.perf_counter() - start:5.1f}s")
        manifest = write_manifest(folder, spec, "bench", writer)
        model = TinyFake(spec).eval()
        done = [0]
        start = time.perf_counter()

        def report(task: str, index: int) -> None:
            done[0] += manifest["shards"][index]["rows"]
            if done[0] in marks:
                print(f"  labelled {done[0]:>8,}: RSS {rss_mb():6.0f} MB, peak {peak_mb():6.0f} MB, "
                      f"{time.perf_counter() - start:5.1f}s")

        label_task(model, "synthetic", folder, "bench", args.batch_size * 4, on_shard=report)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"  on disk: {len(manifest['shards'])} example shards + logits, {size:.0f} MB")
        start = time.perf_counter()
        examples, _targets = load_transfer(folder)  # what distillation holds in memory (grows, by design)
        print(f"  load_transfer (id join) of {len(examples):,}: {time.perf_counter() - start:.1f}s, "
              f"RSS {rss_mb():.0f} MB with the set loaded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    parser.add_argument("--n", type=int, default=1000, help="real examples per task for (a) and (b)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="examples for (c)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if {"a", "b"} & set(args.part):
        model, where = teacher(TASKS)
        print(f"teacher: {where}")
        if "a" in args.part:
            part_a(model, args)
        if "b" in args.part:
            part_b(model, args)
    if "c" in args.part:
        part_c(args)


if __name__ == "__main__":
    main()
