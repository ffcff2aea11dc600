"""The report's words and tables: the trade in one sentence per student, retained quality per task,
stage times, the machine as readable text, and the recipe reduced to what differs from the defaults."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import yaml

from mkd.io import read_json


def size_mb(folder: str | Path) -> float | None:
    """The model's weights on disk (its .safetensors files), in MB."""
    files = list(Path(folder).glob("*.safetensors"))
    return sum(f.stat().st_size for f in files) / 1e6 if files else None


def _mb(value: float | None) -> str:
    if value is None:
        return "size unknown"
    return f"{value:.1f} MB" if value >= 1 else f"{value * 1000:.0f} kB"


def primary(m: dict[str, Any], task: str, split: str = "test") -> float | None:
    cell = (m.get(split) or {}).get("tasks", {}).get(task)
    return float(next(iter(cell.values()))) if cell else None


def teacher_over(teacher: dict[str, Any] | None, tasks: list[str], split: str = "test") -> float | None:
    """The teacher's macro over these tasks only (the mean of its primary scores on them): what a model
    of these tasks is compared with. None when the teacher lacks a score on one of them."""
    scores = [primary(teacher, t, split) for t in tasks] if teacher else []
    return sum(scores) / len(scores) if scores and all(v is not None for v in scores) else None  # type: ignore[misc]


def scored_tasks(m: dict[str, Any]) -> list[str]:
    """The tasks a model's macro is over: those it was scored on (a model fine-tuned on one task keeps
    every head of its student, but is scored on its own task only)."""
    found = ((m.get("test") or m.get("dev") or {}).get("tasks") or {})
    return sorted(found) or list(m["tasks"])


def share_of_teacher(m: dict[str, Any], teacher: dict[str, Any] | None) -> float | None:
    """A model's test macro as a percentage of the teacher's macro over the model's own tasks."""
    theirs = teacher_over(teacher, scored_tasks(m))
    return 100 * m["macro"] / theirs if theirs and m.get("macro") is not None else None


def _of_whom(m: dict[str, Any], teacher: dict[str, Any]) -> str:
    """"the teacher's macro", or the teacher's score on the model's tasks when they are fewer."""
    tasks = scored_tasks(m)
    if set(tasks) == set(teacher.get("tasks") or tasks):
        return "the teacher's macro"
    if len(tasks) <= 3:
        return f"the teacher's {' + '.join(tasks)}"
    return f"the teacher's macro over its {len(tasks)} tasks"


def headline(summary: dict[str, Any]) -> list[str]:
    """One sentence per student: the share of the teacher's score on the same tasks it keeps, its
    speed-up, its size (what the speed-ups divide by: speed_base_line)."""
    models = summary["models"]
    teacher = models.get("teacher")
    lines = []
    for name, m in models.items():
        if name == "teacher":
            continue
        share = share_of_teacher(m, teacher)
        first = f"{share:.0f}% of {_of_whom(m, teacher or {})}" if share is not None else f"macro {m['macro']:.1f}"
        up = m.get("speedup_vs_teacher")
        speed = f"at {up:.1f}x its speed" if up else "speed not measured"
        status = m.get("status", "current")
        note = "" if status == "current" else f" ({status})"
        lines.append(f"{name}: {first} {speed}, {_mb(size_mb(m['path']))}{note}")
    if not lines and teacher:
        lines.append(f"teacher only: macro {teacher['macro']:.1f}, {_mb(size_mb(teacher['path']))}")
    return lines


PATH_NAMES = {"torch_fp32": "PyTorch fp32", "torch_precision": "PyTorch at the run's precision",
              "onnx_fp32": "ONNX Runtime fp32", "onnx_int8": "ONNX Runtime int8"}


def speed_base_line(summary: dict[str, Any]) -> str | None:
    """The speed-ups' base in words: the teacher's path, its speed and accuracy, and what did not count."""
    base = summary.get("speed_base")
    if not base:
        return None
    path = PATH_NAMES.get(base.get("path") or "", base.get("path") or "PyTorch")
    score = f", {base['score']:.2f} ({base['score_on']})" if base.get("score") is not None else ""
    line = f"speed-ups against the teacher's {path}: {base['examples_per_s']:.0f} examples/s{score}"
    refused = "; ".join(f"{PATH_NAMES.get(p, p)} not counted: {why}" for p, why in (base.get("refused") or {}).items())
    return line + (f" ({refused})" if refused else "")


def retained_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per student and task: its test score as a share of the teacher's (and both scores); the macro
    column against the teacher's macro over the student's own tasks."""
    models = summary["models"]
    teacher = models.get("teacher")
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    head = ["student", *tasks, "macro (own tasks)"]
    rows = []
    if not teacher:
        return head, rows
    for name, m in models.items():
        if name == "teacher":
            continue
        cells = []
        for t in tasks:
            mine, theirs = primary(m, t), primary(teacher, t)
            cells.append(f"{100 * mine / theirs:.1f}% ({mine:.1f} / {theirs:.1f})" if mine is not None and theirs
                         else "-")
        share = share_of_teacher(m, teacher)
        rows.append([name, *cells, f"{share:.1f}%" if share is not None else "-"])
    return head, rows


def stage_times(run: Path, summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per stage: what making its output took (its stage.json, counting the work before a resume) and
    what it took in the last `mkd run` (seconds when it was kept unchanged); then the models this recipe
    does not make."""
    last = read_json(run / "times.json") if (run / "times.json").is_file() else {}
    made: dict[str, float] = {}
    notes: dict[str, str] = {}
    for folder, stage in (("teacher", "teach"), ("transfer", "augment"), ("bench", "bench")):
        path = run / folder / "stage.json"
        if path.is_file() and read_json(path).get("wall_seconds") is not None:
            made[stage] = read_json(path)["wall_seconds"]
            notes[stage] = _resumed(read_json(path))
    _label_time(run, made, notes)
    others = []
    for name, m in summary["models"].items():
        if name == "teacher" or m.get("wall_seconds") is None:
            continue
        stage = "finetune" if "/" in name else "distill"
        if m.get("status", "current") == "current":
            made[stage] = made.get(stage, 0.0) + m["wall_seconds"]
            notes[stage] = notes.get(stage) or _resumed(m)
        else:
            others.append([f"{stage} {name} ({m['status']})", _seconds(m["wall_seconds"]) + _resumed(m), "-"])
    rows = [[stage, _seconds(made.get(stage)) + notes.get(stage, ""), _seconds(last.get(stage), kept=True)]
            for stage in dict.fromkeys([*last, *made])]
    return ["stage", "making its output", "in the last mkd run"], rows + others


def _resumed(stage: dict[str, Any]) -> str:
    """" (resumed at step N)" for a model trained over several processes (its time counts them all)."""
    step = stage.get("resumed_step")
    return f" (resumed at step {step})" if step else ""


def _label_time(run: Path, made: dict[str, float], notes: dict[str, str]) -> None:
    """The labelling's time (transfer/label.json); a labelling that kept shards labelled before it resumed
    an earlier one, whose time is not known: it says so."""
    path = run / "transfer" / "label.json"
    if not path.is_file():
        return
    doc = read_json(path)
    made["label"] = doc["wall_seconds"]
    kept = sum(t.get("kept", 0) for t in doc.get("tasks", {}).values())
    if kept:
        notes["label"] = f" (resumed: {kept} shard(s) labelled before, not counted)"


def _seconds(value: float | None, kept: bool = False) -> str:
    if value is None:
        return "-"
    if kept and value < 0.05:  # a stage that found its output up to date does not even load data
        return "kept (unchanged)"
    if value < 90:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("mkd", "torch", "transformers", "onnxruntime"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_text(summary: dict[str, Any], recipe: dict[str, Any]) -> str:
    """The machine of the speed figures, as a sentence."""
    m = summary.get("machine") or {}
    cpu = summary.get("cpu") or m.get("processor") or "unknown CPU"
    threads = m.get("threads")
    used = [f"{name} {mod['precision']}" for name, mod in (summary.get("models") or {}).items()
            if mod.get("precision")]
    setting = (recipe.get("teacher", {}).get("train", {}) or {}).get("mixed_precision", "no")
    trained = ", ".join(used) if used else ("fp32" if setting in (None, "no") else setting)
    return (f"CPU: {cpu} ({m.get('platform', platform.platform())}); PyTorch threads: {threads or '?'}; "
            "speed: every serving path (PyTorch fp32 and at the run's precision, ONNX Runtime fp32 and int8), "
            f"the fastest counts; training precision: {trained}; Python {m.get('python', '?')}; {_versions()}")


def _diff(value: Any, default: Any) -> Any:
    """The parts of `value` that differ from `default` (nested mappings; lists compared whole)."""
    if isinstance(value, dict) and isinstance(default, dict):
        out = {k: d for k, v in value.items() if (d := _diff(v, default.get(k, _MISSING))) is not _SAME}
        return out or _SAME
    return _SAME if value == default else value


_SAME, _MISSING = object(), object()


def recipe_changes(text: str) -> str:
    """The recipe as YAML with only what differs from mkd's defaults (each task: only its own keys)."""
    from mkd.config import Recipe, TaskConfig

    try:
        recipe = Recipe.model_validate(yaml.safe_load(text))
    except Exception:  # an older or hand-edited recipe.yaml: show it whole
        return text
    data = recipe.model_dump(mode="json")
    default = Recipe(name=recipe.name, tasks=recipe.tasks).model_dump(mode="json")
    changed = _diff({k: v for k, v in data.items() if k != "tasks"}, {k: v for k, v in default.items()
                                                                      if k != "tasks"})
    tasks = []
    for task in recipe.tasks:
        own = _diff(task.model_dump(mode="json"), TaskConfig(name=task.name).model_dump(mode="json"))
        tasks.append({"name": task.name, **(own if own is not _SAME else {})})
    out = {"name": recipe.name, "tasks": [t if len(t) > 1 else t["name"] for t in tasks]}
    if changed is not _SAME:
        out.update({k: v for k, v in changed.items() if k != "name"})
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
