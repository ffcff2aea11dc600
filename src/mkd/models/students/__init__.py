"""Students: one file and one registry name each (bilstm, bilstm_attn, transformer, static); `build_student`
makes a fresh one from the recipe's `student` section."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mkd.config import StudentConfig
from mkd.errors import MkdError, did_you_mean
from mkd.models.base import ARCHS, MkdModel
from mkd.models.students import bilstm, bilstm_attn, static, transformer  # noqa: F401  (registers them)
from mkd.tasks.task import TaskSpec


def student_names() -> list[str]:
    return [n for n in ARCHS.names() if callable(getattr(ARCHS.get(n), "from_config", None))]


def build_student(cfg: StudentConfig, specs: dict[str, TaskSpec], texts_for_vocab: Iterable[str],
                  teacher_folder: Path | None, fetch_missing: bool = False) -> MkdModel:
    """A fresh student of architecture cfg.type, with its vocabulary (from `texts_for_vocab`, read only
    by word-level students) and embeddings. `teacher_folder` supplies the tokenizer or embeddings when
    the recipe asks for the teacher's."""
    names = student_names()
    if cfg.type not in names:
        raise MkdError(f"unknown student.type '{cfg.type}'", did_you_mean(cfg.type, names))
    if cfg.bigram_buckets and cfg.type != "static":
        raise MkdError(f"student.bigram_buckets applies to the static student only, not to {cfg.type}",
                       "remove it, or use student.type static")
    if cfg.vectors_from != "refined" and cfg.embeddings != "teacher-static":
        raise MkdError(f"student.vectors_from applies to teacher-static vectors, not to {cfg.embeddings} embeddings",
                       "remove it, or use student.embeddings teacher-static")
    return ARCHS.get(cfg.type).from_config(cfg, specs, texts_for_vocab, teacher_folder, fetch_missing)  # type: ignore[attr-defined]
