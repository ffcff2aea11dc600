"""The teachers a run actually learned from, measured like its models: every external teacher (a
transfer.teachers entry) on dev and test, and its CPU speed (tokenization included), in
`<run>/teachers/teachers.json`; then one "teacher" entry of summary.json that joins, per task, the
teacher that labelled it, so a student's retained score and speed-up are against that teacher.

A logits file has dev/test scores when its rows cover those splits (`mkd transfer export --splits`) and no
speed (a lookup is not inference).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mkd.config import Recipe
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.tasks.catalog import resolve_spec
from mkd.tasks.metrics import macro, score
from mkd.teachers import task_teachers
from mkd.teachers.base import Teacher, digest

SPLITS = ("dev", "test")


def needs_run_teacher(recipe: Recipe) -> bool:
    """Whether `mkd teach` must run: some task has no teacher of its own, or the student borrows from the
    run's teacher (the student's kind says what it borrows and from where: stages/student_encoder.py)."""
    from mkd.stages.student_encoder import trains_teacher

    return trains_teacher(recipe)


def external_tasks(recipe: Recipe) -> list[str]:
    return [t.name for t in recipe.tasks if t.name in (recipe.transfer.teachers or {})]


def speed(teacher: Teacher, task: str, examples: list, batch_sizes: list[int], rounds: int,
          precision: str = "fp32", threads: int = 1) -> dict[str, Any] | None:
    """Examples/s of the teacher at the run's precision on pinned threads, like the bench's PyTorch path."""
    from mkd.precision import autocast
    from mkd.serving.bench import measure, pinned

    if not teacher.timed() or not examples:
        return None

    def run(part: Any) -> object:
        with autocast(precision, "cpu"):
            return teacher.logits(task, part, max(1, len(part)), "cpu")

    with pinned(threads):
        return measure({"teacher": run}, examples, batch_sizes, rounds)["teacher"]


def evaluate_teachers(recipe: Recipe, force: bool = False) -> dict[str, Any] | None:
    """teachers.json of the run (skipped when nothing changed); None when no task has its own teacher."""
    from mkd.stages.common import data_stamp, is_fresh, mark_done, run_dir, say
    from mkd.tasks import load_task

    names = external_tasks(recipe)
    if not names:
        return None
    run = run_dir(recipe, force)
    out = run / "teachers"
    specs = {t.name: resolve_spec(t) for t in recipe.tasks}
    teachers = task_teachers(recipe, specs, run / ".work" / "sha256.json", tasks=names)
    fingerprint = digest([recipe.section_hash("tasks", "bench"), data_stamp(recipe),
                          {t: teachers[t].fingerprint() for t in names}])[:16]
    if not force and is_fresh(out, fingerprint) and (out / "teachers.json").is_file():
        say("teachers: unchanged, kept teachers/teachers.json")
        return read_json(out / "teachers.json")
    started = time.time()
    cfg = recipe.bench
    batch = recipe.teacher.train.eval_batch_size
    per_task: dict[str, Any] = {}
    for task in names:
        teacher = teachers[task].load("cpu")
        data = load_task(recipe.task(task), recipe.seed, recipe.fetch_missing)
        entry: dict[str, Any] = {**teacher.describe(), "fingerprint": teacher.fingerprint()}
        for split in SPLITS:
            examples = data.splits.get(split)
            gaps = teacher.missing(task, examples) if examples else []
            if not examples or gaps:
                entry[split] = None
                if gaps:
                    entry[f"{split}_note"] = f"no logits for {len(gaps)} of {len(examples)} examples"
                continue
            outputs = teacher.logits(task, examples, batch, "cpu")
            entry[split] = score(data.spec.type, data.spec.metrics, outputs, [e.label for e in examples])
        entry["parameters"] = teacher.parameters()
        from mkd.serving.bench import default_precision

        entry["speed"] = speed(teacher, task, data.split("dev")[: cfg.examples], list(cfg.batch_sizes), cfg.rounds,
                               default_precision(recipe.precision), cfg.threads)
        per_task[task] = entry
        shown = ", ".join(f"{s} {next(iter(entry[s].values())):.2f}" for s in SPLITS if entry.get(s))
        say(f"teachers: {task}: {teacher.kind}:{teacher.source} {shown or '(no dev/test logits)'}")
    for teacher in {id(t): t for t in teachers.values()}.values():
        teacher.unload()
    doc = {"tasks": per_task, "batch_sizes": list(cfg.batch_sizes)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "teachers.json", doc)
    mark_done(out, "teachers", fingerprint, started)
    say(f"teachers: evaluated {len(names)} external teacher(s) in {time.time() - started:.0f}s")
    return doc


def _speed_of(figures: dict[str, Any] | None, batch_size: int) -> float | None:
    return ((figures or {}).get(f"batch_{batch_size}") or {}).get("examples_per_s")


def own_teachers(recipe: Recipe, run: Path) -> dict[str, Any]:
    """teachers.json's entries for the recipe's current transfer.teachers ({} when it has none)."""
    path = run / "teachers" / "teachers.json"
    names = external_tasks(recipe)
    if not names or not path.is_file():
        return {}
    external = {t: e for t, e in read_json(path)["tasks"].items() if t in names}
    if set(external) != set(names):
        raise MkdError(f"{path} does not cover the recipe's own teachers ({', '.join(names)})", "rerun mkd run")
    return external


def teacher_entry(recipe: Recipe, run: Path, models: dict[str, Any], bench: dict[str, Any],
                  big: int) -> dict[str, Any] | None:
    """summary.json's "teacher": per task, the teacher that labelled it (external ones from teachers.json,
    the others from the run's teacher); None when every task used the run's teacher (nothing to join)."""
    external = own_teachers(recipe, run)
    if not external:
        return None
    own = models.get("teacher")
    tasks = [t.name for t in recipe.tasks]
    primaries = {t.name: resolve_spec(t).primary for t in recipe.tasks}
    splits: dict[str, dict[str, Any]] = {s: {} for s in SPLITS}
    speeds: dict[int, list[float | None]] = {1: [], big: []}
    params: dict[str, dict[str, int] | None] = {}  # one count per distinct teacher
    kinds: dict[str, str] = {}
    for task in tasks:
        if task in external:
            entry = external[task]
            for s in SPLITS:
                if entry.get(s):
                    splits[s][task] = entry[s]
            for b in speeds:
                speeds[b].append(_speed_of(entry.get("speed"), b))
            params[entry["fingerprint"]] = entry.get("parameters")
            kinds[task] = f"{entry['kind']}:{entry['source']}"
            continue
        if own is None:
            raise MkdError(f"task {task} has no teacher of its own and the run has no teacher folder",
                           "run mkd teach (or mkd run)")
        for s in SPLITS:
            cell = ((own.get(s) or {}).get("tasks") or {}).get(task)
            if cell:
                splits[s][task] = cell
        for b in speeds:
            speeds[b].append(_speed_of(bench.get("tasks", {}).get(task, {}).get("teacher"), b))
        kinds[task] = f"mkd:{own['path']}"
        params["run"] = own["parameters"]
    per_split = {s: {"tasks": v, "macro": macro(v, primaries)} for s, v in splits.items() if v}
    main = per_split.get("test") or per_split.get("dev") or {"macro": None}
    known = all(p is not None for p in params.values())
    total = {k: sum(p[k] for p in params.values() if p) for k in ("total", "without_embeddings")} if known else None

    def mean(values: list[float | None]) -> float | None:
        return round(sum(values) / len(values), 1) if values and all(v for v in values) else None  # type: ignore[misc]

    return {"arch": "teachers", "path": str(run / "teachers"), "tasks": sorted(tasks),
            "dev": per_split.get("dev"), "test": per_split.get("test"), "macro": main["macro"],
            "parameters": total, "examples_per_s": mean(speeds[big]), "examples_per_s_batch_1": mean(speeds[1]),
            "onnx_examples_per_s": None, "train_seconds": None, "teachers": kinds}
