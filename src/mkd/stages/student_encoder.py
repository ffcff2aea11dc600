"""Which encoder lends the student what it borrows (models/students/borrow.py), decided from the recipe
alone, so preflight, `mkd run` (does teach run?) and distill agree, and the answer is known before any work.

The student's kind names the sources it accepts, in order; here each is looked up in the recipe: the run's
teacher is there when the run trains one anyway (a task without a teacher of its own), a per-task mkd
teacher when transfer.teachers names one with an encoder, the base encoder (`teacher.model`) always.
"""

from __future__ import annotations

from pathlib import Path

from mkd.config import Recipe, TeacherSpec
from mkd.errors import MkdError
from mkd.models.students import student_kind
from mkd.models.students.borrow import Borrow, EncoderSource, Source
from mkd.teachers import all_external
from mkd.teachers.base import as_spec


def borrowed(recipe: Recipe) -> Borrow | None:
    """What the recipe's student borrows from an encoder (None: nothing)."""
    return student_kind(recipe.student.type).borrows(recipe.student)


def _mkd_folders(ref: TeacherSpec) -> list[Path]:
    if ref.kind == "ensemble":
        return [f for m in ref.members or [] for f in _mkd_folders(as_spec(m))]
    return [Path(str(ref.path)).expanduser()] if ref.kind == "mkd" and ref.path else []


def task_encoders(recipe: Recipe) -> list[Path]:
    """The per-task mkd teacher folders that hold an encoder (a refined teacher or a transformer student,
    not an LSTM), in the recipe's task order."""
    given = recipe.transfer.teachers or {}
    found: list[Path] = []
    for task in recipe.tasks:
        if task.name in given:
            found += [f for f in _mkd_folders(as_spec(given[task.name]))
                      if (f / "mkd.json").is_file() and (f / "config.json").is_file() and f not in found]
    return found


def student_encoder(recipe: Recipe) -> EncoderSource | None:
    """The encoder the student borrows from (None when it borrows nothing)."""
    borrow = borrowed(recipe)
    if borrow is None:
        return None
    run = recipe.run_dir
    trust = recipe.teacher.trust_remote_code
    for source in borrow.sources:
        if source is Source.RUN and not all_external(recipe):
            return EncoderSource(Source.RUN, str(run / "teacher"), recipe.fetch_missing, trust, run)
        if source is Source.TASK and task_encoders(recipe):
            return EncoderSource(Source.TASK, str(task_encoders(recipe)[0]), recipe.fetch_missing, trust, run)
        if source is Source.BASE:
            return EncoderSource(Source.BASE, recipe.teacher.model, recipe.fetch_missing, trust, run)
    if Source.RUN in borrow.sources:  # nothing else will do: the run trains its teacher for the student
        return EncoderSource(Source.RUN, str(run / "teacher"), recipe.fetch_missing, trust, run)
    raise MkdError(f"the {recipe.student.type} student takes {borrow.what} from an encoder, and none of its sources "
                   f"({', '.join(s.value for s in borrow.sources)}) is in this recipe",
                   "give a task an mkd teacher folder under transfer.teachers")


def trains_teacher(recipe: Recipe) -> bool:
    """Whether the run trains its own teacher: a task has no teacher of its own, or the student borrows from
    the run's teacher."""
    if not all_external(recipe):
        return True
    encoder = student_encoder(recipe)
    return encoder is not None and encoder.source is Source.RUN


def check_encoder(recipe: Recipe) -> EncoderSource | None:
    """Preflight: the student's encoder can be had (the base encoder's folder and tokenizer open), in seconds."""
    encoder = student_encoder(recipe)
    if encoder is not None and encoder.source is Source.BASE and encoder.folder is not None:
        encoder.tokenizer()  # a hub name is left to the stage: checking it would need the network
    return encoder
