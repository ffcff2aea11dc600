"""Reruns keep what the user made, or say what goes: a model replaced by a rerun is announced in one
line, and what was derived from it never stays behind posing as current.

- a student's exports (onnx/, hf/ inside its folder) go with it, and are named;
- the models fine-tuned from a replaced student are removed with it (the next finetune remakes them);
- when the teacher is replaced, every student of the run (trained on the old teacher's logits) is
  marked stale (`stale.json`) until it is trained again; the summary and the report label it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkd.io import read_json, write_json
from mkd.stages.common import STAGE_FILE, finetuned_folder, model_folders, say

STALE = "stale.json"
EXPORTS = ("onnx", "hf")


def _finetuned(student: Path) -> Path:
    return student.parent / finetuned_folder(student.name)




@contextlib.contextmanager
def replacing(run: Path, out: Path, stage: str) -> Iterator[None]:
    """Around the write of a new `out`: once it is in place (never before: a failed write changes
    nothing), say that the previous model was replaced and deal with what depended on it."""
    existed = (out / STAGE_FILE).is_file()
    exports = [e for e in EXPORTS if (out / e).is_dir()]
    yield
    if existed:
        _replaced(run, out, stage, exports)


def _replaced(run: Path, out: Path, stage: str, exports: list[str]) -> None:
    notes = []
    if exports:
        notes.append(f"its export{'s' if len(exports) > 1 else ''} {', '.join(e + '/' for e in exports)} "
                     "went with it (export again)")
    if stage == "distill" and _finetuned(out).is_dir():
        tuned = _finetuned(out)
        count = len(list(tuned.glob("*/mkd.json")))
        shutil.rmtree(tuned)
        notes.append(f"the {count} model(s) fine-tuned from it in {tuned} were removed")
    if stage == "teach":
        marked = [m for m in model_folders(run).values() if m != out]
        for model in marked:
            write_json(model / STALE, {"reason": "trained on an earlier teacher"})
        if marked:
            notes.append(f"{len(marked)} student(s) trained on the old teacher are marked stale until retrained")
    say(f"{stage}: replaced {out}" + (f"; {'; '.join(notes)}" if notes else ""))


def stale_reason(folder: Path) -> str | None:
    """Why a model is not current (None when it is)."""
    path = folder / STALE
    if not path.is_file():
        return None
    try:
        return str(read_json(path).get("reason") or "stale")
    except (OSError, ValueError):
        return "stale"


SECTIONS = ("student", "distill", "finetune", "transfer", "teacher", "precision")
SHOWN = 3


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}.{key}").items()}
    return {prefix: value}


def other_settings(current: dict[str, Any], folder: Path) -> str:
    """Why a model of the run folder is not what the current recipe (`current`: its resolved settings)
    makes, from the recipe.yaml beside the model: "other settings: student.hidden_size 96 vs 150", the
    output folder last; a model of a recipe of another name says so first."""
    import yaml

    try:
        theirs = yaml.safe_load((folder / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        theirs = None
    if not isinstance(theirs, dict):
        return "not made by this recipe: no readable recipe.yaml beside it"
    mine, made = {}, {}
    for section in SECTIONS:
        mine.update(_flat(current.get(section), section))
        made.update(_flat(theirs.get(section), section))
    keys = sorted((k for k in {*mine, *made} if mine.get(k) != made.get(k)), key=lambda k: k.endswith(".folder"))
    parts = [f"{k} {made.get(k)} vs {mine.get(k)}" for k in keys[:SHOWN]]
    if len(keys) > SHOWN:
        parts.append(f"{len(keys) - SHOWN} more")
    name = f"from recipe {theirs.get('name')}; " if theirs.get("name") != current.get("name") else ""
    return f"{name}other settings: {', '.join(parts)}" if parts else f"{name}same settings, another folder"
