"""`mkd baselines`: the gold-only models a user could ship instead (mkd.baselines), trained on the run's
exact splits, so that every run says whether distilling paid off.

Each baseline of the recipe (`baselines:`, default model2vec and fastText) fits every task's gold train
split, chooses its settings on dev and is scored on test, into runs/<name>/baselines/<baseline>/<task>/.
model2vec's vectors come from the run's base encoder (teacher.model) unless its options say otherwise.
A baseline that cannot run here (its optional extra is missing, or it fails) is one line and the run
goes on without it. The stage is skipped when its tasks, data, seed and baselines are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from mkd.baselines import BASELINES, train_baselines
from mkd.config import BaselineConfig, Recipe
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.stages.common import claim_run, data_stamp, is_fresh, mark_done, run_dir, say

FOLDER = "baselines"
RECORDS = "baselines.json"
BENCH_PREFIX = "baseline:"  # how a baseline is named in bench_folders, apart from model folders


def check_baselines(recipe: Recipe) -> None:
    """Every baseline name is known (one line with a did-you-mean otherwise); nothing is imported."""
    for b in recipe.baselines:
        try:
            BASELINES.get(b.name)
        except MkdError as e:
            raise MkdError(f"baselines: {e.problem}", e.fix) from None


def _options(recipe: Recipe, cfg: BaselineConfig) -> dict[str, Any]:
    """model2vec's vectors come from the run's base encoder (teacher.model), unless the recipe says."""
    options = dict(cfg.options)
    if cfg.name == "model2vec" and "vectors" not in options and "encoder" not in options:
        from mkd.models.pretrained import resolve

        where = resolve(recipe.teacher.model, recipe.fetch_missing)
        if not Path(where).is_dir():
            raise MkdError(f"teacher.model {recipe.teacher.model} is not a local folder or asset to distil vectors "
                           "from", "give the baseline options: {encoder: FOLDER} or {vectors: FOLDER}")
        options["encoder"] = where
    return options


def _fingerprint(recipe: Recipe) -> str:
    """Tasks, data files, seed, the baselines' settings, the base encoder and which extras are here."""
    parts = [recipe.section_hash("tasks"), data_stamp(recipe), recipe.teacher.model,
             [b.model_dump(mode="json") for b in recipe.baselines],
             [_installed(b.name) for b in recipe.baselines]]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _installed(name: str) -> bool:
    """Whether the packages of a baseline's extra are installed, without importing them (seconds)."""
    return all(find_spec(m.split(".")[0]) is not None for m in BASELINES.get(name).modules)


def baselines_stage(recipe: Recipe, force: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """Train, choose on dev and score every baseline of the recipe on every task; {baseline: {task: record}}."""
    from mkd.tasks import load_recipe_tasks

    if not recipe.baselines:
        say("baselines: off (baselines: [])")
        return {}
    check_baselines(recipe)
    run = run_dir(recipe, force)
    out = run / FOLDER
    fingerprint = _fingerprint(recipe)
    if not force and is_fresh(out, fingerprint) and (out / RECORDS).is_file():
        say(f"baselines: unchanged, kept {out}")
        return read_json(out / RECORDS)
    started = time.time()
    tasks = load_recipe_tasks(recipe)
    claim_run(recipe)
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for cfg in recipe.baselines:
        grids = {cfg.name: {**BASELINES.get(cfg.name).grid, **cfg.grid}} if cfg.grid else None
        try:
            options = {cfg.name: _options(recipe, cfg)}
            records.update(train_baselines([cfg.name], tasks, out, recipe.seed, grids, options, say=say))
        except Exception as e:  # a baseline is a comparison, never a reason to lose the run
            why = f"baseline {cfg.name} failed ({' '.join(str(e).split())[:200] or type(e).__name__})"
            say(f"skipped: {why}")
            records[cfg.name] = {t: {"skipped": why} for t in tasks}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RECORDS, records)
    mark_done(out, "baselines", fingerprint, started)
    trained = [f"{b} {_primary_line(r)}" for b, per in records.items() for r in per.values() if "skipped" not in r]
    say(f"baselines: {len(trained)} trained in {time.time() - started:.0f}s" + (f": {'; '.join(trained)}"
                                                                                if trained else ""))
    return records


def _primary_line(record: dict[str, Any]) -> str:
    test = _test(record)
    primary = record.get("primary")
    value = test.get(primary) if primary in test else next(iter(test.values()), None)
    return f"{record['task']} test {primary} {value:.2f}" if value is not None else record["task"]


def _test(record: dict[str, Any]) -> dict[str, float]:
    splits = record.get("test") or {}
    return splits.get("test") or next(iter(splits.values()), {})


def trained_baselines(recipe: Recipe) -> dict[str, dict[str, Path]]:
    """{baseline: {task: folder}} of the recipe's baselines trained in the run folder (none: {})."""
    path = recipe.run_dir / FOLDER / RECORDS
    if not recipe.baselines or not path.is_file():
        return {}
    records = read_json(path)
    wanted = [b.name for b in recipe.baselines]
    return {b: {t: Path(r["folder"]) for t, r in records[b].items() if "folder" in r}
            for b in wanted if b in records}


def bench_baselines(recipe: Recipe, task: str) -> dict[str, Path]:
    """The baselines to bench on one task, named apart from model folders (BENCH_PREFIX)."""
    return {f"{BENCH_PREFIX}{b}": per[task] for b, per in trained_baselines(recipe).items() if task in per}


def baselines_key(recipe: Recipe) -> str:
    """What the bench's fingerprint adds for the baselines: their keys ('' when there are none)."""
    keys = [read_json(f / "baseline.json").get("key", "") for per in trained_baselines(recipe).values()
            for f in per.values() if (f / "baseline.json").is_file()]
    return ",".join(keys)


def baselines_summary(recipe: Recipe, bench: dict[str, Any], big: int) -> dict[str, dict[str, dict[str, Any]]]:
    """summary.json's `baselines`: per baseline and task, dev and test metrics, examples/s in the run's
    bench (batch `big` and 1), the setting chosen on dev and the training time; or why it was skipped."""
    path = recipe.run_dir / FOLDER / RECORDS
    if not recipe.baselines or not path.is_file():
        return {}
    records = read_json(path)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for b in (c.name for c in recipe.baselines if c.name in records):
        out[b] = {}
        for task, r in records[b].items():
            if "skipped" in r:
                out[b][task] = {"skipped": r["skipped"]}
                continue
            fig = bench.get("baselines", {}).get(task, {}).get(b, {})
            out[b][task] = {
                "title": r["title"], "primary": r["primary"], "dev": r["dev"], "test": _test(r),
                "examples_per_s": fig.get(f"batch_{big}", {}).get("examples_per_s"),
                "examples_per_s_batch_1": fig.get("batch_1", {}).get("examples_per_s"),
                "chosen": r["chosen"], "train_seconds": r["train_seconds"], "folder": r["folder"]}
    return out


def split_baselines(per_task: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Take the baselines' figures out of the bench's per-task figures: {"baselines": {task: {name: ..}}}."""
    found: dict[str, dict[str, Any]] = {}
    for task, figures in per_task.items():
        for name in [n for n in figures if n.startswith(BENCH_PREFIX)]:
            found.setdefault(task, {})[name.removeprefix(BENCH_PREFIX)] = figures.pop(name)
    return {"baselines": found} if found else {}


def baselines_section(recipe: Recipe, bench: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json's `baselines` and `baseline_verdict` (nothing when the run has no baselines)."""
    from mkd.report.baselines import verdicts

    found = baselines_summary(recipe, bench, summary["batch_size_for_speed"])
    if not found:
        return {}
    return {"baselines": found, "baseline_verdict": verdicts({**summary, "baselines": found}, bench)}


def say_verdict(summary: dict[str, Any]) -> None:
    """The report's verdict on the console: does the student beat the baselines at its speed?"""
    from mkd.report.baselines import verdict_lines

    for line in verdict_lines(summary.get("baseline_verdict") or {}):
        say(f"verdict: {line}")
