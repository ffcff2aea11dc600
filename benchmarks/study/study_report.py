"""The study's stored results as a Markdown table and two figures (quality against speed, per-task bars)."""

from __future__ import annotations

import statistics
from pathlib import Path

TASKS = ("rt_polarity", "snli")
TEACHER = "Teacher MiniLM-L6 (multi-task)"
BATCH = 32  # the decision's speed: examples/s at batch 32, one thread, tokenization included


def teacher_name(results: dict) -> str | None:
    """The multi-task teacher row (MiniLM-L6 or MPNet-base, whichever the scale used)."""
    return next((k for k, e in results.items() if not k.startswith("_") and e.get("kind") == "teacher"
                 and k.endswith("(multi-task)")), None)


def per_seed_scores(entry: dict, split: str = "test") -> list[dict[str, float]]:
    """Each seed's primary metric per task (a fine-tuned row has one model per task)."""
    out = []
    for seed in entry["seeds"].values():
        scores = {}
        for m in seed["models"]:
            for t, vals in (m[split] or {}).get("tasks", {}).items():
                scores[t] = next(iter(vals.values()))
        out.append(scores)
    return out


def summarize(entry: dict, split: str = "test") -> dict[str, tuple[float, float]]:
    """task (and "macro") -> (mean, standard deviation over seeds)."""
    per_seed = per_seed_scores(entry, split)
    for scores in per_seed:
        if scores:
            scores["macro"] = statistics.mean(scores.values())
    keys = [k for k in (*TASKS, "macro") if any(k in s for s in per_seed)]
    return {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
            for k in keys if (v := [s[k] for s in per_seed if k in s])}


def speed(entry: dict, bench: dict, runtime: str = "torch") -> float | None:
    """Examples/s at the largest batch size, over the first seed's models and their tasks."""
    from mkd.serving.bench import mean_speed

    if not entry["seeds"]:
        return None
    first = next(iter(entry["seeds"].values()))
    vals = [mean_speed(f["tasks"], max(f["batch_sizes"]), runtime) for m in first["models"]
            if (f := bench.get(m["path"]))]
    vals = [v for v in vals if v]
    return statistics.mean(vals) if vals else None


def rows(results: dict) -> list[dict]:
    bench = results.get("_bench", {})
    teacher = results.get(teacher_name(results) or TEACHER)
    t_macro = summarize(teacher)["macro"][0] if teacher else None
    t_speed = speed(teacher, bench) if teacher else None
    out = []
    for name, entry in results.items():
        if name.startswith("_") or not entry["seeds"]:
            continue
        test, dev = summarize(entry), summarize(entry, "dev")
        first = next(iter(entry["seeds"].values()))
        p = first["models"][0]["parameters"]
        train = [sum(m.get("train_seconds") or 0 for m in s["models"]) for s in entry["seeds"].values()]
        ex_s = speed(entry, bench)
        macro = test.get("macro", (float("nan"), 0.0))
        both = all(t in test for t in TASKS)
        out.append({
            "name": name, "kind": entry.get("kind", "student"), "test": test, "dev": dev, "params": p,
            "seeds": len(entry["seeds"]), "train_s": statistics.mean(train), "ex_s": ex_s,
            "ort_ex_s": speed(entry, bench, "onnxruntime"),
            "of_teacher": 100 * macro[0] / t_macro if t_macro and both else None,
            "speedup": ex_s / t_speed if ex_s and t_speed else None,
        })
    return out


def _cell(stat: tuple[float, float] | None, seeds: int) -> str:
    if stat is None:
        return "-"
    return f"{stat[0]:.2f} ± {stat[1]:.2f}" if seeds > 1 else f"{stat[0]:.2f}"


def table(results: dict) -> str:
    """Test metrics (mean ± std over seeds), dev macro, size, CPU speed and training time per row."""
    head = ("| row | " + " | ".join(TASKS) + " | macro | dev macro | % of teacher | params (no emb.) "
            "| ex/s (PyTorch) | × teacher | ex/s (ONNX RT) | seeds | train s |")
    lines = [head, "|---" * (len(TASKS) + 10) + "|"]
    for r in rows(results):
        p = r["params"]
        cells = [_cell(r["test"].get(t), r["seeds"]) for t in TASKS]
        macro = _cell(r["test"].get("macro"), r["seeds"])
        dev = r["dev"].get("macro", (float("nan"), 0))[0]
        share = f"{r['of_teacher']:.1f}%" if r["of_teacher"] else "-"
        ex_s = f"{r['ex_s']:,.0f}" if r["ex_s"] else "-"
        ort = f"{r['ort_ex_s']:,.0f}" if r["ort_ex_s"] else "-"
        up = f"{r['speedup']:.1f}×" if r["speedup"] else "-"
        lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {macro} | {dev:.2f} | {share} | "
                     f"{p['total'] / 1e6:.2f}M ({p['without_embeddings'] / 1e6:.2f}M) | {ex_s} | {up} | {ort} | "
                     f"{r['seeds']} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def plot(results: dict, folder: Path) -> list[Path]:
    """quality-vs-speed.png (test macro against CPU examples/s) and per-task.png (bars with std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    data = rows(results)
    both = [r for r in data if all(t in r["test"] for t in TASKS) and r["ex_s"]]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for r in both:
        marker = {"teacher": "s", "ablation": "^"}.get(r["kind"], "o")
        ax.errorbar(r["ex_s"], r["test"]["macro"][0], yerr=r["test"]["macro"][1], fmt=marker, capsize=3)
        ax.annotate(r["name"], (r["ex_s"], r["test"]["macro"][0]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("CPU examples/s (PyTorch, largest batch; log scale)")
    ax.set_ylabel("test macro score (rt_polarity acc., snli acc.)")
    ax.set_title("Quality against CPU speed (multi-task models)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    paths = [folder / "quality-vs-speed.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(TASKS), figsize=(12, 0.32 * len(data) + 1.5), sharey=True)
    names = [r["name"] for r in data]
    for ax, t in zip(axes, TASKS, strict=True):
        vals = [r["test"].get(t, (0.0, 0.0)) for r in data]
        ax.barh(range(len(data)), [v[0] for v in vals], xerr=[v[1] for v in vals], capsize=2,
                color=["#888" if r["kind"] == "teacher" else "#4a7" if r["kind"] == "student" else "#79c"
                       for r in data])
        scored = [v[0] for v in vals if v[0]]
        ax.set_xlim(max(0.0, min(scored) - 5) if scored else 0, 100)
        ax.set_title(f"{t} (test accuracy %)")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(data)), names, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    paths.append(folder / "per-task.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    from mkd.report.plots import pareto_figure

    paths.append(folder / "pareto.png")
    pareto_figure(task_points(results), paths[2], metric="test accuracy (%)")
    return paths


# ---- the user's decision: per task, accuracy against speed, and each peer against mkd's rows ----------


def task_speed(entry: dict, bench: dict, task: str, runtime: str = "torch") -> float | None:
    """Examples/s on `task` at the bench's largest batch: the first seed's model scored on the task (a
    fine-tuned row has one model per task, each keeping every task's head), else its first with it."""
    from mkd.serving.bench import ORT

    first = next(iter(entry["seeds"].values()), None) if entry["seeds"] else None
    models = sorted((first or {}).get("models", []), key=lambda m: task not in m.get("test", {}).get("tasks", {}))
    for m in models:
        f = bench.get(m["path"], {})
        figures = f.get("tasks", {}).get(task)
        if figures:
            key = f"batch_{max(f['batch_sizes'])}"
            if runtime == "best":  # the fastest path that serves the row's own accuracy (int8 rows are their own)
                speeds = [p.get(key, {}).get("examples_per_s") for name, p in figures.get("paths", {}).items()
                          if name in EXACT_PATHS]
                return max((v for v in speeds if v), default=None) or figures.get(key, {}).get("examples_per_s")
            figures = figures.get(ORT, {}) if runtime == ORT else figures
            return figures.get(key, {}).get("examples_per_s")
    return None


EXACT_PATHS = ("torch_fp32", "torch_precision", "onnx_fp32", "peer")
"""Serving paths that keep the row's measured accuracy (bf16 within the precision check, ONNX fp32
within 1e-4); an int8 graph moves the accuracy, so int8 is a row of its own (the teacher's)."""


def task_points(results: dict) -> dict[str, list]:
    """{task: [Point]}: every teacher, student and peer row with a test score and a speed on the task
    (ablations left out); the multi-task teacher also as its ONNX Runtime fp32 graph."""
    from mkd.report.plots import Point
    from mkd.serving.bench import ORT

    bench = results.get("_bench", {})
    teacher = teacher_name(results)
    out: dict[str, list] = {t: [] for t in TASKS}
    for name, entry in results.items():
        if name.startswith("_") or entry.get("kind") == "ablation" or not entry["seeds"]:
            continue
        test = summarize(entry)
        for t in TASKS:
            if t not in test:
                continue
            speed_t = task_speed(entry, bench, t, "best")
            if speed_t:
                out[t].append(Point(name, speed_t, test[t][0]))
            if name == teacher and (ort := task_speed(entry, bench, t, ORT)):
                out[t].append(Point(f"{name}, ONNX fp32", ort, test[t][0]))
    return out


def versus_peers(points: dict[str, list], peers: dict[str, set[str]]) -> list[dict]:
    """For each task and each peer point: the most accurate mkd point at least as fast, and by how
    many points it is ahead (negative: behind); None when no mkd row is that fast."""
    out = []
    for task, pts in points.items():
        mine = [p for p in pts if p.name not in peers.get(task, set())]
        for peer in (p for p in pts if p.name in peers.get(task, set())):
            fast = [p for p in mine if p.speed >= peer.speed]
            best = max(fast, key=lambda p: (p.score, p.speed), default=None)
            out.append({"task": task, "peer": peer, "mkd": best,
                        "ahead": round(best.score - peer.score, 2) if best else None})
    return out


def peer_names(results: dict) -> dict[str, set[str]]:
    return {t: {n for n, e in results.items() if not n.startswith("_") and e.get("kind") == "peer"
                and t in summarize(e)} for t in TASKS}


def peer_table(results: dict) -> str:
    """Markdown: per task and peer, the peer's test score and speed, the best mkd row at least as fast."""
    lines = ["| task | peer | test | ex/s | best mkd row at least as fast | test | ex/s | ahead |",
             "|---|---|---|---|---|---|---|---|"]
    for r in versus_peers(task_points(results), peer_names(results)):
        p, m = r["peer"], r["mkd"]
        mine = f"{m.name} | {m.score:.2f} | {m.speed:,.0f} | {r['ahead']:+.2f}" if m else "none as fast | - | - | -"
        lines.append(f"| {r['task']} | {p.name} | {p.score:.2f} | {p.speed:,.0f} | {mine} |")
    skipped = results.get("_skipped") or {}
    lines += ["", *(f"- not run: {name}: {why}" for name, why in skipped.items())]
    return "\n".join(lines).rstrip()
