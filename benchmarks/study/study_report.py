"""The study's stored results as a Markdown table and two figures (quality against speed, per-task bars)."""

from __future__ import annotations

import statistics
from pathlib import Path

TASKS = ("rt_polarity", "snli")
TEACHER = "Teacher MiniLM-L6 (multi-task)"


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
    from mkd.bench import mean_speed

    first = next(iter(entry["seeds"].values()))
    vals = [mean_speed(f["tasks"], max(f["batch_sizes"]), runtime) for m in first["models"]
            if (f := bench.get(m["path"]))]
    vals = [v for v in vals if v]
    return statistics.mean(vals) if vals else None


def rows(results: dict) -> list[dict]:
    bench = results.get("_bench", {})
    teacher = results.get(TEACHER)
    t_macro = summarize(teacher)["macro"][0] if teacher else None
    t_speed = speed(teacher, bench) if teacher else None
    out = []
    for name, entry in results.items():
        if name.startswith("_"):
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
    return paths
