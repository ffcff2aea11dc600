"""A stage's scratch folder (`<run>/.work/<stage>`) and what a rerun does with an unfinished checkpoint.

The choice (README, "Interrupted runs"): a rerun next to an unfinished checkpoint of the *same* stage
fingerprint resumes from it by default and says so in one line; `--restart` starts over. A checkpoint
left by another version of the recipe is discarded with one line (with `--resume` it is an error, as a
user who asked to continue must learn that it cannot). A finished stage deletes its scratch folder
(checkpoints, best weights: most of a run's bytes), keeping only its outputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mkd import dist
from mkd.io import restore_swapped_dir
from mkd.stages.common import say


def _checkpoint(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def prepare_work(run: Path, stage: str, fingerprint: str, resume: bool, restart: bool = False) -> tuple[Path, bool]:
    """The scratch folder of a stage and whether the training loop resumes from its checkpoint."""
    folder = run / ".work" / stage
    restore_swapped_dir(folder / "checkpoint")  # killed between the two renames of a checkpoint swap
    state = _checkpoint(folder) if folder.is_dir() else None
    keep = resume
    if state is not None and not resume:
        step = state.get("train", {}).get("step", "?")
        if restart:
            say(f"{stage}: starting over (--restart); the unfinished checkpoint of step {step} is discarded")
        elif state.get("fingerprint") == fingerprint:
            say(f"{stage}: resuming the unfinished checkpoint of step {step} in {folder / 'checkpoint'} "
                "(--restart starts over)")
            keep = True
        else:
            say(f"{stage}: an unfinished checkpoint of another version of the recipe is discarded "
                f"(step {step}); starting over")
    elif state is None and (folder / "checkpoint").is_dir() and resume:
        keep = True  # a damaged checkpoint: the loop's load reports it
    if not keep and folder.exists() and dist.is_main():
        shutil.rmtree(folder)
    dist.barrier()  # no process writes there before the main one has cleared it
    folder.mkdir(parents=True, exist_ok=True)
    return folder, keep


def finish_work(folder: Path) -> None:
    """Drop a finished stage's scratch folder (its logs were copied into the output folder)."""
    if dist.is_main():
        shutil.rmtree(folder, ignore_errors=True)
