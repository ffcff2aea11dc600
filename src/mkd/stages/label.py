"""Stage 2b: the teacher's logits for every example of the transfer set, keyed by example id.

A task's label fingerprint is its teacher's fingerprint (mkd.teachers: the weights, files and settings
of every member of it), plus the transfer set's fingerprint: a new teacher or a new augmentation
relabels, an unchanged run is skipped in seconds (the weights' hash is cached by size and mtime).
Labelling goes shard by shard and a finished shard carries the fingerprint, so an interrupted run
resumes where it stopped. The batch size is not part of the fingerprint: it changes speed, not the logits.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkd import dist
from mkd.config import Recipe
from mkd.data.fidelity import Fidelity, gate
from mkd.data.transfer import KINDS, label_task, labels_fresh, read_manifest, read_shard, teacher_logits
from mkd.errors import MkdError
from mkd.io import write_json
from mkd.precision import resolve
from mkd.progress import progress_bar
from mkd.stages.augment import task_fingerprint
from mkd.stages.common import claim_run, run_dir, say
from mkd.tasks.catalog import resolve_spec
from mkd.teachers import Teacher, task_teachers

LABEL_VERSION = 1


def label_fingerprint(teacher_hash: str, transfer_fingerprint: str, task: str, precision: str = "fp32") -> str:
    data = {"version": LABEL_VERSION, "teacher": teacher_hash, "transfer": transfer_fingerprint, "task": task}
    if precision != "fp32":  # fp32 labels keep the fingerprint they always had
        data["precision"] = precision
    blob = json.dumps(data, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def check_coverage(teacher: Teacher, tasks: list[str], out: Path) -> None:
    """A teacher that looks logits up (a file, or an ensemble with one) must have every example."""
    if not teacher.lookup():
        return
    for task in tasks:
        manifest = read_manifest(out / task)
        examples = [e for entry in manifest["shards"]
                    for e in read_shard(out / task / entry["examples"], manifest["type"], manifest["is_pair"], KINDS)]
        gaps = teacher.missing(task, examples)
        if gaps:
            raise MkdError(f"the teacher of task {task} ({teacher.kind}:{teacher.source}) has no logits for "
                           f"{len(gaps)} of its {len(examples)} transfer examples (first: {examples[gaps[0]].id}); "
                           "nothing was labelled", "add them (mkd transfer export writes every example), then rerun")


TIMES = "label.json"
"""transfer/label.json: how long the last labelling took, per task, and how many shards it kept (labelled
before: a resumed labelling, whose earlier time is not counted)."""


def label(recipe: Recipe, force: bool = False, on_shard: Callable[[str, int], None] | None = None,
          device: str | None = None) -> Path:
    """Label every task's transfer set with its teacher (skipping what is already labelled)."""
    run = run_dir(recipe, force)
    out = run / "transfer"
    started = time.time()
    plan: dict[Teacher, list[str]] = {}
    prints: dict[str, str] = {}
    cache = run / ".work" / "sha256.json"
    device = device or dist.device()
    precision = resolve(recipe.precision, device)
    for task in recipe.tasks:
        manifest = read_manifest(out / task.name)
        if manifest["fingerprint"] != task_fingerprint(recipe, task):
            raise MkdError(f"the transfer set of task {task.name} is out of date with the recipe",
                           "run mkd augment first")
    teachers = task_teachers(recipe, {t.name: resolve_spec(t) for t in recipe.tasks},
                             cache if dist.is_main() else None)
    for task in recipe.tasks:
        folder = out / task.name
        teacher = teachers[task.name]
        prints[task.name] = label_fingerprint(teacher.fingerprint(), read_manifest(folder)["fingerprint"], task.name,
                                              teacher_precision(teacher, precision))
        if force or not labels_fresh(folder, prints[task.name]):
            plan.setdefault(teacher, []).append(task.name)
    if not plan:
        say(f"label: unchanged, kept {out} ({time.time() - started:.1f}s)")
        return out
    for teacher, tasks in plan.items():
        check_coverage(teacher, tasks, out)  # a logits file that misses examples: refused before any write
    claim_run(recipe)
    batch_size = recipe.transfer.label_batch_size
    world, rank = dist.world(), dist.rank()
    done: dict[str, dict[str, Any]] = {}
    for teacher, tasks in plan.items():
        model = teacher.load(device)
        spread = f", shards spread over {world} processes" if world > 1 else ""
        say(f"label: teacher {teacher.kind}:{teacher.source} on {device}, batches of {batch_size}{spread}")
        for task in tasks:
            t0 = time.time()
            n_shards = len(read_manifest(out / task)["shards"])
            bar = progress_bar(f"label {task}", n_shards, enabled=n_shards > 1 and rank == 0)

            def tick(name: str, index: int, bar=bar) -> None:
                bar.update(index + 1, "shards")
                if on_shard is not None:
                    on_shard(name, index)

            wanted = teacher_precision(teacher, precision)
            used, record = wanted, {"label_precision": wanted}
            if wanted != "fp32":
                fidelity = fidelity_gate(model, task, out / task, wanted, recipe, device)
                used, record = fidelity.used, {"label_precision": fidelity.used, "fidelity": fidelity.record()}
                say(fidelity.line(task))
            try:
                counts = label_task(model, task, out / task, prints[task], batch_size, device, force, tick,
                                    rank=rank, world=world, barrier=dist.barrier, precision=used, record=record)
            finally:
                bar.close()
            say(f"label: {task}: {counts['rows']} examples at {used}, {counts['labelled']} shards labelled, "
                f"{counts['kept']} kept ({time.time() - t0:.1f}s)")
            done[task] = {"seconds": round(time.time() - t0, 2), "labelled": counts["labelled"], "kept": counts["kept"]}
        teacher.unload()
        del model
    dist.barrier()  # every manifest is final before any process goes on
    if dist.is_main():
        write_json(out / TIMES, {"wall_seconds": round(time.time() - started, 2), "tasks": done})
    say(f"label: wrote logits under {out} in {time.time() - started:.1f}s")
    return out


def teacher_precision(teacher: Teacher, precision: str) -> str:
    """A teacher that is a file of logits computes nothing: its labels are what the file says (fp32)."""
    return "fp32" if teacher.kind == "logits" else precision


def fidelity_gate(teacher: Teacher, task: str, folder: Path, precision: str, recipe: Recipe,
                  device: str) -> Fidelity:
    """The gate (mkd.data.fidelity) on the first examples of the task's first shard."""
    manifest = read_manifest(folder)
    examples = read_shard(folder / manifest["shards"][0]["examples"], manifest["type"], manifest["is_pair"], KINDS)
    examples = examples[: recipe.transfer.fidelity_examples]
    batch_size = recipe.transfer.label_batch_size
    return gate(lambda p: teacher_logits(teacher, task, examples, batch_size, device, p), precision,
                recipe.transfer.fidelity_threshold)
