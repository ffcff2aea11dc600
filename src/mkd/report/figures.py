"""The report's figures, each legible with many models: learning curves one panel per model against its
own steps, the accuracy/speed Pareto plot per task (mkd.report.plots), and per-task scores with the legend
outside the bars. Every figure is returned as base64 PNG for a self-contained page."""

from __future__ import annotations

import base64
import csv
import io
import math
from pathlib import Path
from typing import Any

from mkd.io import read_json
from mkd.report.baselines import baseline_points
from mkd.report.plots import Point, draw_pareto, pareto_figure

COLUMNS = 3  # learning-curve panels per row


def png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def curves(models: dict[str, Any]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """model -> series ("<task>" primary dev metric, "macro") -> (step, value), from eval_log.csv."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for name, m in models.items():
        log = Path(m["path"]) / "eval_log.csv"
        if not log.is_file() or not (Path(m["path"]) / "mkd.json").is_file():
            continue
        meta = read_json(Path(m["path"]) / "mkd.json")["tasks"]
        series: dict[str, list[tuple[int, float]]] = {}
        with open(log, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                task = row["task"]
                if (task in meta and row["metric"] == meta[task]["primary"]) or task == "macro":
                    series.setdefault(task, []).append((int(row["step"]), float(row["value"])))
        if series:
            out[name] = series
    return out


def curves_figure(models: dict[str, Any]) -> Any | None:
    """One small panel per model (its own step axis), a line per task and the dev macro dashed."""
    import matplotlib.pyplot as plt

    found = curves(models)
    if not found:
        return None
    tasks = sorted({t for s in found.values() for t in s if t != "macro"})
    colours = {t: f"C{i}" for i, t in enumerate(tasks)}
    cols = min(COLUMNS, len(found))
    rows = math.ceil(len(found) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(found):]:
        ax.set_axis_off()
    for ax, (name, series) in zip(axes.flat, found.items(), strict=False):
        for task, points in sorted(series.items()):
            xs, ys = zip(*points, strict=True)
            style = {"color": "black", "linestyle": "--", "linewidth": 1.0} if task == "macro" else {
                "color": colours[task], "marker": "o", "markersize": 3}
            ax.plot(xs, ys, label=task, **style)
        steps = max(p[0] for s in series.values() for p in s)
        ax.set_title(f"{name} ({steps} steps)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    handles, labels = next(iter(axes.flat)).get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1.0 + 0.06 / rows))
    fig.supylabel("dev primary metric", fontsize=9)
    fig.tight_layout()
    return fig


def pareto_points(summary: dict[str, Any], bench: dict[str, Any]) -> dict[str, list[Point]]:
    """Per task: (model, examples/s of its fastest serving path on that task's dev texts at the large batch,
    as the speed-up counts it, test primary score)."""
    big = summary.get("batch_size_for_speed")
    out: dict[str, list[Point]] = {}
    for name, m in summary["models"].items():
        for task in m["tasks"]:
            cell = (m.get("test") or m.get("dev") or {}).get("tasks", {}).get(task)
            figures = bench.get("tasks", {}).get(task, {}).get(name, {})
            paths = [f.get(f"batch_{big}", {}).get("examples_per_s") for f in (figures.get("paths") or {}).values()]
            speed = max((v for v in paths if v), default=None) or figures.get(f"batch_{big}", {}).get(
                "examples_per_s") or m.get("best_examples_per_s") or m.get("examples_per_s")
            if cell and speed:
                out.setdefault(task, []).append(Point(name, float(speed), float(next(iter(cell.values())))))
    for task, found in baseline_points(summary).items():  # marked as baselines
        if task in out:
            out[task].extend(found)
    return out


def pareto_png(summary: dict[str, Any], bench: dict[str, Any]) -> str | None:
    """mkd.report.plots' Pareto panels, taller when many models share a panel (their labels stack up)."""
    points = pareto_points(summary, bench)
    if not points:
        return None
    most = max(len(p) for p in points.values())
    if most <= 5:
        return png(pareto_figure(points, metric="test primary metric"))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(6.2 * len(points), 4.2 + 0.3 * (most - 5)), squeeze=False)
    for ax, (task, found) in zip(axes[0], points.items(), strict=True):
        draw_pareto(ax, found, task, "test primary metric")
    fig.tight_layout()
    return png(fig)


def scores_figure(summary: dict[str, Any]) -> Any:
    """Per-task test scores, a bar per model; the legend sits outside, so nine models fit."""
    import matplotlib.pyplot as plt

    models = summary["models"]
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(tasks) * max(2, len(models)) / 2), 3.8))
    width = 0.8 / max(1, len(models))
    for i, (name, m) in enumerate(models.items()):
        vals = []
        for t in tasks:
            cell = (m.get("test") or {}).get("tasks", {}).get(t)
            vals.append(next(iter(cell.values())) if cell else 0.0)
        ax.bar([j + i * width for j in range(len(tasks))], vals, width, label=name, color=f"C{i % 10}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
    ax.set_ylabel("test primary metric")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def figures(summary: dict[str, Any], bench: dict[str, Any]) -> dict[str, str]:
    """Title -> base64 PNG, in reading order."""
    import matplotlib

    matplotlib.use("Agg")
    out: dict[str, str] = {}
    pareto = pareto_png(summary, bench)
    if pareto:
        out["Accuracy against speed (Pareto front per task)"] = pareto
    curve = curves_figure(summary["models"])
    if curve is not None:
        out["Learning curves (dev, each model against its own steps)"] = png(curve)
    out["Per-task test scores"] = png(scores_figure(summary))
    return out
