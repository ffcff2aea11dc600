"""Stages 3 and 4: multi-task distillation into one student, then optional per-task fine-tuning.

A recipe with one task is single-task distillation (Tang et al.'s baseline): no separate code.
Both stages run on the labelled transfer set through the same training loop as the teacher.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from mkd import dist
from mkd.config import Recipe, TrainConfig
from mkd.data.batch import EncodedSplit
from mkd.data.evaluate import evaluate_tasks
from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json, write_json
from mkd.models.base import MkdModel
from mkd.models.loading import load_model
from mkd.stages.common import (
    claim_run,
    copy_logs,
    encode_splits,
    finetuned_folder,
    is_fresh,
    mark_done,
    metrics_document,
    run_dir,
    say,
    seed_everything,
    table_lines,
)
from mkd.stages.lineage import replacing
from mkd.stages.resume import finish_work, prepare_work
from mkd.tasks import TaskData, load_recipe_tasks
from mkd.train.loop import FitResult, fit
from mkd.train.losses import Loss, distillation_loss


def _label_fingerprint(run: Path, task: str) -> str:
    path = run / "transfer" / task / "manifest.json"
    if not path.is_file():
        raise MkdError(f"no transfer set for task {task} in {run / 'transfer'}", "run mkd augment and mkd label first")
    return str(read_json(path).get("label_fingerprint") or "")


def _transfer(model: MkdModel, tasks: dict[str, TaskData], labelled: dict) -> dict[str, EncodedSplit]:
    """The labelled transfer set of each task, encoded for `model` (teacher logits as targets)."""
    return {t: model.encode(tasks[t].spec, examples, targets) for t, (examples, targets) in labelled.items()}


def _read(run: Path, names: list[str]) -> dict:
    from mkd.data.transfer import read_labelled

    return {t: read_labelled(run / "transfer", t) for t in names}


def _train_and_save(recipe: Recipe, model: MkdModel, tasks: dict[str, TaskData], train: dict[str, EncodedSplit],
                    loss: Loss, cfg: TrainConfig, out: Path, stage: str, fingerprint: str, resume: bool,
                    started: float, restart: bool = False) -> FitResult:
    run = recipe.run_dir
    specs = {t: tasks[t].spec for t in train}
    dev = {t: model.encode(specs[t], tasks[t].split("dev")) for t in train}
    claim_run(recipe)
    # one scratch folder per output folder, so students of one run can train side by side
    parts = out.relative_to(run).parts if out.is_relative_to(run) else (out.name,)
    work, resume = prepare_work(run, "-".join((stage, *parts)), fingerprint, resume, restart)
    result = fit(model, specs, train, dev, loss, cfg, work, student_seed(recipe), fingerprint, resume,
                 f"{stage} {out.name}")
    per_split = {"dev": evaluate_tasks(model, specs, dev, cfg.eval_batch_size, precision=result.precision)}
    test = {t: d for t, d in encode_splits(model, {t: tasks[t] for t in train}, "test").items()}
    if test:
        per_split["test"] = evaluate_tasks(model, specs, test, cfg.eval_batch_size, precision=result.precision)
    if dist.is_main():
        with replacing(run, out, stage), atomic_dir(out) as tmp:
            model.save(tmp)
            write_json(tmp / "metrics.json", metrics_document(per_split, precision=result.precision))
            _with_real_dims(recipe, model).save(tmp)
            copy_logs(work, tmp)
            mark_done(tmp, stage, fingerprint, started, steps=result.steps, best_step=result.best_step,
                      train_seconds=round(result.wall_seconds, 2), stopped_early=result.stopped_early,
                      parameters=model.count_parameters(), precision=result.precision)
    dist.barrier()
    finish_work(work)
    for line in table_lines(per_split, sorted(specs)):
        say(line)
    say(f"{stage}: wrote {out} in {time.time() - started:.0f}s")
    return result


def encoder_teacher(recipe: Recipe, run: Path) -> Path | None:
    """The mkd teacher folder a student borrows from (its tokenizer, or vectors distilled from its encoder):
    the run's own teacher, else the first per-task teacher that is an mkd folder; None when there is none."""
    from mkd.teachers import teacher_ref

    if (run / "teacher").is_dir():
        return run / "teacher"
    for task in recipe.tasks:
        ref, internal = teacher_ref(recipe, task.name)
        if not internal and ref.kind == "mkd" and ref.path:
            return Path(str(ref.path)).expanduser()
    return None


def base_encoder(recipe: Recipe) -> Path:
    """The encoder the run's teacher was refined from (teacher.model), for student.vectors_from: base."""
    from mkd.models.pretrained import resolve

    where = Path(resolve(recipe.teacher.model, recipe.fetch_missing))
    if not where.is_dir():
        raise MkdError(f"student.vectors_from is base, but teacher.model '{recipe.teacher.model}' is not on this "
                       "machine", "give teacher.model as an asset name or a local folder, or use vectors_from: refined")
    return where


def _with_real_dims(recipe: Recipe, model: MkdModel) -> Recipe:
    """The recipe as saved beside a student: its embedding_dim is the one the model has (50 for
    GloVe-50d), not the setting for random vectors."""
    dim = getattr(model, "embedding_dim", None)
    if not isinstance(dim, int) or recipe.student.embedding_dim == dim:
        return recipe
    return recipe.model_copy(update={"student": recipe.student.model_copy(update={"embedding_dim": dim})})


def student_seed(recipe: Recipe) -> int:
    return recipe.distill.seed if recipe.distill.seed is not None else recipe.seed


def distill(recipe: Recipe, resume: bool = False, force: bool = False, restart: bool = False) -> Path:
    from mkd.models.students import build_student

    run = run_dir(recipe, force)
    out = run / recipe.student.folder
    names = [t.name for t in recipe.tasks]
    labels = "".join(_label_fingerprint(run, t) for t in names)
    digest = hashlib.sha256(labels.encode()).hexdigest()[:16]
    fingerprint = recipe.section_hash("tasks", "transfer", "student", "distill") + digest
    if not force and is_fresh(out, fingerprint):
        say(f"distill: unchanged, kept {out}")
        return out
    started = time.time()
    tasks = load_recipe_tasks(recipe)
    labelled = _read(run, names)
    texts = (text for examples, _ in labelled.values() for ex in examples for text in ex.texts)
    teacher = base_encoder(recipe) if recipe.student.vectors_from == "base" else encoder_teacher(recipe, run)
    seed_everything(student_seed(recipe))  # random embeddings and initial weights: the same in every run
    model = build_student(recipe.student, {t: tasks[t].spec for t in names}, texts, teacher, recipe.fetch_missing)
    train = _transfer(model, tasks, labelled)
    counts = model.count_parameters()
    say(f"distill: {recipe.student.type} ({counts['total']:,} parameters, {counts['without_embeddings']:,} "
        "without embeddings) on " + ", ".join(f"{t} ({len(train[t])} transfer)" for t in names))
    cfg = recipe.distill
    loss = distillation_loss(cfg.loss, cfg.temperature, cfg.alpha)
    _train_and_save(recipe, model, tasks, train, loss, cfg.train, out, "distill", fingerprint, resume, started,
                    restart)
    return out


def finetune(recipe: Recipe, resume: bool = False, force: bool = False, restart: bool = False) -> list[Path]:
    """One continued training per target task from the multi-task student (teacher logits plus
    gold labels where present, weighted by finetune.alpha)."""
    run = run_dir(recipe, force)
    student = run / recipe.student.folder
    if not (student / "mkd.json").is_file():
        raise MkdError(f"no multi-task student in {student}", "run mkd distill first")
    cfg = recipe.finetune
    targets = cfg.tasks or [t.name for t in recipe.tasks]
    unknown = [t for t in targets if t not in {x.name for x in recipe.tasks}]
    if unknown:
        raise MkdError(f"finetune.tasks names {unknown[0]}, which is not a task of the recipe", "fix finetune.tasks")
    base = read_json(student / "stage.json")["fingerprint"]
    tasks = None
    outs = []
    for t in targets:
        out = run / finetuned_folder(recipe.student.folder) / t
        fingerprint = recipe.section_hash("finetune") + base[:16] + t
        if not force and is_fresh(out, fingerprint):
            say(f"finetune {t}: unchanged, kept {out}")
            outs.append(out)
            continue
        started = time.time()
        tasks = tasks or load_recipe_tasks(recipe)
        model = load_model(student, tasks=targets)
        train = _transfer(model, tasks, _read(run, [t]))
        loss = distillation_loss(recipe.distill.loss, recipe.distill.temperature, cfg.alpha)
        _train_and_save(recipe, model, tasks, train, loss, cfg.train, out, "finetune", fingerprint, resume, started,
                        restart)
        outs.append(out)
    return outs
