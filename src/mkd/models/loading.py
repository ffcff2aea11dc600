"""Loading any model folder: every architecture module is imported here (which registers it), so the
modules that define architectures never import this one back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mkd.models import teacher  # noqa: F401  (registers "teacher")
from mkd.models.base import MkdModel, rebuild
from mkd.models.students import student_names  # noqa: F401  (registers every student)


def load_model(folder: str | Path, tasks: Sequence[str] | None = None) -> MkdModel:
    """Rebuild a model from its folder; `tasks` (when given) must all have a head in it."""
    return rebuild(folder, tasks)
