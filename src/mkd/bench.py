"""CPU serving speed of the teacher and the students, measured the same way in one process.

Every model is measured on every serving path (PATHS): PyTorch fp32, PyTorch at the run's precision
(bf16 autocast where the CPU has fast bf16), ONNX Runtime fp32 and int8 (the model's own export when
it still matches the weights, else one made for the benchmark, with the same gates), and numpy for
the static student (mkd.serving.fast_bench). Tokenization is included (a served model gets raw text;
ONNX Runtime and numpy tokenize with tokie where it gives the `tokenizers` ids on these texts). Paths
and models are interleaved, round after round, with threads pinned (bench.threads, for PyTorch and
ONNX Runtime alike), each turn time-boxed (mkd.serving.timing); each figure is the median over
rounds, with its spread (min, quartiles, max), and the p50/p99 latency of single calls. Figures are
reused, not re-measured, for a model whose weights and bench settings are unchanged (`fingerprint`):
identical models are measured once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from mkd.models.base import MkdModel, load_model
from mkd.tasks.task import Example, TaskSpec

Runner = Callable[[Sequence[Example]], object]
"""Scores one batch of raw examples, tokenization included."""
ORT = "onnxruntime"
PATHS = ("torch_fp32", "torch_precision", "onnx_fp32", "onnx_int8", "numpy")
CACHE = "cache.json"


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def default_precision(setting: str = "auto") -> str:
    """The PyTorch precision a recipe's `precision` setting serves at on this CPU (mkd.precision)."""
    from mkd.precision import resolve

    return resolve(setting, "cpu")


def torch_runner(model: MkdModel, spec: TaskSpec, precision: str = "fp32") -> Runner:
    from mkd.precision import autocast

    model.eval()

    @torch.inference_mode()
    def run(part: Sequence[Example]) -> object:
        with autocast(precision, "cpu"):
            return model(spec.name, model.encode(spec, part).collate(range(len(part))))

    return run


def onnx_runner(served: Any, spec: TaskSpec) -> Runner:
    """An mkd.serve.OnnxModel: tokenizer.json + ONNX Runtime, as a server runs it."""
    width = len(spec.text_fields)

    def run(part: Sequence[Example]) -> object:
        return served.logits(spec.name, [[e.texts[i] for e in part] for i in range(width)], batch_size=len(part))

    return run


@contextlib.contextmanager
def pinned(threads: int) -> Iterator[None]:
    """`threads` for PyTorch, and for numpy's BLAS (threadpoolctl); one thread also turns off the
    `tokenizers` thread pool (TOKENIZERS_PARALLELISM, read at each call): every path on the same threads."""
    from threadpoolctl import threadpool_limits

    before, env = torch.get_num_threads(), os.environ.get("TOKENIZERS_PARALLELISM")
    torch.set_num_threads(threads)
    if threads == 1:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = env


def measure(runners: dict[str, Runner], examples: Sequence[Example], batch_sizes: Sequence[int] = (1, 32),
            rounds: int = 5, budget_s: float | None = None) -> dict[str, dict]:
    """{runner: {"batch_<b>": figure}}: interleaved, time-boxed rounds (mkd.serving.timing)."""
    from mkd.serving import timing

    return timing.measure(runners, examples, batch_sizes, rounds, timing.BUDGET_S if budget_s is None else budget_s)


# ---- ONNX graphs -----------------------------------------------------------------------------------
def onnx_export_for(folder: Path, scratch: Path, examples: dict[str, list[Example]],
                    model: MkdModel | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder's own ONNX export when it was made from these weights, else a fresh one made once with
    an int8 graph whose agreement is recorded per task; "int8" lists the tasks where it passes the
    export's gate, "int8_error" says why not for the others."""
    from mkd.export import export_onnx, weights_digest
    from mkd.serve import read_manifest
    from mkd.serving.fast_bench import int8_tasks

    saved = folder / "onnx"
    with contextlib.suppress(Exception):
        doc = read_manifest(saved)
        if doc.get("weights_sha256") == weights_digest(folder):
            return saved, {"graph": str(saved / doc["graph"]), "int8": int8_tasks(doc)[0]}
    doc = export_onnx(folder, scratch, examples, quantize="int8", int8_agreement=0.0, model=model)
    ok, why = int8_tasks(doc)
    return scratch, {"graph": "exported for the benchmark", "int8": ok, **({"int8_error": why} if why else {})}


def bench_folders(folders: dict[str, Path], spec_task: str, examples: Sequence[Example],
                  batch_sizes: Sequence[int] = (1, 32), rounds: int = 5, onnx: bool = True,
                  threads: int = 1, precision: str | None = None,
                  cache: dict[str, Any] | None = None, budget_s: float | None = None,
                  shared: Any = None) -> dict[str, dict]:
    """Measure model folders on one task's texts, every path interleaved. Per model: the PATHS figures
    under "paths", torch fp32 at the top level and ONNX fp32 under "onnxruntime" (as before), parameters
    and the fingerprint. `cache` ({fingerprint: figures}) supplies figures of unchanged models and
    receives the new ones; models with the same fingerprint are measured once. `shared`
    (mkd.serving.fast_bench.Shared): models and ONNX exports reused across a stage's tasks."""
    from mkd.errors import MkdError
    from mkd.export import weights_digest
    from mkd.serve import OnnxModel
    from mkd.serving.fast_bench import NUMPY, numpy_runner, texts_of
    from mkd.serving.fast_tokens import tokie_version
    from mkd.serving.timing import BUDGET_S
    from mkd.stages.common import say

    precision = precision or default_precision()
    cache = cache if cache is not None else {}
    budget_s = BUDGET_S if budget_s is None else budget_s
    settings = {"task": spec_task, "batch_sizes": list(batch_sizes), "rounds": rounds, "examples": len(examples),
                "threads": threads, "precision": precision, "onnx": onnx, "torch": torch.__version__,
                "budget_s": budget_s, "tokie": tokie_version(),
                "texts": hashlib.sha256(json.dumps([e.texts for e in examples]).encode()).hexdigest()}
    key = json.dumps(settings, sort_keys=True)
    prints = {n: hashlib.sha256((weights_digest(f) + key).encode()).hexdigest()[:20] for n, f in folders.items()}
    todo: dict[str, str] = {}  # fingerprint -> the model measured for it
    for name, fp in prints.items():
        if fp not in cache and fp not in todo:
            todo[fp] = name
    models = {name: shared.model(folders[name], spec_task) if shared else load_model(folders[name], tasks=[spec_task])
              for name in todo.values()}
    result: dict[str, dict] = {}
    for name, model in models.items() if shared and onnx else ():  # exports gate on the process's threads
        with contextlib.suppress(MkdError, ImportError, RuntimeError, ValueError):  # reported below
            shared.graph(folders[name], name, model)
    with tempfile.TemporaryDirectory(prefix="mkd-bench-") as scratch, pinned(threads):
        runners: dict[str, Runner] = {}
        graphs: dict[str, dict[str, Any]] = {}
        fast: dict[str, dict[str, Any]] = {}
        for name, model in models.items():
            spec = model.specs[spec_task]
            runners[f"{name}@torch_fp32"] = torch_runner(model, spec)
            if precision != "fp32":
                runners[f"{name}@torch_precision"] = torch_runner(model, spec, precision)
            run, fast[name] = numpy_runner(model, spec, examples)
            if run is not None:
                runners[f"{name}@{NUMPY}"] = run
            elif fast[name].get("error"):
                say(f"bench: no numpy figure for {name} on {spec_task}: {fast[name]['error']}")
            if not onnx:
                continue
            try:
                out, graphs[name] = (shared.graph(folders[name], name, model) if shared else
                                     onnx_export_for(folders[name], Path(scratch) / name, {spec_task: list(examples)},
                                                     model))
                why = graphs[name].pop("int8_error", {}).get(spec_task)
                graphs[name].update({"int8_error": why} if why else {})
                for q in ("fp32", "int8") if spec_task in graphs[name].pop("int8") else ("fp32",):
                    served = OnnxModel(out, q, threads, check_texts=texts_of(examples))
                    runners[f"{name}@onnx_{q}"] = onnx_runner(served, spec)
                graphs[name]["tokenizer"] = served.fast_info.get("tokenizer")
            except (MkdError, ImportError, RuntimeError, ValueError) as e:
                graphs[name] = {"error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}
                say(f"bench: no ONNX Runtime figure for {name} on {spec_task}: {graphs[name]['error']}")
        measured = measure(runners, examples, batch_sizes, rounds, budget_s) if runners else {}
    for fp, name in todo.items():
        paths = {p: measured[f"{name}@{p}"] for p in PATHS if f"{name}@{p}" in measured}
        if precision == "fp32":
            paths["torch_precision"] = paths["torch_fp32"]
        cache[fp] = {"paths": paths, "precision": precision, "threads": threads, "onnx": graphs.get(name, {}),
                     "numpy": fast.get(name, {}),
                     "parameters": models[name].count_parameters(), "measured_at": time.time()}
    for name, fp in prints.items():
        entry = cache[fp]
        best = best_path(entry["paths"], max(batch_sizes))
        result[name] = {**entry["paths"].get("torch_fp32", {}), "threads": entry["threads"],
                        "precision": entry["precision"], "paths": entry["paths"], "best_path": best,
                        "parameters": entry["parameters"], "fingerprint": fp,
                        "reused": name not in todo.values()}
        if onnx:
            result[name][ORT] = {**entry["paths"].get("onnx_fp32", {}), **entry["onnx"]}
        if entry.get("numpy"):
            result[name][NUMPY] = entry["numpy"]  # its tokenizer and gates (or why it has no figure)
    return result


def best_path(paths: dict[str, Any], batch_size: int) -> str | None:
    """The serving path with the most examples/s at `batch_size`."""
    speeds = {p: f.get(f"batch_{batch_size}", {}).get("examples_per_s") for p, f in paths.items()}
    speeds = {p: s for p, s in speeds.items() if s}
    return max(speeds, key=lambda p: speeds[p]) if speeds else None


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
    threads = getattr(cfg, "threads", 1)
    per_model: dict[str, dict[str, Any]] = {n: {} for n in names}
    for task, users in task_of.items():
        recipe = recipes[users[0]]
        data = load_task(recipe.task(task), recipe.seed, recipe.fetch_missing)
        texts = data.split("dev")[:examples]
        measured = bench_folders({n: names[n] for n in users}, task, texts, batch_sizes, rounds, threads=threads,
                                 precision=default_precision(recipe.precision), budget_s=cfg.budget_s)
        for n in users:
            per_model[n][task] = measured[n]
    for name, folder in names.items():
        write_json(folder / "bench.json", {"machine": machine(), "batch_sizes": batch_sizes, "rounds": rounds,
                                           "examples": examples, "threads": threads, "tasks": per_model[name]})
    return batch_sizes, per_model


def mean_speed(figures: dict[str, Any], batch_size: int, runtime: str = "torch") -> float | None:
    """Examples/s at `batch_size`, averaged over the tasks of one model's figures; runtime "torch",
    ORT (ONNX fp32), a PATHS name, or "best" (each task's fastest path)."""
    key = f"batch_{batch_size}"

    def pick(f: dict[str, Any]) -> dict[str, Any]:
        if runtime == ORT:
            return f.get(ORT, {})
        if runtime == "best":
            return f.get("paths", {}).get(best_path(f.get("paths", {}), batch_size) or "", {})
        if runtime in PATHS:
            return f.get("paths", {}).get(runtime, {})
        return f

    vals = [pick(f).get(key, {}).get("examples_per_s") for f in figures.values()]
    vals = [v for v in vals if v]
    return round(sum(vals) / len(vals), 1) if vals else None
