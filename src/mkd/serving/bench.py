"""CPU serving speed of the teacher and the students, measured the same way in one process.

Every model is measured on every serving path (PATHS): PyTorch fp32, PyTorch at the run's precision
(bf16 autocast where the CPU has fast bf16), ONNX Runtime fp32 and int8 (the model's own export when
it still matches the weights, else one made for the benchmark, with the same gates), and numpy for
the static student (mkd.serving.fast_bench). Tokenization is included (a served model gets raw text;
ONNX Runtime and numpy tokenize with tokie where it gives the `tokenizers` ids on these texts). Paths
and models are interleaved, round after round, with threads pinned (bench.threads, for PyTorch, ONNX
Runtime and numpy alike), each turn time-boxed (mkd.serving.timing); each figure is the median over
rounds, with its spread (min, quartiles, max), and the p50/p99 latency of single calls. Each path is also
checked on the same texts (`checks`: its argmax agreement with PyTorch fp32 and its primary metric): a
path below the gate (GATE) does not count as the model's speed, and the int8 graph is gated on up to 1000
dev texts of the task, like `mkd export --quantize int8`. Figures are reused, not re-measured, for a
model whose weights and bench settings are unchanged (`fingerprint`): identical models are measured once.
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

from mkd.models.base import MkdModel
from mkd.models.loading import load_model
from mkd.tasks.task import Example, TaskSpec

Runner = Callable[[Sequence[Example]], object]
"""Scores one batch of raw examples, tokenization included."""
ORT = "onnxruntime"
PATHS = ("torch_fp32", "torch_precision", "onnx_fp32", "onnx_int8", "numpy")
CACHE = "cache.json"
GATE = 0.99  # least argmax agreement with PyTorch fp32 for a path to count (mkd export's int8 gate)
CHECKS = 1  # the version of `checks`: cached figures without it are measured again


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
    """An mkd.serving.runtime.OnnxModel: tokenizer.json + ONNX Runtime, as a server runs it."""
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


def path_checks(runners: dict[str, Runner], examples: Sequence[Example], spec: TaskSpec,
                batch_size: int, known: dict[str, Any] | None = None,
                known_on: Sequence[Example] = ()) -> dict[str, dict[str, Any]]:
    """Per runner ("<model>@<path>"): its primary metric on the examples and its argmax agreement with the
    same model's torch_fp32 runner; "passed" when it agrees on at least GATE of them (regression: always,
    as the export's own gates). `known` ({runner: logits of `known_on`}): what the ONNX export's gates
    computed with the same model and graphs, reused when the examples open `known_on` (the bench texts are
    the first dev texts, the gate's too), so the teacher is not scored on them twice."""
    import numpy as np

    from mkd.tasks.metrics import score

    n = len(examples)
    reuse = len(known_on) >= n and [e.texts for e in known_on[:n]] == [e.texts for e in examples]
    outputs = {}
    for name, run in runners.items():
        given = (known or {}).get(name)
        if reuse and given is not None and len(given) >= n:  # the gates score at most GATE_EXAMPLES texts
            outputs[name] = np.asarray(given[:n], np.float32)
            continue
        parts = [run(examples[i: i + batch_size]) for i in range(0, len(examples), batch_size)]
        outputs[name] = np.concatenate([np.asarray(p.float() if isinstance(p, torch.Tensor) else p, np.float32)
                                        for p in parts])
    labelled = [i for i, e in enumerate(examples) if e.label is not None]
    gold = [examples[i].label for i in labelled]
    out: dict[str, dict[str, Any]] = {}
    for name, got in outputs.items():
        check: dict[str, Any] = {"examples": len(examples), "passed": True}
        if labelled:
            check["score"] = round(float(score(spec.type, (spec.primary,), got[labelled], gold)[spec.primary]), 4)
        want = outputs[name.split("@")[0] + "@torch_fp32"]
        if spec.type == "classification":
            check["agreement"] = round(float((got.argmax(1) == want.argmax(1)).mean()), 4)
            check["passed"] = check["agreement"] >= GATE
        out[name] = check
    return out


# ---- measuring model folders ----------------------------------------------------------------------
def bench_folders(folders: dict[str, Path], spec_task: str, examples: Sequence[Example],
                  batch_sizes: Sequence[int] = (1, 32), rounds: int = 5, onnx: bool = True,
                  threads: int = 1, precision: str | None = None,
                  cache: dict[str, Any] | None = None, gate: Sequence[Example] | None = None,
                  budget_s: float | None = None, shared: Any = None,
                  baselines: dict[str, Path] | None = None) -> dict[str, dict]:
    """Measure model folders on one task's texts, every path interleaved. Per model: the PATHS figures
    under "paths", torch fp32 at the top level and ONNX fp32 under "onnxruntime" (as before), parameters
    and the fingerprint. `cache` ({fingerprint: figures}) supplies figures of unchanged models and
    receives the new ones; models with the same fingerprint are measured once. `gate`: the dev texts the
    int8 graph is gated on (default: `examples`); `checks` per path say which ones count. `shared`
    (mkd.serving.fast_bench.Shared): models and ONNX exports reused across a stage's tasks. `baselines`
    ({name: trained baseline folder}, mkd.baselines) are measured in the same rounds, on their one path
    (NATIVE), and have no gate: their own accuracy is what they offer."""
    from mkd.errors import MkdError
    from mkd.progress import say
    from mkd.serving.export import weights_digest
    from mkd.serving.fast_bench import GATE_LOGITS, NUMPY, numpy_runner, onnx_export_for, texts_of
    from mkd.serving.fast_tokens import tokie_version
    from mkd.serving.runtime import OnnxModel
    from mkd.serving.timing import BUDGET_S

    precision = precision or default_precision()
    cache = cache if cache is not None else {}
    budget_s = BUDGET_S if budget_s is None else budget_s
    settings = {"task": spec_task, "batch_sizes": list(batch_sizes), "rounds": rounds, "examples": len(examples),
                "threads": threads, "precision": precision, "onnx": onnx, "torch": torch.__version__, "checks": CHECKS,
                "budget_s": budget_s, "tokie": tokie_version(),
                "texts": hashlib.sha256(json.dumps([e.texts for e in examples]).encode()).hexdigest(),
                "gate": hashlib.sha256(json.dumps([e.texts for e in gate or ()]).encode()).hexdigest()}
    key = json.dumps(settings, sort_keys=True)
    prints = {n: hashlib.sha256((weights_digest(f) + key).encode()).hexdigest()[:20] for n, f in folders.items()}
    baselines = baselines or {}
    prints.update({n: baseline_print(f, key) for n, f in baselines.items()})
    todo: dict[str, str] = {}  # fingerprint -> the model measured for it
    for name, fp in prints.items():
        if fp not in cache and fp not in todo:
            todo[fp] = name
    models = {name: shared.model(folders[name], spec_task) if shared else load_model(folders[name], tasks=[spec_task])
              for name in todo.values() if name not in baselines}
    result: dict[str, dict] = {}
    for name, model in models.items() if shared and onnx else ():  # exports gate on the process's threads
        with contextlib.suppress(MkdError, ImportError, RuntimeError, ValueError):  # reported below
            shared.graph(folders[name], name, model)
    with tempfile.TemporaryDirectory(prefix="mkd-bench-") as scratch, pinned(threads):
        runners: dict[str, Runner] = {}
        graphs: dict[str, dict[str, Any]] = {}
        fast: dict[str, dict[str, Any]] = {}
        known: dict[str, Any] = {}  # the export gates' logits, per runner
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
                                     onnx_export_for(folders[name], Path(scratch) / name,
                                                     {spec_task: list(gate or examples)}, model))
                why = graphs[name].pop("int8_error", {}).get(spec_task)
                for path, logits in graphs[name].pop(GATE_LOGITS, {}).get(spec_task, {}).items():
                    known[f"{name}@{path}"] = logits
                graphs[name].update({"int8_error": why} if why else {})
                for q in ("fp32", "int8") if spec_task in graphs[name].pop("int8") else ("fp32",):
                    served = OnnxModel(out, q, threads, check_texts=texts_of(examples))
                    runners[f"{name}@onnx_{q}"] = onnx_runner(served, spec)
                graphs[name]["tokenizer"] = served.fast_info.get("tokenizer")
            except (MkdError, ImportError, RuntimeError, ValueError) as e:
                graphs[name] = {"error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}
                say(f"bench: no ONNX Runtime figure for {name} on {spec_task}: {graphs[name]['error']}")
        runners.update(baseline_runners({n: baselines[n] for n in todo.values() if n in baselines}))
        measured = measure(runners, examples, batch_sizes, rounds, budget_s) if runners else {}
        mine = {k: r for k, r in runners.items() if k.split("@")[0] not in baselines}
        checks = path_checks(mine, examples, models[next(iter(models))].specs[spec_task],
                             max(batch_sizes), known, list(gate or examples)) if mine else {}
    for fp, name in todo.items():
        if name in baselines:
            cache[fp] = baseline_entry(measured, name, threads)
            continue
        paths = {p: measured[f"{name}@{p}"] for p in PATHS if f"{name}@{p}" in measured}
        if precision == "fp32":
            paths["torch_precision"] = paths["torch_fp32"]
        passed = {p: checks[f"{name}@{p}"] for p in paths if f"{name}@{p}" in checks}
        if precision == "fp32":
            passed["torch_precision"] = passed["torch_fp32"]
        cache[fp] = {"paths": paths, "checks": passed, "precision": precision, "threads": threads,
                     "onnx": graphs.get(name, {}), "numpy": fast.get(name, {}),
                     "parameters": models[name].count_parameters(), "measured_at": time.time()}
    for name, fp in prints.items():
        entry = cache[fp]
        best = best_path(entry["paths"], max(batch_sizes), entry.get("checks"))
        top = entry["paths"].get("torch_fp32") or entry["paths"].get(NATIVE, {})
        result[name] = {**top, "threads": entry["threads"],
                        "precision": entry["precision"], "paths": entry["paths"], "best_path": best,
                        "checks": entry.get("checks", {}),
                        "parameters": entry["parameters"], "fingerprint": fp,
                        "reused": name not in todo.values()}
        if onnx and name not in baselines:
            result[name][ORT] = {**entry["paths"].get("onnx_fp32", {}), **entry["onnx"]}
        if entry.get("numpy"):
            result[name][NUMPY] = entry["numpy"]  # its tokenizer and gates (or why it has no figure)
    return result


# ---- baselines (mkd.baselines): one path, their library's own predictor ----------------------------
NATIVE = "native"


def baseline_print(folder: Path, key: str) -> str:
    """A trained baseline's bench fingerprint: its training key (data, grid, seed) and the bench settings."""
    from mkd.io import read_json

    trained = read_json(Path(folder) / "baseline.json").get("key", str(folder))
    return hashlib.sha256((f"baseline:{trained}" + key).encode()).hexdigest()[:20]


def baseline_runners(folders: dict[str, Path]) -> dict[str, Runner]:
    """Each baseline's predictor of raw examples (tokenization included), as `<name>@native`."""
    from mkd.baselines import load_baseline

    return {f"{name}@{NATIVE}": load_baseline(folder) for name, folder in folders.items()}


def baseline_entry(measured: dict[str, dict], name: str, threads: int) -> dict[str, Any]:
    return {"paths": {NATIVE: measured[f"{name}@{NATIVE}"]}, "precision": "fp32", "threads": threads, "onnx": {},
            "parameters": None, "kind": "baseline", "measured_at": time.time()}


def gate_texts(data: Any) -> list[Example]:
    """The dev texts the int8 graph is gated on, as `mkd export --quantize int8` gates it."""
    from mkd.serving.onnx_graph import GATE_EXAMPLES

    return data.split("dev")[:GATE_EXAMPLES]


def passed(checks: dict[str, Any] | None, path: str) -> bool:
    """Whether a path passed its gate (figures without checks, from before they existed: yes)."""
    return bool((checks or {}).get(path, {"passed": True}).get("passed", True))


def best_path(paths: dict[str, Any], batch_size: int, checks: dict[str, Any] | None = None) -> str | None:
    """The serving path with the most examples/s at `batch_size`, among those that passed their gate."""
    speeds = {p: f.get(f"batch_{batch_size}", {}).get("examples_per_s") for p, f in paths.items()
              if passed(checks, p)}
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
                                 precision=default_precision(recipe.precision), gate=gate_texts(data),
                                 budget_s=cfg.budget_s)
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
            return f.get("paths", {}).get(best_path(f.get("paths", {}), batch_size, f.get("checks")) or "", {})
        if runtime in PATHS:
            return f.get("paths", {}).get(runtime, {})
        return f

    vals = [pick(f).get(key, {}).get("examples_per_s") for f in figures.values()]
    vals = [v for v in vals if v]
    return round(sum(vals) / len(vals), 1) if vals else None
