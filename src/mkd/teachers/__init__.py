"""Teachers: one registry of adaptors at the model boundary (mkd folder, Hugging Face classifier, logits
file, ensemble), so the stages only ever see "logits for these example ids".

A task's teacher is `transfer.teachers[task]` when the recipe gives one (a plain string is an mkd folder),
else the run's own teacher (`<run>/teacher`, made by `mkd teach`).
"""

from __future__ import annotations

import json
from pathlib import Path

from mkd.config import Recipe, TeacherSpec
from mkd.tasks.task import TaskSpec
from mkd.teachers import ensemble, hf, logits, mkd  # noqa: F401  (each registers its kind)
from mkd.teachers.base import TEACHERS, Context, Teacher, as_spec, build

__all__ = ["TEACHERS", "Context", "Teacher", "all_external", "build", "task_teachers", "teacher_ref"]


def teacher_ref(recipe: Recipe, task: str) -> tuple[TeacherSpec, bool]:
    """(the task's teacher entry, whether it is the run's own teacher)."""
    chosen = (recipe.transfer.teachers or {}).get(task)
    if chosen is None:
        return TeacherSpec(kind="mkd", path=str(recipe.run_dir / "teacher")), True
    return as_spec(chosen), False


def all_external(recipe: Recipe) -> bool:
    """Every task has its own teacher in the recipe, so the run's teacher is not needed for labels."""
    return all(t.name in (recipe.transfer.teachers or {}) for t in recipe.tasks)


def task_teachers(recipe: Recipe, specs: dict[str, TaskSpec], cache: Path | None = None,
                  tasks: list[str] | None = None) -> dict[str, Teacher]:
    """The adaptor of every task (those in `tasks`, default all); tasks with the same entry share one, so a
    multi-task teacher is loaded once."""
    groups: dict[str, list[str]] = {}
    refs: dict[str, tuple[TeacherSpec, bool]] = {}
    for name in tasks or list(specs):
        ref, internal = teacher_ref(recipe, name)
        key = json.dumps([ref.model_dump(mode="json"), internal], sort_keys=True)
        groups.setdefault(key, []).append(name)
        refs[key] = (ref, internal)
    out: dict[str, Teacher] = {}
    for key, names in groups.items():
        ref, internal = refs[key]
        teacher = build(ref, {n: specs[n] for n in names}, Context(cache, recipe.fetch_missing, internal))
        out.update(dict.fromkeys(names, teacher))
    return out
