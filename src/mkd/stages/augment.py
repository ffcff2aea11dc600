"""Stage 2a: the transfer set of every task: its training examples, Tang et al.'s augmented copies,
and the user's own unlabelled text, written as Parquet shards under `<run>/transfer/<task>/`.

Each task has its own fingerprint (its recipe entry, its effective augmentation settings, the seed,
the shard size and the size/mtime of its data files), so a change to one task rebuilds only that
task; an unchanged recipe is skipped without loading any data.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mkd import dist
from mkd.config import AugmentConfig, Recipe, TaskConfig
from mkd.data.augment import Tagger, TaskAugmenter, spacy_tagger
from mkd.data.transfer import MANIFEST, ShardWriter, read_unlabelled, write_manifest
from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json
from mkd.stages.common import claim_run, mark_done, run_dir, say
from mkd.tasks import load_task, unlabelled_train
from mkd.tasks.catalog import resolve_spec

AUGMENT_VERSION = 1  # bump when the rules or the on-disk format change: every set is rebuilt


def augment_config(recipe: Recipe, task: TaskConfig) -> AugmentConfig:
    """A task's own augment: section wins over transfer.augment."""
    return task.augment if task.augment is not None else recipe.transfer.augment


def _stats(raw: str | None) -> Any:
    if raw is None:
        return None
    path = Path(raw).expanduser()
    return [raw, path.stat().st_size, path.stat().st_mtime_ns] if path.is_file() else raw


def task_fingerprint(recipe: Recipe, task: TaskConfig) -> str:
    """What the transfer set of one task depends on."""
    data = {"version": AUGMENT_VERSION, "seed": recipe.seed, "task": task.model_dump(mode="json"),
            "augment": augment_config(recipe, task).model_dump(mode="json"),
            "shard_size": recipe.transfer.shard_size, "tagger": "spacy-en-md",
            "files": [_stats(p) for p in (task.train, task.dev, task.test, *(u for u, _ in task.unlabelled_files()))]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def manifest_fingerprint(folder: Path) -> str | None:
    try:
        return read_json(folder / MANIFEST).get("fingerprint")
    except (OSError, ValueError):
        return None


def _check_stems(task: TaskConfig) -> None:
    stems = [Path(p).stem for p, _ in task.unlabelled_files()]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise MkdError(f"task {task.name}: two unlabelled files are named '{dupes[0]}' (ids would clash)",
                       "rename one of them")


def build_task(recipe: Recipe, task: TaskConfig, folder: Path, fingerprint: str,
               tagger: Tagger | None) -> tuple[dict[str, Any], Tagger | None]:
    """Write one task's transfer set; returns its manifest and the tagger (created on first need)."""
    _check_stems(task)
    spec = resolve_spec(task)
    train = load_task(task, recipe.seed, recipe.fetch_missing).split("train")
    cfg = augment_config(recipe, task)
    augmenter = None
    if cfg.enabled and (cfg.n_iter is None or cfg.n_iter > 0):
        tagger = tagger or spacy_tagger(recipe.fetch_missing)
        augmenter = TaskAugmenter(task.name, train, cfg, recipe.seed, tagger)
    for path, columns in task.unlabelled_files():  # read through once first: a bad file fails before writing
        for _ in read_unlabelled(spec, path, columns):
            pass
    claim_run(recipe)
    with atomic_dir(folder) as tmp:
        writer = ShardWriter(tmp, recipe.transfer.shard_size)
        pairs = iter(augmenter) if augmenter is not None else ((e, []) for e in train)
        for example, copies in pairs:
            writer.add(example, "original")
            for copy in copies:
                writer.add(copy, "augmented", example.id)
        for example in unlabelled_train(task, recipe.seed, recipe.fetch_missing):
            writer.add(example, "unlabelled")
        for path, columns in task.unlabelled_files():
            for example in read_unlabelled(spec, path, columns):
                writer.add(example, "unlabelled")
        manifest = write_manifest(tmp, spec, fingerprint, writer, augment=cfg.model_dump(mode="json"),
                                  n_iter=augmenter.per_example() if augmenter else 0)
    return manifest, tagger


def augment(recipe: Recipe, force: bool = False, tagger: Tagger | None = None) -> Path:
    """Build (or keep) the transfer set of every task of the recipe."""
    run = run_dir(recipe, force)
    out = run / "transfer"
    prints = {t.name: task_fingerprint(recipe, t) for t in recipe.tasks}
    stale = [t for t in recipe.tasks if force or manifest_fingerprint(out / t.name) != prints[t.name]]
    overall = hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()[:16]
    if not stale:
        say(f"augment: unchanged, kept {out}")
        return out
    if not dist.is_main():  # under a launcher the main process builds the set; the others wait
        dist.barrier()
        return out
    started = time.time()
    for task in stale:
        t0 = time.time()
        manifest, tagger = build_task(recipe, task, out / task.name, prints[task.name], tagger)
        c = manifest["counts"]
        extra = f", {c['unlabelled']} unlabelled" if c["unlabelled"] else ""
        say(f"augment: {task.name}: {c['original']} original, {c['augmented']} augmented{extra} "
            f"({len(manifest['shards'])} shards, {time.time() - t0:.1f}s)")
    mark_done(out, "augment", overall, started, tasks=prints)
    say(f"augment: wrote {out} in {time.time() - started:.1f}s")
    dist.barrier()
    return out
