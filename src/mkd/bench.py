"""CPU inference speed of the teacher and the students, measured the same way in one process.

Tokenization is included (a served model gets raw text). Models are measured interleaved, round
after round, and the median is reported, so that a noisy neighbour or a warm cache favours nobody.
Each model is measured in PyTorch and, from its ONNX graph (`<model>/onnx/<task>.onnx` when an export
exists and still matches, else one exported on the fly), in ONNX Runtime with as many threads.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mkd.models.base import MkdModel, load_model
from mkd.tasks.task import Example, TaskSpec

Runner = Callable[[Sequence[Example]], object]
"""Scores one batch of raw examples, tokenization included."""
ORT = "onnxruntime"


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def torch_runner(model: MkdModel, spec: TaskSpec) -> Runner:
    model.eval()

    @torch.inference_mode()
    def run(part: Sequence[Example]) -> object:
        return model(spec.name, model.encode(spec, part).collate(range(len(part))))

    return run


def onnx_runner(model: MkdModel, spec: TaskSpec, session: Any) -> Runner:
    names = [i.name for i in session.get_inputs()]

    def run(part: Sequence[Example]) -> object:
        batch = model.encode(spec, part).collate(range(len(part)))
        return session.run(None, {n: batch[n].numpy() for n in names})

    return run


def _run_once(run: Runner, examples: Sequence[Example], batch_size: int) -> float:
    """Seconds to encode and score every example in batches of `batch_size` (input order)."""
    start = time.perf_counter()
    for i in range(0, len(examples), batch_size):
        run(examples[i : i + batch_size])
    return time.perf_counter() - start


def measure(models: dict[str, MkdModel | Runner], spec: TaskSpec, examples: Sequence[Example],
            batch_sizes: Sequence[int] = (1, 32), rounds: int = 5) -> dict[str, dict]:
    """{model: {"batch_<b>": {"examples_per_s", "latency_ms"}}}: medians over interleaved rounds."""
    threads = torch.get_num_threads()
    runners = {n: torch_runner(m, spec) if isinstance(m, MkdModel) else m for n, m in models.items()}
    times: dict[tuple[str, int], list[float]] = {}
    for run in runners.values():  # warm-up
        _run_once(run, examples[: max(batch_sizes)], max(batch_sizes))
    for _ in range(rounds):
        for b in batch_sizes:
            for name, run in runners.items():
                n = len(examples) if b > 1 else min(len(examples), 64)
                times.setdefault((name, b), []).append(_run_once(run, examples[:n], b) / n)
    out: dict[str, dict] = {}
    for (name, b), per_example in times.items():
        sec = statistics.median(per_example)
        out.setdefault(name, {"threads": threads})[f"batch_{b}"] = {
            "examples_per_s": round(1.0 / sec, 1), "latency_ms": round(1000.0 * sec * b, 3)}
    return out


def onnx_graph(model: MkdModel, spec: TaskSpec, folder: Path, scratch: Path,
               examples: Sequence[Example]) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session of the task's graph: the folder's own export when it still matches the
    weights, else one exported into `scratch`; and what was used."""
    from mkd.export import TOLERANCE, TaskGraph, check_batches, export_task_onnx, onnx_diff, ort_session

    threads = torch.get_num_threads()
    saved = folder / "onnx" / f"{spec.name}.onnx"
    if saved.is_file():
        try:
            session = ort_session(saved, threads)
            batches = check_batches(model, spec, examples)
            diff = onnx_diff(session, TaskGraph(model, spec.name, list(batches[0])), batches)
            if diff <= TOLERANCE:
                return session, {"graph": str(saved), "max_abs_diff": diff}
        except Exception:  # a stale or damaged export: measure a fresh one instead
            pass
    scratch.mkdir(parents=True, exist_ok=True)
    info = export_task_onnx(model, spec, scratch / f"{spec.name}.onnx", examples)
    return ort_session(scratch / f"{spec.name}.onnx", threads), {"graph": "exported for the benchmark",
                                                                 "max_abs_diff": info["max_abs_diff"]}


def bench_folders(folders: dict[str, Path], spec_task: str, examples: Sequence[Example],
                  batch_sizes: Sequence[int] = (1, 32), rounds: int = 5, onnx: bool = True) -> dict[str, dict]:
    """Load every model folder and measure them on one task's texts; adds parameter counts and, under
    "onnxruntime", the same figures in ONNX Runtime (or the reason there are none)."""
    from mkd.errors import MkdError
    from mkd.stages.common import say

    models = {name: load_model(folder, tasks=[spec_task]) for name, folder in folders.items()}
    spec = next(iter(models.values())).specs[spec_task]
    runners: dict[str, MkdModel | Runner] = dict(models)
    graphs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mkd-bench-") as scratch:
        for name, model in models.items():
            if not onnx:
                break
            try:
                session, graphs[name] = onnx_graph(model, spec, folders[name], Path(scratch) / name, examples)
                runners[f"{name}@{ORT}"] = onnx_runner(model, spec, session)
            except (MkdError, ImportError, RuntimeError, ValueError) as e:
                graphs[name] = {"error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}
                say(f"bench: no ONNX Runtime figure for {name} on {spec_task}: {graphs[name]['error']}")
        measured = measure(runners, spec, examples, batch_sizes, rounds)
    result = {name: measured[name] for name in models}
    for name, model in models.items():
        result[name]["parameters"] = model.count_parameters()
        if name in graphs:
            result[name][ORT] = {**measured.get(f"{name}@{ORT}", {}), **graphs[name]}
    return result


def bench_models(folders: Sequence[Path], batch_sizes: Sequence[int] | None = None, rounds: int | None = None,
                 examples: int | None = None) -> tuple[list[int], dict[str, Any]]:
    """`mkd bench --model DIR ...`: measure given model folders (interleaved) on the dev texts of
    their tasks, read from each folder's own recipe.yaml; each folder gets its figures in bench.json.
    Returns the batch sizes and {model: {task: figures}}."""
    from mkd.config import load_recipe
    from mkd.errors import MkdError
    from mkd.io import write_json
    from mkd.models.base import read_meta
    from mkd.tasks import load_task

    folders = [Path(f) for f in folders]
    names = {f"{f.parent.name}/{f.name}" if f.parent.name else f.name: f for f in folders}
    if len(names) != len(folders):
        raise MkdError("the same model folder was given twice", "give each --model once")
    task_of: dict[str, list[str]] = {}
    recipes = {}
    for name, folder in names.items():
        meta = read_meta(folder)
        if not (folder / "recipe.yaml").is_file():
            raise MkdError(f"{folder} holds no recipe.yaml to find its data", "benchmark a folder made by mkd")
        recipes[name] = load_recipe(folder / "recipe.yaml")
        for t in meta["tasks"]:
            task_of.setdefault(t, []).append(name)
    cfg = next(iter(recipes.values())).bench
    batch_sizes = list(batch_sizes or cfg.batch_sizes)
    rounds = rounds or cfg.rounds
    examples = examples or cfg.examples
    per_model: dict[str, dict[str, Any]] = {n: {} for n in names}
    for task, users in task_of.items():
        recipe = recipes[users[0]]
        data = load_task(recipe.task(task), recipe.seed, recipe.fetch_missing)
        texts = data.split("dev")[:examples]
        measured = bench_folders({n: names[n] for n in users}, task, texts, batch_sizes, rounds)
        for n in users:
            per_model[n][task] = measured[n]
    for name, folder in names.items():
        write_json(folder / "bench.json", {"machine": machine(), "batch_sizes": batch_sizes, "rounds": rounds,
                                           "examples": examples, "tasks": per_model[name]})
    return batch_sizes, per_model


def mean_speed(figures: dict[str, Any], batch_size: int, runtime: str = "torch") -> float | None:
    """Examples/s at `batch_size`, averaged over the tasks of one model's figures."""
    key = f"batch_{batch_size}"
    vals = [(f.get(ORT, {}) if runtime == ORT else f).get(key, {}).get("examples_per_s") for f in figures.values()]
    vals = [v for v in vals if v]
    return round(sum(vals) / len(vals), 1) if vals else None
