"""`mkd run`: every stage in order, each skipped when its fingerprint says nothing changed, then
the speed benchmark, summary.json and the report."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from mkd.config import Recipe
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.serving.bench import machine
from mkd.stages.baselines import baselines_section, baselines_stage, say_verdict
from mkd.stages.common import finetuned_folder, is_fresh, mark_done, model_folders, run_dir, say
from mkd.stages.preflight import check_inputs
from mkd.stages.student_encoder import student_encoder
from mkd.stages.teacher_scores import evaluate_teachers, needs_run_teacher, own_teachers, teacher_entry


def bench_stage(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Throughput of every model of the run on each task's dev texts (tokenization included). Models
    whose weights and bench settings are unchanged keep their figures (bench/cache.json), unless forced."""
    from mkd.serving.bench import CACHE, bench_folders, default_precision, gate_texts
    from mkd.serving.fast_bench import Shared
    from mkd.stages.baselines import baselines_key, bench_baselines, split_baselines
    from mkd.tasks import load_recipe_tasks

    if not recipe.bench.enabled:
        say("bench: off (bench.enabled: false)")
        return {}
    run = recipe.run_dir
    folders = model_folders(run) if run.is_dir() else {}
    if not folders:
        raise MkdError(f"no trained model in {run} to benchmark", "run mkd teach and mkd distill (or mkd run) first")
    stages = [f / "stage.json" for f in folders.values()]
    inputs = "".join(read_json(p)["fingerprint"] for p in stages if p.exists())
    extra = baselines_key(recipe)  # '' without baselines: the fingerprint of such a run is as before
    digest = hashlib.sha256((inputs + ",".join(folders) + extra).encode()).hexdigest()[:16]
    fingerprint = recipe.section_hash("bench") + digest
    out = run / "bench"
    if not force and is_fresh(out, fingerprint):
        say("bench: unchanged, kept bench/bench.json")
        return read_json(out / "bench.json")
    started = time.time()
    tasks = load_recipe_tasks(recipe)
    cfg = recipe.bench
    cache = read_json(out / CACHE) if (out / CACHE).is_file() and not force else {}
    per_task = {}
    with tempfile.TemporaryDirectory(prefix="mkd-bench-") as scratch:  # each model loaded and exported once
        shared = Shared(Path(scratch), {t: data.split("dev")[: cfg.examples] for t, data in tasks.items()},
                        {t: gate_texts(data) for t, data in tasks.items()})
        for t in tasks:
            usable = {n: f for n, f in folders.items() if t in read_json(f / "mkd.json")["tasks"]}
            per_task[t] = bench_folders(usable, t, shared.examples[t], cfg.batch_sizes, cfg.rounds,
                                        threads=cfg.threads, precision=default_precision(recipe.precision),
                                        cache=cache, gate=shared.gate[t], budget_s=cfg.budget_s, shared=shared,
                                        baselines=bench_baselines(recipe, t))
    apart = split_baselines(per_task)  # the baselines' figures move to bench.json's "baselines"
    result = {"machine": {**machine(), "threads": cfg.threads}, "tasks": per_task, "batch_sizes": cfg.batch_sizes,
              "rounds": cfg.rounds, "examples": cfg.examples, "threads": cfg.threads, **apart}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CACHE, cache)
    write_json(out / "bench.json", result)
    mark_done(out, "bench", fingerprint, started)
    reused = sum(f["reused"] for b in per_task.values() for f in b.values())
    say(f"bench: {len(folders)} models on {len(per_task)} tasks in {time.time() - started:.0f}s"
        + (f" ({reused} model-task figures reused: weights unchanged)" if reused else ""))
    return result


def summarize(recipe: Recipe) -> dict[str, Any]:
    """summary.json: per model, dev/test metrics per task, macro, parameters, speed, speed-up."""
    run = recipe.run_dir
    bench = read_json(run / "bench" / "bench.json") if (run / "bench" / "bench.json").is_file() else {}
    big = max(recipe.bench.batch_sizes)
    models: dict[str, Any] = {}
    for name, folder in model_folders(run).items():
        metrics = read_json(folder / "metrics.json")
        meta = read_json(folder / "mkd.json")
        stage = read_json(folder / "stage.json") if (folder / "stage.json").is_file() else {}
        speeds = [b[name][f"batch_{big}"]["examples_per_s"] for b in bench.get("tasks", {}).values() if name in b]
        speeds1 = [b[name]["batch_1"]["examples_per_s"] for b in bench.get("tasks", {}).values()
                   if name in b and "batch_1" in b[name]]
        ort = [b[name]["onnxruntime"][f"batch_{big}"]["examples_per_s"] for b in bench.get("tasks", {}).values()
               if name in b and f"batch_{big}" in b[name].get("onnxruntime", {})]
        models[name] = {
            "arch": meta["arch"], "path": str(folder), "tasks": sorted(meta["tasks"]),
            "dev": metrics["splits"].get("dev"), "test": metrics["splits"].get("test"),
            "macro": metrics["macro"], "parameters": meta["parameters"],
            "examples_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
            "examples_per_s_batch_1": round(sum(speeds1) / len(speeds1), 1) if speeds1 else None,
            "onnx_examples_per_s": round(sum(ort) / len(ort), 1) if ort else None,
            **best_serving(bench.get("tasks", {}), name, big),
            "train_seconds": stage.get("train_seconds"), "wall_seconds": stage.get("wall_seconds"),
            "resumed_step": stage.get("resumed_step"),  # trained over several processes (times count them all)
            "precision": stage.get("precision"),  # the arithmetic it was trained at (scores: fp32, SCORING)
            "status": model_status(recipe, name, folder),
        }
    joined = teacher_entry(recipe, run, models, bench, big)  # the teachers that labelled the tasks
    if joined is not None:
        models = {"teacher": joined, **{k: v for k, v in models.items() if k != "teacher"}}
    teacher = models.get("teacher", {})
    base = teacher.get("best_examples_per_s") or teacher.get("examples_per_s")  # best serving path
    for entry in models.values():
        speed = entry.get("best_examples_per_s") or entry.get("examples_per_s")
        entry["speedup_vs_teacher"] = round(speed / base, 2) if speed and base else None
    transfer = {}
    for t in recipe.tasks:
        manifest = run / "transfer" / t.name / "manifest.json"
        if manifest.is_file():
            transfer[t.name] = read_json(manifest).get("counts", {})
    from mkd.report.sections import cpu_name

    summary = {"recipe": recipe.name, "seed": recipe.seed, "machine": bench.get("machine", machine()),
               "cpu": cpu_name(),
               "batch_size_for_speed": big, "models": models, "transfer": transfer,
               "speed_base": speed_base(teacher, bench.get("examples"))}
    if joined is not None:
        summary["teachers"] = own_teachers(recipe, run)
    summary.update(baselines_section(recipe, bench, summary))
    write_json(run / "summary.json", summary)
    return summary


def speed_base(teacher: dict[str, Any], examples: int | None) -> dict[str, Any] | None:
    """What every speed-up divides by: the teacher's fastest path that passed its gate, its speed, and its
    accuracy (its primary metric on the bench's dev texts where measured; else its test macro, for a
    full-precision path), with the paths that did not count and why."""
    speed = teacher.get("best_examples_per_s") or teacher.get("examples_per_s")
    if not speed:
        return None
    path = teacher.get("best_path")
    score = (teacher.get("path_scores") or {}).get(path or "")
    on = f"dev, {examples} bench texts per task" if score is not None else None
    if score is None and path in (None, "torch_fp32", "onnx_fp32"):
        score, on = teacher.get("macro"), "test macro"
    return {"model": "teacher", "path": path, "examples_per_s": speed, "score": score, "score_on": on,
            "refused": teacher.get("refused_paths") or {}}


def best_serving(tasks: dict[str, Any], name: str, big: int) -> dict[str, Any]:
    """A model's fastest serving path (PyTorch fp32 / run precision, ONNX fp32 / int8) at batch `big`,
    averaged over its tasks, among the paths that passed their gate on every task (mkd.serving.bench
    `checks`): the speed-up compares best with best, never with a path less faithful than mkd accepts.
    Also each path's mean primary metric on the bench texts and why the others do not count."""
    from mkd.serving.bench import PATHS, mean_speed, passed

    figures = {t: b[name] for t, b in tasks.items() if name in b}
    speeds = {p: mean_speed(figures, big, p) for p in PATHS}
    refused = {p: why for p in PATHS if (why := _refusal(figures, p))}
    speeds = {p: v for p, v in speeds.items() if v and p not in refused
              and all(p in f.get("paths", {p: 1}) and passed(f.get("checks"), p) for f in figures.values())}
    best = max(speeds, key=lambda p: speeds[p]) if speeds else None
    scores = {p: _path_score(figures, p) for p in PATHS}
    small = [f.get("paths", {}).get(best or "", {}).get("batch_1", {}) for f in figures.values()]
    latency = {q: round(sum(c[q] for c in small) / len(small), 3) if small and all(q in c for c in small) else None
               for q in ("p50_ms", "p99_ms")}  # one request at a time on that path, averaged over tasks
    return {"best_path": best, "best_examples_per_s": speeds.get(best) if best else None,
            "path_examples_per_s": speeds, "path_scores": {p: v for p, v in scores.items() if v is not None},
            "refused_paths": refused, "best_batch_1_ms": latency}


def _refusal(figures: dict[str, Any], path: str) -> str | None:
    """Why a measured path does not count (under the gate on some task), else None."""
    from mkd.serving.bench import GATE, passed

    for task, f in sorted(figures.items()):
        error = (f.get("onnxruntime") or {}).get("int8_error") if path == "onnx_int8" else None
        if error:
            return f"refused by its export gate on {task}: {error}"
        if path in f.get("paths", {}) and not passed(f.get("checks"), path):
            agree = f["checks"][path].get("agreement")
            return f"agrees with PyTorch fp32 on {agree:.1%} of {task}'s bench texts (< {GATE:.0%})"
    return None


def _path_score(figures: dict[str, Any], path: str) -> float | None:
    """A path's primary metric on the bench texts, averaged over the model's tasks (None when unknown)."""
    values = [((f.get("checks") or {}).get(path) or {}).get("score") for f in figures.values()]
    return round(sum(values) / len(values), 2) if values and all(v is not None for v in values) else None


def model_status(recipe: Recipe, name: str, folder: Path) -> str:
    """"current", or why a model of the run folder is not what the current recipe makes."""
    from mkd.stages.lineage import stale_reason

    stale = stale_reason(folder)
    if stale:
        return f"stale: {stale}"
    own = {"teacher", recipe.student.folder}
    if recipe.finetune.enabled:
        tuned = finetuned_folder(recipe.student.folder)
        own |= {f"{tuned}/{t}" for t in recipe.finetune.tasks or [t.name for t in recipe.tasks]}
    if name in own:
        return "current"
    from mkd.stages.lineage import other_settings

    return other_settings(recipe.model_dump(mode="json"), folder)


def print_table(summary: dict[str, Any]) -> None:
    for line in console_table(summary):
        say(line)


def console_table(summary: dict[str, Any]) -> list[str]:
    """The run's models as aligned lines: every column as wide as its longest cell (long model names,
    long task names and statuses included)."""
    tasks = sorted({t for m in summary["models"].values() for t in m["tasks"]})
    rows = [["model", *tasks, "macro", "params", "no-emb", "best/s", "speed-up"]]
    for name, m in summary["models"].items():
        cells = []
        for t in tasks:
            test = (m.get("test") or {}).get("tasks", {}).get(t)
            cells.append(f"{next(iter(test.values())):.2f}" if test else "-")
        p = m["parameters"]  # None for a teacher that is a logits file
        best = m.get("best_examples_per_s") or m["examples_per_s"]
        status = m.get("status", "current")
        label = name if status == "current" else f"{name} ({status.split(':')[0]})"
        rows.append([label, *cells, f"{m['macro']:.2f}" if m["macro"] is not None else "-",
                     f"{p['total'] / 1e6:.2f}M" if p else "-", f"{p['without_embeddings'] / 1e6:.2f}M" if p else "-",
                     f"{best:.0f}" if best else "-",
                     f"{m['speedup_vs_teacher']:.1f}x" if m.get("speedup_vs_teacher") else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
            for r in rows]


def run_all(recipe: Recipe, force: bool = False, resume: bool = False, restart: bool = False) -> dict[str, Any]:
    """teach, augment, label, distill, finetune (if asked), bench, summary, report."""
    from mkd.tasks import read_once

    with read_once():  # the stages read each task's files once
        return _run_stages(recipe, force, resume, restart)


def _run_stages(recipe: Recipe, force: bool, resume: bool, restart: bool) -> dict[str, Any]:
    from mkd.report.write import write_report
    from mkd.stages.augment import augment
    from mkd.stages.distill import distill, finetune
    from mkd.stages.label import label
    from mkd.stages.teach import teach

    run = run_dir(recipe, force)
    started = time.time()
    check_inputs(recipe)  # every input of every stage, before the teacher trains; nothing is written
    say(f"checked every input in {time.time() - started:.1f}s")
    again = {"resume": resume, "restart": restart}  # label resumes by its finished shards on its own
    steps: list[tuple[str, Any]] = ([("teach", lambda: teach(recipe, force=force, **again))]
                                    if needs_run_teacher(recipe) else [])
    if not steps:
        encoder = student_encoder(recipe)
        lends = f"; the student borrows from {encoder.describe()}" if encoder else ""
        say(f"teach: skipped, every task has its own teacher (transfer.teachers){lends}")
    steps += [("augment", lambda: augment(recipe, force=force)),
              ("label", lambda: label(recipe, force=force)),
              ("distill", lambda: distill(recipe, force=force, **again))]
    if recipe.finetune.enabled:
        steps.append(("finetune", lambda: finetune(recipe, force=force, **again)))
    steps.append(("baselines", lambda: baselines_stage(recipe, force=force)))
    steps.append(("bench", lambda: bench_stage(recipe, force=force)))
    steps.append(("teachers", lambda: evaluate_teachers(recipe, force=force)))
    times = {}
    for name, step in steps:
        started = time.time()
        step()
        times[name] = round(time.time() - started, 2)
        say(f"[{name}] done in {times[name]:.1f}s")
    write_json(run / "times.json", times)  # the report's stage times of this `mkd run`
    summary = summarize(recipe)
    html = write_report(run)
    print_table(summary)
    say(f"summary: {run / 'summary.json'}")
    say(f"report:  {html}")
    say_verdict(summary)
    return summary
