"""CPU inference speed of the teacher and the students, measured the same way in one process.

Tokenization is included (a served model gets raw text). Models are measured interleaved, round
after round, and the median is reported, so that a noisy neighbour or a warm cache favours nobody.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from mkd.models.base import MkdModel, load_model
from mkd.tasks.task import Example, TaskSpec


@torch.inference_mode()
def _run_once(model: MkdModel, spec: TaskSpec, examples: Sequence[Example], batch_size: int) -> float:
    """Seconds to encode and score every example in batches of `batch_size` (input order)."""
    start = time.perf_counter()
    for i in range(0, len(examples), batch_size):
        part = examples[i : i + batch_size]
        data = model.encode(spec, part)
        batch = data.collate(range(len(part)))
        model(spec.name, batch)
    return time.perf_counter() - start


def measure(models: dict[str, MkdModel], spec: TaskSpec, examples: Sequence[Example],
            batch_sizes: Sequence[int] = (1, 32), rounds: int = 5) -> dict[str, dict]:
    """{model: {"batch_<b>": {"examples_per_s", "latency_ms"}}}: medians over interleaved rounds."""
    threads = torch.get_num_threads()
    times: dict[tuple[str, int], list[float]] = {}
    for model in models.values():  # warm-up
        model.eval()
        _run_once(model, spec, examples[: max(batch_sizes)], max(batch_sizes))
    for _ in range(rounds):
        for b in batch_sizes:
            for name, model in models.items():
                n = len(examples) if b > 1 else min(len(examples), 64)
                times.setdefault((name, b), []).append(_run_once(model, spec, examples[:n], b) / n)
    out: dict[str, dict] = {}
    for (name, b), per_example in times.items():
        sec = statistics.median(per_example)
        out.setdefault(name, {"threads": threads})[f"batch_{b}"] = {
            "examples_per_s": round(1.0 / sec, 1), "latency_ms": round(1000.0 * sec * b, 3)}
    return out


def bench_folders(folders: dict[str, Path], spec_task: str, examples: Sequence[Example],
                  batch_sizes: Sequence[int] = (1, 32), rounds: int = 5) -> dict[str, dict]:
    """Load every model folder and measure them on one task's texts; adds parameter counts."""
    models = {name: load_model(folder, tasks=[spec_task]) for name, folder in folders.items()}
    spec = next(iter(models.values())).specs[spec_task]
    result = measure(models, spec, examples, batch_sizes, rounds)
    for name, model in models.items():
        result[name]["parameters"] = model.count_parameters()
    return result
