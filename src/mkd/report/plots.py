"""The accuracy/speed trade a user decides on: a Pareto plot per task, shared by the run report and the study.

A point is (name, examples/s, score). The front is the set of points that no other point beats on both
axes at once (at least as fast and at least as accurate, better on one); it is drawn as a step line so a
reader sees at a glance which model to pick for the speed they need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Point:
    name: str
    speed: float  # examples/s
    score: float  # the task's primary metric, in points (0-100)
    baseline: bool = False  # a gold-only baseline (mkd.baselines): drawn as a square


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points, fastest first (each next one slower and strictly more accurate)."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (-p.speed, -p.score)):
        if not front or p.score > front[-1].score:
            front.append(p)
    return front


def label_heights(scores: Sequence[float], lo: float, hi: float, step: float) -> list[float]:
    """Heights (axes fraction, 0..1) for the labels of points with these scores, in the same order:
    each near its point, at least `step` apart in score order, all inside the panel (compressed
    evenly when they do not fit)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    step = min(step, 0.96 / max(len(scores), 1))
    placed: list[float] = []
    for i in order:
        y = min(max((scores[i] - lo) / (hi - lo), 0.02), 0.98)
        placed.append(max(y, placed[-1] + step) if placed else y)
    over = placed[-1] - 0.98 if placed else 0.0
    for k in range(len(placed) - 1, -1, -1):  # push the top ones down, keeping the spacing
        if over <= 0:
            break
        placed[k] -= over
        over = placed[k - 1] + step - placed[k] if k else 0.0
    heights = [0.0] * len(scores)
    for i, y in zip(order, placed, strict=True):
        heights[i] = y
    return heights


def draw_pareto(ax: Any, points: Sequence[Point], title: str, metric: str = "score") -> None:
    """Scatter every point on a log speed axis, draw the front, and label every point at the right
    (labels spaced in score order inside the panel, a thin line to their point when moved)."""
    import matplotlib.ticker

    if not points:
        ax.set_axis_off()
        return
    front = {p.name for p in pareto_front(points)}
    for p in points:
        on = p.name in front
        ax.scatter(p.speed, p.score, s=36 if on else 22, color="C3" if on else ("C2" if p.baseline else "C0"),
                   zorder=3, edgecolor="black" if on else "none", linewidth=0.6, marker="s" if p.baseline else "o")
    line = sorted(pareto_front(points), key=lambda p: p.speed)
    if len(line) > 1:
        xs = [p.speed for p in line]
        ys = [p.score for p in line]
        ax.step(xs, ys, where="post", color="C3", linewidth=1.2, alpha=0.8, zorder=2, label="Pareto front")
    if any(p.baseline for p in points):
        ax.scatter([], [], marker="s", color="C2", s=22, label="baseline (gold labels only)")
    if len(line) > 1 or any(p.baseline for p in points):
        ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lo, hi = min(p.score for p in points), max(p.score for p in points)
    span = max(hi - lo, 1.0)
    ylo, yhi = lo - 0.08 * span, hi + 0.12 * span
    ax.set_ylim(ylo, yhi)
    xmin, xmax = min(p.speed for p in points), max(p.speed for p in points)
    ax.set_xlim(xmin / 1.6, xmax * 4.0)  # room for the labels at the right
    heights = label_heights([p.score for p in points], ylo, yhi, 0.055)
    for p, y in zip(points, heights, strict=True):
        moved = abs(y - (p.score - ylo) / (yhi - ylo)) > 0.01
        name = p.name if len(p.name) <= 64 else p.name[:63] + "…"
        ax.annotate(name, (p.speed, p.score), xytext=(p.speed * 1.12, y), textcoords=("data", "axes fraction"),
                    fontsize=6.5, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if moved else None)
    ax.set_xlabel("examples/s (log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def pareto_figure(per_task: dict[str, Sequence[Point]], path: str | Path | None = None,
                  metric: str = "test score") -> Any:
    """One panel per task; saved to `path` (PNG) when given. Returns the figure (closed when saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(per_task)
    most = max((len(per_task[t]) for t in tasks), default=0)  # one label line per point fits the panel
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(7.0 * max(len(tasks), 1), max(4.2, 0.17 * most + 1.2)),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=False):
        draw_pareto(ax, per_task[task], task, metric)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
