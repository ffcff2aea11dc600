"""Before anything trains: open every input of every stage and check it, in seconds, writing nothing.

A wrong path or column in an unlabelled file, a missing word-vector asset or a foreign teacher folder
would otherwise surface only when its stage starts, after the teacher has trained for minutes or hours,
leaving a half-made run folder. `mkd run` calls `check_inputs` first; each problem is the same one-line
error its stage would give (a missing column lists the columns that exist).
"""

from __future__ import annotations

from mkd.config import Recipe
from mkd.errors import MkdError, did_you_mean
from mkd.stages.baselines import check_baselines


def check_inputs(recipe: Recipe) -> None:
    """Task files (columns, labels), unlabelled files, the teacher, per-task teachers, the student (its
    settings, vectors, and the encoder it borrows from)."""
    from mkd.data.transfer import read_unlabelled
    from mkd.models.pretrained import resolve
    from mkd.stages.augment import augment_config
    from mkd.stages.student_encoder import trains_teacher
    from mkd.tasks import load_recipe_tasks

    tasks = load_recipe_tasks(recipe)
    for cfg in recipe.tasks:
        for path, columns in cfg.unlabelled_files():
            for _ in read_unlabelled(tasks[cfg.name].spec, path, columns):
                pass
    _check_teachers(recipe, tasks)
    _check_student(recipe)
    check_baselines(recipe)
    if trains_teacher(recipe):
        resolve(recipe.teacher.model, recipe.fetch_missing)
    if any(_augments(augment_config(recipe, t)) for t in recipe.tasks):
        from mkd.assets import asset_path

        asset_path("spacy-en-md", recipe.fetch_missing)  # the tagger of Tang et al.'s rules
    unknown = [t for t in recipe.finetune.tasks or [] if t not in tasks]
    if recipe.finetune.enabled and unknown:
        raise MkdError(f"finetune.tasks names {unknown[0]}, which is not a task of the recipe", "fix finetune.tasks")


def _augments(cfg) -> bool:
    return cfg.enabled and (cfg.n_iter is None or cfg.n_iter > 0)


def _check_teachers(recipe: Recipe, tasks: dict) -> None:
    """Every per-task teacher, opened by its own adaptor (mkd.teachers): folders, safetensors, configs,
    label names and logits files are checked; no weights are loaded."""
    from mkd.teachers import task_teachers

    given = recipe.transfer.teachers or {}
    unknown = [t for t in given if t not in tasks]
    if unknown:
        raise MkdError(f"transfer.teachers names task '{unknown[0]}', which is not in the recipe",
                       did_you_mean(unknown[0], tasks))
    if given:
        task_teachers(recipe, {t: tasks[t].spec for t in given}, tasks=list(given))


def _check_student(recipe: Recipe) -> None:
    """The student's kind checks its own settings and assets (models/students); the encoder it borrows from
    is found and opened (stages/student_encoder.py)."""
    from mkd.models.students import check_student
    from mkd.stages.student_encoder import check_encoder

    check_student(recipe.student, recipe.fetch_missing)
    check_encoder(recipe)
