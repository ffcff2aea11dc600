"""report.html (self-contained, images embedded) and report.md of a run folder, from its files only,
so `mkd report RUN_DIR` can rebuild it at any time."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

from mkd.errors import MkdError
from mkd.io import read_json, write_text


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _curves(run: Path, summary: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of each model's primary dev metric per task, from its eval_log.csv."""
    out: dict[str, list[tuple[int, float]]] = {}
    for name, m in summary["models"].items():
        log = Path(m["path"]) / "eval_log.csv"
        if not log.is_file():
            continue
        meta = read_json(Path(m["path"]) / "mkd.json")["tasks"]
        with open(log, newline="") as f:
            for row in csv.DictReader(f):
                task = row["task"]
                if task in meta and row["metric"] == meta[task]["primary"]:
                    out.setdefault(f"{name}|{task}", []).append((int(row["step"]), float(row["value"])))
    return out


def _figures(run: Path, summary: dict[str, Any]) -> dict[str, str]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, str] = {}
    models = summary["models"]
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    curves = _curves(run, summary)
    if curves:
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            for key, points in curves.items():
                name, t = key.split("|")
                if t == task:
                    ax.plot(*zip(*points, strict=True), marker="o", label=name)
            ax.set_title(f"{task}: dev primary metric")
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        figs["Learning curves per task"] = _png(fig)
    speed = {n: m for n, m in models.items() if m.get("examples_per_s")}
    if speed:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, m in speed.items():
            ax.scatter(m["examples_per_s"], m["macro"], s=40)
            ax.annotate(name, (m["examples_per_s"], m["macro"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only decades: minor labels overlap
        ax.set_xlabel(f"CPU examples/s (batch {summary.get('batch_size_for_speed')}, tokenization included)")
        ax.set_ylabel("test macro score")
        ax.set_title("Quality against speed")
        figs["Quality against speed"] = _png(fig)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) * len(tasks) / 2), 4))
    width = 0.8 / max(1, len(models))
    for i, (name, m) in enumerate(models.items()):
        vals = []
        for t in tasks:
            cell = (m.get("test") or {}).get("tasks", {}).get(t)
            vals.append(next(iter(cell.values())) if cell else 0.0)
        ax.bar([j + i * width for j in range(len(tasks))], vals, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
    ax.set_ylabel("test primary metric")
    ax.set_title("Per-task test scores")
    ax.legend(fontsize=7)
    figs["Per-task test scores"] = _png(fig)
    if summary.get("transfer"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = sorted(summary["transfer"])
        bottom = [0.0] * len(names)
        kinds = sorted({k for c in summary["transfer"].values() for k in c})
        for kind in kinds:
            vals = [float(summary["transfer"][n].get(kind, 0)) for n in names]
            ax.bar(names, vals, bottom=bottom, label=kind)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_ylabel("examples")
        ax.set_title("Transfer-set sizes")
        ax.legend(fontsize=8)
        figs["Transfer-set sizes"] = _png(fig)
    return figs


def _table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    tasks = sorted({t for m in summary["models"].values() for t in m["tasks"]})
    head = ["model", *[f"{t} (test)" for t in tasks], "macro", "params", "no-emb params", "ex/s", "ONNX ex/s",
            "speed-up"]
    rows = []
    for name, m in summary["models"].items():
        cells = []
        for t in tasks:
            cell = (m.get("test") or {}).get("tasks", {}).get(t)
            cells.append(", ".join(f"{k} {v:.2f}" for k, v in cell.items()) if cell else "-")
        p = m["parameters"] or {}
        rows.append([name, *cells, f"{m['macro']:.2f}" if m.get("macro") is not None else "-",
                     f"{p['total'] / 1e6:.2f}M" if p else "-", f"{p['without_embeddings'] / 1e6:.2f}M" if p else "-",
                     f"{m['examples_per_s']:.0f}" if m.get("examples_per_s") else "-",
                     f"{m['onnx_examples_per_s']:.0f}" if m.get("onnx_examples_per_s") else "-",
                     f"{m['speedup_vs_teacher']:.1f}x" if m.get("speedup_vs_teacher") else "-"])
    return head, rows


def _teachers_html(summary: dict[str, Any]) -> str:
    """Which teacher labelled each task (runs with teachers of their own)."""
    rows = "".join(f"<li>{html.escape(t)}: {html.escape(e['kind'])} {html.escape(str(e['source']))}</li>"
                   for t, e in (summary.get("teachers") or {}).items())
    return f"<h2>Teachers</h2><ul>{rows}</ul>" if rows else ""


def write_report(run: str | Path) -> Path:
    """Write report.html and report.md into the run folder; returns the HTML path."""
    run = Path(run)
    if not run.is_dir():
        raise MkdError(f"run folder {run} does not exist", "give the run folder, e.g. mkd report runs/<name>")
    if not (run / "summary.json").is_file():
        raise MkdError(f"{run} has no summary.json", "run `mkd run` first (or give the run folder)")
    summary = read_json(run / "summary.json")
    recipe = (run / "recipe.yaml").read_text(encoding="utf-8") if (run / "recipe.yaml").is_file() else ""
    head, rows = _table(summary)
    figs = _figures(run, summary)
    md = [f"# mkd report: {summary['recipe']}", "", f"Machine: {summary['machine']}", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    if summary.get("transfer"):
        md += ["", "Transfer set: " + "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in c.items())
                                                 for t, c in summary["transfer"].items())]
    if summary.get("teachers"):
        md += ["", "Teachers: " + "; ".join(f"{t}: {e['kind']} {e['source']}" for t, e in summary["teachers"].items())]
    precision = "; ".join(f"{n} {m['precision']}" for n, m in summary["models"].items() if m.get("precision"))
    if precision:
        md += ["", f"Precision (training and scoring): {precision}"]
    md += ["", "## Recipe", "", "```yaml", recipe.rstrip(), "```", ""]
    write_text(run / "report.md", "\n".join(md))
    table = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    images = "".join(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'/>"
                     for t, b in figs.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>mkd report: {html.escape(summary['recipe'])}"
            "</title><style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>"
            f"<h1>mkd report: {html.escape(summary['recipe'])}</h1>"
            f"<p>Machine: {html.escape(str(summary['machine']))}</p>"
            + (f"<p>Precision (training and scoring): {html.escape(precision)}</p>" if precision else "")
            + f"<table>{table}</table>{_teachers_html(summary)}{images}"
            f"<h2>Recipe</h2><pre>{html.escape(recipe)}</pre></body></html>")
    write_text(run / "report.html", page)
    return run / "report.html"
