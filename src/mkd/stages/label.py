"""Stage 2b: the teacher's logits for every example of the transfer set, keyed by example id.

A task's label fingerprint is the sha256 of its teacher's weights and mkd.json, plus the transfer
set's fingerprint: a new teacher or a new augmentation relabels, an unchanged run is skipped in
seconds (the weights' hash is cached by size and mtime). Labelling goes shard by shard and a
finished shard carries the fingerprint, so an interrupted run resumes where it stopped. The batch
size is not part of the fingerprint: it changes speed, not the logits.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from mkd import dist
from mkd.config import Recipe
from mkd.data.fidelity import Fidelity, gate
from mkd.data.transfer import label_task, labels_fresh, read_manifest, read_shard
from mkd.errors import MkdError
from mkd.evaluate import predict
from mkd.io import read_json, write_json
from mkd.models.base import MkdModel, load_model
from mkd.precision import resolve
from mkd.progress import progress_bar
from mkd.stages.augment import task_fingerprint
from mkd.stages.common import claim_run, run_dir, say

LABEL_VERSION = 1


def teacher_folder(recipe: Recipe, run: Path, task: str) -> Path:
    """The task's teacher: transfer.teachers[task] when given, else the run's own teacher."""
    chosen = (recipe.transfer.teachers or {}).get(task)
    folder = Path(chosen).expanduser() if chosen else run / "teacher"
    if not (folder / "model.safetensors").is_file() or not (folder / "mkd.json").is_file():
        if chosen:
            raise MkdError(f"teacher folder {folder} for task {task} holds no mkd model",
                           "fix transfer.teachers in the recipe")
        raise MkdError(f"no teacher at {folder}", "run mkd teach first")
    return folder


def file_sha256(path: Path, cache: Path | None = None) -> str:
    """sha256 of a file; with `cache`, reused while the file's size and mtime are unchanged."""
    stat = path.stat()
    key, sig = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    known: dict = {}
    if cache is not None and cache.is_file():
        try:
            known = read_json(cache)
        except (OSError, ValueError):
            known = {}
        if known.get(key, {}).get("sig") == sig:
            return known[key]["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if cache is not None:
        known[key] = {"sig": sig, "sha256": digest.hexdigest()}
        write_json(cache, known)
    return digest.hexdigest()


def label_fingerprint(teacher_hash: str, transfer_fingerprint: str, task: str, precision: str = "fp32") -> str:
    data = {"version": LABEL_VERSION, "teacher": teacher_hash, "transfer": transfer_fingerprint, "task": task}
    if precision != "fp32":  # fp32 labels keep the fingerprint they always had
        data["precision"] = precision
    blob = json.dumps(data, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _teacher_hash(folder: Path, cache: Path) -> str:
    meta = hashlib.sha256((folder / "mkd.json").read_bytes()).hexdigest()
    return file_sha256(folder / "model.safetensors", cache) + meta


def label(recipe: Recipe, force: bool = False, on_shard: Callable[[str, int], None] | None = None,
          device: str | None = None) -> Path:
    """Label every task's transfer set with its teacher (skipping what is already labelled)."""
    run = run_dir(recipe, force)
    out = run / "transfer"
    started = time.time()
    plan: dict[Path, list[str]] = {}
    prints: dict[str, str] = {}
    cache = run / ".work" / "sha256.json"
    hashes: dict[Path, str] = {}
    device = device or dist.device()
    precision = resolve(recipe.precision, device)
    for task in recipe.tasks:
        folder = out / task.name
        manifest = read_manifest(folder)
        if manifest["fingerprint"] != task_fingerprint(recipe, task):
            raise MkdError(f"the transfer set of task {task.name} is out of date with the recipe",
                           "run mkd augment first")
        teacher = teacher_folder(recipe, run, task.name)
        if teacher not in hashes:
            hashes[teacher] = _teacher_hash(teacher, cache if dist.is_main() else None)
        prints[task.name] = label_fingerprint(hashes[teacher], manifest["fingerprint"], task.name, precision)
        if force or not labels_fresh(folder, prints[task.name]):
            plan.setdefault(teacher, []).append(task.name)
    if not plan:
        say(f"label: unchanged, kept {out} ({time.time() - started:.1f}s)")
        return out
    claim_run(recipe)
    batch_size = recipe.transfer.label_batch_size
    world, rank = dist.world(), dist.rank()
    for teacher, tasks in plan.items():
        model = load_model(teacher, tasks=tasks).to(device)
        spread = f", shards spread over {world} processes" if world > 1 else ""
        say(f"label: teacher {teacher} on {device}, batches of {batch_size}{spread}")
        for task in tasks:
            t0 = time.time()
            n_shards = len(read_manifest(out / task)["shards"])
            bar = progress_bar(f"label {task}", n_shards, enabled=n_shards > 1 and rank == 0)

            def tick(name: str, index: int, bar=bar) -> None:
                bar.update(index + 1, "shards")
                if on_shard is not None:
                    on_shard(name, index)

            used, record = precision, {"label_precision": precision}
            if precision != "fp32":
                fidelity = fidelity_gate(model, task, out / task, precision, recipe, device)
                used, record = fidelity.used, {"label_precision": fidelity.used, "fidelity": fidelity.record()}
                say(fidelity.line(task))
            try:
                counts = label_task(model, task, out / task, prints[task], batch_size, device, force, tick,
                                    rank=rank, world=world, barrier=dist.barrier, precision=used, record=record)
            finally:
                bar.close()
            say(f"label: {task}: {counts['rows']} examples at {used}, {counts['labelled']} shards labelled, "
                f"{counts['kept']} kept ({time.time() - t0:.1f}s)")
        del model
    dist.barrier()  # every manifest is final before any process goes on
    say(f"label: wrote logits under {out} in {time.time() - started:.1f}s")
    return out


def fidelity_gate(model: MkdModel, task: str, folder: Path, precision: str, recipe: Recipe,
                  device: str) -> Fidelity:
    """The gate (mkd.data.fidelity) on the first examples of the task's first shard."""
    manifest = read_manifest(folder)
    examples = read_shard(folder / manifest["shards"][0]["examples"], manifest["type"], manifest["is_pair"])
    encoded = model.encode(model.specs[task], examples[: recipe.transfer.fidelity_examples])
    batch_size = recipe.transfer.label_batch_size
    return gate(lambda p: predict(model, task, encoded, batch_size, device, p), precision,
                recipe.transfer.fidelity_threshold)
