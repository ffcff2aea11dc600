"""Stage 1: the multi-task refined teacher (a recipe with one task gives a single-task teacher)."""

from __future__ import annotations

import time
from pathlib import Path

from mkd import dist
from mkd.config import Recipe
from mkd.data.evaluate import evaluate_tasks
from mkd.io import atomic_dir, write_json
from mkd.models.teacher import TeacherModel
from mkd.stages.common import (
    SCORING,
    claim_run,
    copy_logs,
    data_stamp,
    encode_splits,
    is_fresh,
    mark_done,
    metrics_document,
    run_dir,
    say,
    seed_everything,
    table_lines,
    trained_for,
)
from mkd.stages.lineage import replacing
from mkd.stages.resume import finish_work, prepare_work
from mkd.tasks import load_recipe_tasks
from mkd.train.loop import fit
from mkd.train.losses import gold_loss


def teach(recipe: Recipe, resume: bool = False, force: bool = False, restart: bool = False) -> Path:
    run = run_dir(recipe, force)
    out = run / "teacher"
    fingerprint = recipe.section_hash("tasks", "teacher") + data_stamp(recipe)
    if not force and is_fresh(out, fingerprint):
        say(f"teach: unchanged, kept {out}")
        return out
    started = time.time()
    tasks = load_recipe_tasks(recipe)
    specs = {t: d.spec for t, d in tasks.items()}
    cfg = recipe.teacher
    seed_everything(recipe.seed)  # the task heads' initial weights: the same in every run of this recipe
    model = TeacherModel.from_pretrained(cfg.model, specs, cfg.max_length, cfg.dropout, cfg.pooling,
                                         cfg.trust_remote_code, recipe.fetch_missing)
    train, dev = encode_splits(model, tasks, "train"), encode_splits(model, tasks, "dev")
    say(f"teach: {cfg.model} on " + ", ".join(f"{t} ({len(train[t])} train)" for t in sorted(train)))
    claim_run(recipe)
    work, resume = prepare_work(run, "teacher", fingerprint, resume, restart)
    result = fit(model, specs, train, dev, gold_loss, cfg.train, work, recipe.seed, fingerprint, resume, "teach")
    per_split = {"dev": evaluate_tasks(model, specs, dev, cfg.train.eval_batch_size, precision=SCORING)}
    test = encode_splits(model, tasks, "test")
    if test:
        per_split["test"] = evaluate_tasks(model, specs, test, cfg.train.eval_batch_size, precision=SCORING)
    if dist.is_main():
        with replacing(run, out, "teach"), atomic_dir(out) as tmp:
            model.save(tmp)
            write_json(tmp / "metrics.json", metrics_document(per_split, precision=SCORING))
            recipe.save(tmp)
            copy_logs(work, tmp)
            mark_done(tmp, "teach", fingerprint, started - result.earlier_seconds, steps=result.steps,
                      best_step=result.best_step, stopped_early=result.stopped_early, **trained_for(result),
                      precision=result.precision)
    dist.barrier()
    finish_work(work)
    for line in table_lines(per_split, sorted(specs)):
        say(line)
    say(f"teach: wrote {out} in {time.time() - started:.0f}s")
    return out
