"""The study's rows that are not `mkd` stages, and its one interleaved speed bench.

- peer rows: fastText and model2vec trained on the mkd rows' own splits (peers.py);
- int8 rows: the teacher's task graphs exported to ONNX and dynamically quantized to int8 by ONNX
  Runtime, scored on dev and test with that same int8 session (quantization moves the accuracy);
- the bench: for each task, every row's model (PyTorch, and ONNX Runtime fp32 for mkd folders), the
  int8 graphs and the peers' adaptors are measured by `mkd.serving.bench.measure`, interleaved round by
  round, one thread, tokenization included, on the task's dev texts.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mkd.tasks.task import Example, TaskData


def _has_student(name: str) -> bool:
    from mkd.models.students import student_names

    return name in student_names()


def _has_vectors(name: str) -> bool:
    from mkd.errors import MkdError
    from mkd.models.students.embeddings import check_source

    try:
        check_source(name)
    except MkdError:
        return False
    return True


NEEDS = {  # piece -> (is it in this checkout?, what is missing)
    "static": (lambda: _has_student("static"), "`student.type: static` (branch students)"),
    "teacher-static": (lambda: _has_vectors("teacher-static"),
                       "`student.embeddings: teacher-static` (branch students)"),
}


def missing_piece(needs: Sequence[str]) -> str | None:
    """Why a row needing these pieces (NEEDS, or a peer's name: its wheel) cannot run here, or None."""
    import peers

    for piece in needs:
        if piece in peers.PEERS:
            why = peers.missing_wheel(piece)
            if why:
                return why
        elif not NEEDS[piece][0]():
            return f"needs {NEEDS[piece][1]}, which this checkout lacks"
    return None


def gpu_checks(scale: str) -> None:
    """The gpu scale needs a GPU (on CPU it would take hours: use gpu-tiny), and its bf16 LSTM path
    must work there; checked in a second, before any work."""
    if not scale.startswith("gpu"):
        return
    if scale == "gpu" and not torch.cuda.is_available():
        raise SystemExit("study: --scale gpu needs a CUDA GPU (none is visible); on CPU run --scale gpu-tiny")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    why = preflight(device)
    if why:
        raise SystemExit(f"study: the students' LSTM fails under bf16 autocast on {device} ({why}); run the "
                         "students in fp32: drop distill/finetune mixed_precision=bf16 from GPU_PRECISION "
                         "in study_rows.py")
    print(f"study: bf16 LSTM path works on {device}", flush=True)


def peer_row(peer: str, base: str, sets: Sequence[str], run: Path, folder: str, grid: Any) -> list[dict]:
    """A peer row: model2vec's vectors distilled once per run folder (from the MiniLM-L6 asset), then
    the peer trained with the recipe's seed."""
    from mkd.assets import asset_path, cache_dir
    from mkd.config import load_recipe

    vectors = None
    if peer == "model2vec":
        from peers import model2vec_vectors

        # the vectors depend on the (immutable) asset only: distilled once per machine, kept beside it
        cache = cache_dir() / "study"
        vectors = model2vec_vectors(asset_path("minilm-l6", True), cache / "model2vec-minilm-l6-pca256")
    return run_peer(peer, base, sets, run / folder, grid, load_recipe(base, list(sets)).seed, vectors)


def task_data(base: str, sets: Sequence[str]) -> dict[str, TaskData]:
    """The recipe's tasks exactly as the mkd rows load them (mkd's own task API)."""
    from mkd.config import load_recipe
    from mkd.tasks import load_recipe_tasks

    return load_recipe_tasks(load_recipe(base, list(sets)))


def _metrics(task: str, score: float) -> dict:
    return {"tasks": {task: {"accuracy": round(score, 2)}}}


def run_peer(peer: str, base: str, sets: Sequence[str], folder: Path, grid: Any, seed: int,
             vectors: Path | None) -> list[dict]:
    """Train (or keep) the peer on each task of the recipe, in `folder`'s sibling named after the task
    (runs/<run>/<task>); the results in `collect`'s format (paths relative to the runs' parent)."""
    import peers

    out = []
    for task, data in task_data(base, sets).items():
        extra = {"vectors": str(vectors)} if peer == "model2vec" else None
        target = folder.parent / task
        res = peers.train_peer(peer, data, target, grid, seed, extra)
        out.append({"path": str(target.relative_to(folder.parents[2])), "test": _metrics(task, res["test"]),
                    "dev": _metrics(task, res["dev"]), "parameters": _peer_parameters(peer, target),
                    "train_seconds": res["train_seconds"], "chosen": res["chosen"], "peer": peer, "task": task})
    return out


def _peer_parameters(peer: str, folder: Path) -> dict[str, int]:
    """Weights of the peer (its token table counted apart, like mkd's `without_embeddings`)."""
    if peer == "fasttext":
        import fasttext

        m = fasttext.load_model(str(folder / "model.bin"))
        table, head = m.get_input_matrix().size, m.get_output_matrix().size
    else:
        from model2vec.inference import StaticModelPipeline

        pipe = StaticModelPipeline.from_pretrained(str(folder / "model"))
        table = int(pipe.model.embedding.size)
        head = sum(int(getattr(layer, w).size) for layer in getattr(pipe.head, "layers", [])
                   for w in ("weight", "bias") if hasattr(layer, w))
    return {"total": int(table + head), "without_embeddings": int(head)}


def quantize_int8(teacher: Path, out: Path) -> list[dict]:
    """The teacher as one int8 ONNX graph (`mkd export --quantize int8`, behind its fidelity gate),
    scored on dev and test by ONNX Runtime with that graph: a row per task."""
    from mkd.config import load_recipe
    from mkd.models.base import read_meta
    from mkd.serving.export import export_onnx
    from mkd.serving.runtime import OnnxModel
    from mkd.tasks import load_task

    recipe = load_recipe(teacher / "recipe.yaml")
    graph = out / "onnx"
    if not (graph / "export.json").is_file():
        started = time.time()
        # the row measures the int8 model's own accuracy, so the gate only records the agreement here
        export_onnx(teacher, graph, quantize="int8", int8_agreement=0.0)
        (out / "export_seconds.txt").write_text(f"{time.time() - started:.1f}\n")
    served = OnnxModel(graph, "int8", threads=torch.get_num_threads())
    found = []
    for task in read_meta(teacher)["tasks"]:
        done = out / f"{task}.json"
        if not done.is_file():
            data = load_task(recipe.task(task), recipe.seed, recipe.fetch_missing)
            scores = {s: _accuracy(int8_runner(served, data.spec), data.split(s)) for s in ("dev", "test")}
            done.write_text(json.dumps(scores))
        scores = json.loads(done.read_text())
        agreement = served.doc["tasks"][task].get("int8", {}).get("argmax_agreement")
        found.append({"path": str((out / task).relative_to(out.parents[2])), "test": _metrics(task, scores["test"]),
                      "int8_dev_agreement": agreement,
                      "dev": _metrics(task, scores["dev"]), "parameters": read_meta(teacher)["parameters"],
                      "train_seconds": 0, "graph": str(graph.relative_to(out.parents[2])), "task": task})
    return found


def int8_runner(served: Any, spec: Any) -> Any:
    from mkd.serving.bench import onnx_runner

    return onnx_runner(served, spec)


def _accuracy(run: Any, examples: Sequence[Example], batch: int = 64) -> float:
    right = 0
    for i in range(0, len(examples), batch):
        part = examples[i : i + batch]
        pred = np.asarray(run(part)).argmax(-1)
        right += int(sum(int(p) == e.label for p, e in zip(pred, part, strict=True)))
    return 100.0 * right / len(examples)


def bench(models: dict[str, Path], int8: dict[str, tuple[Path, Path, str]],
          peer_folders: dict[str, tuple[str, Path, str]], data: dict[str, TaskData], batch_sizes: Sequence[int],
          rounds: int, examples: int) -> dict[str, dict]:
    """{key: {"batch_sizes", "tasks": {task: figures}}} for every mkd folder (PyTorch fp32 at the top level,
    and every serving path under "paths": PyTorch at the run's precision, ONNX Runtime fp32 under
    "onnxruntime" and int8), int8 graph (teacher folder, export folder, task) and peer (name, folder, task),
    all measured in ONE interleaved `mkd.serving.bench.measure` per task, on one thread."""
    import peers

    from mkd.errors import MkdError
    from mkd.models.base import read_meta
    from mkd.models.loading import load_model
    from mkd.serving.bench import ORT, default_precision, measure, onnx_runner, torch_runner
    from mkd.serving.fast_bench import numpy_runner, onnx_export_for, texts_of
    from mkd.serving.runtime import OnnxModel

    torch.set_num_threads(1)
    precision = default_precision()
    out: dict[str, dict] = {}
    for task, td in data.items():
        texts = td.split("dev")[:examples]
        runners: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="mkd-study-bench-") as scratch:
            for key, folder in models.items():
                if task not in read_meta(folder)["tasks"]:
                    continue
                model = load_model(folder, tasks=[task])
                spec = model.specs[task]
                runners[f"{key}@torch_fp32"] = torch_runner(model, spec)
                if precision != "fp32":
                    runners[f"{key}@torch_precision"] = torch_runner(model, spec, precision)
                fast, _ = numpy_runner(model, spec, texts)  # the static student's numpy path, gated
                if fast is not None:
                    runners[f"{key}@numpy"] = fast
                try:
                    graph, info = onnx_export_for(folder, Path(scratch) / key.replace("/", "_"), {task: texts[:256]})
                    for q in ("fp32", "int8") if task in info["int8"] else ("fp32",):
                        runners[f"{key}@onnx_{q}"] = onnx_runner(OnnxModel(graph, q, 1, texts_of(texts)), spec)
                except (MkdError, ImportError, RuntimeError, ValueError) as e:  # PyTorch figures still count
                    print(f"study: no ONNX Runtime figure for {key} on {task}: {str(e)[:200]}", flush=True)
            for key, (_teacher, graph, of) in int8.items():
                if of == task:
                    runners[f"{key}@onnx_int8"] = onnx_runner(OnnxModel(graph, "int8", 1), td.spec)
            for key, (peer, folder, of) in peer_folders.items():
                if of == task:
                    runners[f"{key}@peer"] = peers.load_peer(peer, folder)
            measured = measure(runners, texts, batch_sizes, rounds)
        for key, figures in measured.items():
            base, _, path = key.rpartition("@")
            entry = out.setdefault(base, {"batch_sizes": list(batch_sizes), "tasks": {}})
            cell = entry["tasks"].setdefault(task, {"threads": torch.get_num_threads()})
            cell.setdefault("paths", {})[path] = figures
            if path in ("torch_fp32", "peer") or (path == "onnx_int8" and base in int8):
                cell.update(figures)  # the row's own figure
            elif path == "onnx_fp32":
                cell[ORT] = figures
    return out


def preflight(device: str) -> str | None:
    """One forward and backward pass of the students' own LSTM path (packed sequences, `run_lstm`)
    under bf16 autocast on `device`: None when it works, else the error (cuDNN runs bf16 RNNs only
    from cuDNN 9.13; older builds fail here, in a second, not after the teacher's epoch)."""
    from mkd.models.students.wordlevel import lstm, run_lstm

    try:
        layer = lstm(8, 8, 1, 0.0).to(device)
        x = torch.randn(3, 5, 8, device=device, requires_grad=True)
        mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] + [0] * 4], device=device, dtype=torch.bool)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
            out = run_lstm(layer, x, mask)
        loss = sum(o.float().sum() for o in (out if isinstance(out, tuple) else (out,)))
        loss.backward()  # type: ignore[union-attr]
    except Exception as e:  # any failure here is the one to report before an hour of work
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return None
