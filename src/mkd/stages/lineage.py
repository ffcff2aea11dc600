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
