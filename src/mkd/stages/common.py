"""What every stage shares: the run folder, stage fingerprints, and skipping unchanged work."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mkd import dist
from mkd.config import Recipe
from mkd.data.batch import EncodedSplit
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.models.base import MkdModel
from mkd.progress import say  # noqa: F401  (the stages' one-line messages)
from mkd.tasks.task import TaskData

STAGE_FILE = "stage.json"
SCORING = "fp32"
"""The arithmetic of every stored score (metrics.json), whatever the training precision: what `mkd predict`,
the ONNX graph and the README's snippet serve by default, so the report's accuracy is what a user gets."""


def run_dir(recipe: Recipe, force: bool = False) -> Path:
    """The run folder (nothing is written): refuses a folder made by another recipe (other tasks or
    seed) unless forced. Stages call `claim_run` once their inputs have loaded without error."""
    folder = recipe.run_dir
    marker = folder / "run.json"
    if marker.exists() and not force:
        try:
            old = read_json(marker).get("identity")
        except (json.JSONDecodeError, OSError):
            old = None
        if old != recipe.section_hash("tasks"):
            raise MkdError(f"run folder {folder} was made by another recipe (other tasks or seed)",
                           "give this recipe another name, or rerun with --force to overwrite it")
    return folder


def claim_run(recipe: Recipe) -> Path:
    """Create the run folder and record which recipe owns it (and the resolved recipe); the main
    process does it when there are several."""
    folder = recipe.run_dir
    if not dist.is_main():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "run.json", {"identity": recipe.section_hash("tasks"), "name": recipe.name})
    recipe.save(folder)
    return folder


def data_stamp(recipe: Recipe) -> str:
    """Size and modification time of every data file the recipe's tasks name, hashed: a stage whose
    fingerprint includes it reruns when a file is edited in place (same path, new content)."""
    stats = []
    for task in recipe.tasks:
        for raw in (task.train, task.dev, task.test):
            path = Path(raw).expanduser() if raw else None
            stats.append([raw, path.stat().st_size, path.stat().st_mtime_ns] if path and path.is_file() else raw)
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def is_fresh(out: Path, fingerprint: str) -> bool:
    """True when `out` was completed by a run with this very fingerprint."""
    path = out / STAGE_FILE
    if not path.is_file():
        return False
    try:
        return read_json(path).get("fingerprint") == fingerprint
    except (json.JSONDecodeError, OSError):
        return False


def mark_done(folder: Path, stage: str, fingerprint: str, started: float, **extra: Any) -> None:
    write_json(folder / STAGE_FILE, {"stage": stage, "fingerprint": fingerprint,
                                     "wall_seconds": round(time.time() - started, 2), **extra})


def trained_for(result: Any) -> dict[str, Any]:
    """stage.json's training time: every process that worked on the model counts (a resumed run adds the
    time before its checkpoint, and names the step it resumed at)."""
    out: dict[str, Any] = {"train_seconds": round(result.wall_seconds + result.earlier_seconds, 2)}
    if result.resumed_step:
        out.update(resumed_step=result.resumed_step, earlier_seconds=round(result.earlier_seconds, 2))
    return out


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch before a model is made, so that its random initial weights (task
    heads, random embeddings) are the same in every run of the recipe."""
    from accelerate.utils import set_seed

    set_seed(seed)


def work_dir(run: Path, stage: str, resume: bool) -> Path:
    """Scratch space of a stage (checkpoints, logs); cleared unless resuming."""
    folder = run / ".work" / stage
    if not resume and folder.exists() and dist.is_main():
        shutil.rmtree(folder)
    dist.barrier()  # no process writes there before the main one has cleared it
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def copy_logs(src: Path, dst: Path) -> None:
    for name in ("train_log.csv", "eval_log.csv"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)


def encode_splits(model: MkdModel, tasks: dict[str, TaskData], split: str) -> dict[str, EncodedSplit]:
    return {t: model.encode(d.spec, d.split(split)) for t, d in tasks.items() if split in d.splits}


def metrics_document(per_split: dict[str, dict], primary_split: str = "test", precision: str | None = None) -> dict:
    """metrics.json: the contract's {"split", "tasks", "macro"} for the test split, plus every split
    (and the precision the scores were computed at)."""
    main = per_split.get(primary_split) or next(iter(per_split.values()))
    extra = {"precision": precision} if precision else {}
    return {"split": primary_split if primary_split in per_split else next(iter(per_split)),
            "tasks": main["tasks"], "macro": main["macro"], "splits": per_split, **extra}


def table_lines(per_split: dict[str, dict], tasks: Sequence[str]) -> list[str]:
    lines = []
    for split, result in per_split.items():
        cells = [f"{t} " + " ".join(f"{m}={v:.2f}" for m, v in result["tasks"][t].items()) for t in tasks]
        lines.append(f"  {split:5s} macro={result['macro']:.2f} | " + " | ".join(cells))
    return lines


def finetuned_folder(student_folder: str) -> str:
    """Where the models fine-tuned from a student folder go (one sub-folder per task)."""
    return "finetuned" if student_folder == "student" else f"{student_folder}-finetuned"


def model_folders(run: Path) -> dict[str, Path]:
    """The teacher and every student of a run folder (fine-tuned ones as <folder>/<task>)."""
    found = {"teacher": run / "teacher"} if (run / "teacher" / "mkd.json").is_file() else {}
    tuned: dict[str, Path] = {}
    for sub in sorted(p for p in run.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name not in ("teacher", "transfer", "bench", "baselines")):
        if (sub / "mkd.json").is_file():
            found[sub.name] = sub
        else:
            tuned.update({f"{sub.name}/{t.name}": t for t in sorted(sub.iterdir())
                          if t.is_dir() and (t / "mkd.json").is_file()})
    return {**found, **tuned}
