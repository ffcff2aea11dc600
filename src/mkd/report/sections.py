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


def headline(summary: dict[str, Any]) -> list[str]:
    """One sentence per student: the share of the teacher's macro it keeps, its speed-up, its size."""
    models = summary["models"]
    teacher = models.get("teacher")
    lines = []
    for name, m in models.items():
        if name == "teacher":
            continue
        parts = []
        if teacher and teacher.get("macro"):
            parts.append(f"{100 * m['macro'] / teacher['macro']:.0f}% of the teacher's macro")
        else:
            parts.append(f"macro {m['macro']:.1f}")
        up = m.get("speedup_vs_teacher")
        parts.append(f"at {up:.1f}x its speed" if up else "speed not measured")
        status = m.get("status", "current")
        note = "" if status == "current" else f" ({status})"
        lines.append(f"{name}: {' '.join(parts[:1])} {parts[1]}, {_mb(size_mb(m['path']))}{note}")
    if not lines and teacher:
        lines.append(f"teacher only: macro {teacher['macro']:.1f}, {_mb(size_mb(teacher['path']))}")
    return lines


def retained_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per student and task: its test score as a share of the teacher's (and both scores)."""
    models = summary["models"]
    teacher = models.get("teacher")
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    head = ["student", *tasks, "macro"]
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
        macro = f"{100 * m['macro'] / teacher['macro']:.1f}%" if teacher.get("macro") else "-"
        rows.append([name, *cells, macro])
    return head, rows


def stage_times(run: Path, summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per stage: what making its output took (its stage.json) and what it took in the last `mkd run`
    (seconds when it was kept unchanged); then the models this recipe does not make."""
    last = read_json(run / "times.json") if (run / "times.json").is_file() else {}
    made: dict[str, float] = {}
    for folder, stage in (("teacher", "teach"), ("transfer", "augment"), ("bench", "bench")):
        path = run / folder / "stage.json"
        if path.is_file() and read_json(path).get("wall_seconds") is not None:
            made[stage] = read_json(path)["wall_seconds"]
    others = []
    for name, m in summary["models"].items():
        if name == "teacher" or m.get("wall_seconds") is None:
            continue
        stage = "finetune" if "/" in name else "distill"
        if m.get("status", "current") == "current":
            made[stage] = made.get(stage, 0.0) + m["wall_seconds"]
        else:
            others.append([f"{stage} {name} ({m['status']})", _seconds(m["wall_seconds"]), "-"])
    rows = [[stage, _seconds(made.get(stage)), _seconds(last.get(stage), kept=True)]
            for stage in dict.fromkeys([*last, *made])]
    return ["stage", "making its output", "in the last mkd run"], rows + others


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
