"""Students: one file and one registry name each (bilstm, bilstm_attn, transformer, static).

Each kind answers its own questions on its class, and nowhere else: `ACCEPTS` (the student.* settings it
reads besides the common ones), `EXCLUSIVE` (those that switch on something only it has: any other kind
refuses them, rather than silently train without it), `check(cfg)` (their values, and the assets they
name), `borrows(cfg)` (what it takes from an encoder, and which sources may lend it: borrow.py) and
`from_config` (a fresh one). Preflight, the pipeline and the stages ask through `student_kind`,
`check_student` and `build_student`. A size of another kind (num_heads on a BiLSTM) is a leftover of a
switched recipe, and is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mkd.config import StudentConfig
from mkd.errors import MkdError, did_you_mean
from mkd.models.base import ARCHS, MkdModel
from mkd.models.students import bilstm, bilstm_attn, static, transformer  # noqa: F401  (registers them)
from mkd.models.students.borrow import Borrow, EncoderSource
from mkd.tasks.task import TaskSpec

COMMON = frozenset({"type", "folder", "hidden_size", "dropout", "max_length"})
"""Settings every kind reads; the others belong to the kinds whose ACCEPTS name them."""


def student_names() -> list[str]:
    return [n for n in ARCHS.names() if callable(getattr(ARCHS.get(n), "from_config", None))]


def student_kind(name: str) -> Any:
    """The class of student.type `name` (the one place an unknown type is refused)."""
    names = student_names()
    if name not in names:
        raise MkdError(f"unknown student.type '{name}'", did_you_mean(name, names))
    return ARCHS.get(name)


def check_student(cfg: StudentConfig, fetch_missing: bool = False) -> Borrow | None:
    """Refuse, before any work, a student the recipe cannot make: an unknown type, a setting of another
    kind, a bad value or a missing asset. Returns what it borrows from an encoder (None: nothing)."""
    kind = student_kind(cfg.type)
    defaults = StudentConfig.model_fields
    others = {k for n in student_names() for k in student_kind(n).EXCLUSIVE}
    for key in sorted(others - COMMON - kind.ACCEPTS):
        if getattr(cfg, key) != defaults[key].default:
            owners = [n for n in student_names() if key in student_kind(n).ACCEPTS]
            which = f"the {owners[0]} student only" if len(owners) == 1 else \
                f"the {', '.join(owners[:-1])} and {owners[-1]} students"
            raise MkdError(f"student.{key} applies to {which}, not to {cfg.type}",
                           f"remove it, or use student.type {owners[0]}")
    if cfg.vectors_from != "refined" and cfg.embeddings != "teacher-static":
        raise MkdError(f"student.vectors_from applies to teacher-static vectors, not to {cfg.embeddings} embeddings",
                       "remove it, or use student.embeddings teacher-static")
    kind.check(cfg, fetch_missing)
    return kind.borrows(cfg)


def build_student(cfg: StudentConfig, specs: dict[str, TaskSpec], texts_for_vocab: Iterable[str],
                  encoder: EncoderSource | Path | None, fetch_missing: bool = False) -> MkdModel:
    """A fresh student of kind cfg.type, with its vocabulary (from `texts_for_vocab`, read only by word-level
    students) and embeddings. `encoder` lends what the kind borrows (a plain folder: a refined teacher's)."""
    borrow = check_student(cfg, fetch_missing)
    source = EncoderSource.of(encoder)
    if borrow is not None and source is None:
        raise MkdError(f"the {cfg.type} student takes {borrow.what} from an encoder, and there is no teacher folder",
                       "run mkd teach first, or run it through mkd distill / mkd run (it finds one)")
    return student_kind(cfg.type).from_config(cfg, specs, texts_for_vocab, source, fetch_missing)
