"""report.html (self-contained, images embedded) and report.md of a run folder, from its files only,
so `mkd report RUN_DIR` can rebuild it at any time."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import yaml

from mkd.errors import MkdError
from mkd.io import read_json, write_text
from mkd.report.baselines import baseline_rows, verdict_lines, verdicts


def _table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    tasks = sorted({t for m in summary["models"].values() for t in m["tasks"]})
    head = ["model", *[f"{t} (test)" for t in tasks], "macro", "params", "no-emb params", "PyTorch fp32 ex/s",
            "best ex/s (path)", "batch-1 p50 / p99 ms", "speed-up", "status"]
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
                     f"{m['best_examples_per_s']:.0f} ({m.get('best_path')})" if m.get("best_examples_per_s") else "-",
                     _latency(m.get("best_batch_1_ms") or {}),
                     f"{m['speedup_vs_teacher']:.1f}x" if m.get("speedup_vs_teacher") else "-",
                     m.get("status", "current")])
    return head, rows


def _latency(ms: dict[str, Any]) -> str:
    """Batch-1 latency of the best path (one request at a time)."""
    return f"{ms['p50_ms']:.2f} / {ms['p99_ms']:.2f}" if ms.get("p50_ms") is not None else "-"


def _teachers_html(summary: dict[str, Any]) -> str:
    """Which teacher labelled each task (runs with teachers of their own)."""
    rows = "".join(f"<li>{html.escape(t)}: {html.escape(e['kind'])} {html.escape(str(e['source']))}</li>"
                   for t, e in (summary.get("teachers") or {}).items())
    return f"<h2>Teachers</h2><ul>{rows}</ul>" if rows else ""


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1250px;padding:0 1em;color:#222}"
         "h1{font-size:1.3em;margin:.2em 0 1em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ddd}"
         ".trades{border-left:5px solid #c33;background:#fbf6f6;padding:.5em 1em;margin-bottom:1em}"
         ".trade{font-size:1.2em;font-weight:600;margin:.2em 0}h1{color:#555}.note{color:#666;font-size:.9em}"
         "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:4px 8px;"
         "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
         "pre{background:#f6f6f6;padding:.8em;overflow-x:auto}details{margin-top:.8em}")


def write_report(run: str | Path) -> Path:
    """Write report.html and report.md into the run folder; returns the HTML path."""
    from mkd.report import figures as figs_
    from mkd.report import sections as sec

    run = Path(run)
    if not run.is_dir():
        raise MkdError(f"run folder {run} does not exist", "give the run folder, e.g. mkd report runs/<name>")
    if not (run / "summary.json").is_file():
        raise MkdError(f"{run} has no summary.json", "run `mkd run` first (or give the run folder)")
    summary = read_json(run / "summary.json")
    bench = read_json(run / "bench" / "bench.json") if (run / "bench" / "bench.json").is_file() else {}
    recipe = (run / "recipe.yaml").read_text(encoding="utf-8") if (run / "recipe.yaml").is_file() else ""
    raw = (yaml.safe_load(recipe) or {}) if recipe else {}
    trade = [*verdict_lines(verdicts(summary, bench)), *sec.headline(summary)]
    head, rows = _table(summary)
    rows += baseline_rows(summary, head)
    kept_head, kept = sec.retained_table(summary)
    times_head, times = sec.stage_times(run, summary)
    machine = sec.machine_text(summary, raw if isinstance(raw, dict) else {})
    changes = sec.recipe_changes(recipe) if recipe else ""
    figs = figs_.figures(summary, bench)
    transfer = "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in c.items())
                         for t, c in (summary.get("transfer") or {}).items())
    sections = [("Quality kept, per task (student test score as a share of the teacher's)", kept_head, kept),
                ("Every model", head, rows), ("Stage times", times_head, times)]
    base = sec.speed_base_line(summary) or ""
    md = [*(f"**{line}**  " for line in trade), *([base] if base else []), "", f"# mkd report: {summary['recipe']}",
          ""]
    for title, h, r in sections:
        md += [f"## {title}", "", *_md_table(h, r), ""]
    md += [f"Transfer set: {transfer}", ""] if transfer else []
    md += ["## Machine", "", machine, "", "## Recipe (what differs from the defaults)", "", "```yaml",
           changes.rstrip(), "```", "", "Full resolved recipe: recipe.yaml", ""]
    precision = "; ".join(f"{n} {m['precision']}" for n, m in summary["models"].items() if m.get("precision"))
    if precision:
        md += [f"Training precision (every score at fp32, as mkd predict serves): {precision}", ""]
    if summary.get("teachers"):
        md += ["Teachers: " + "; ".join(f"{t}: {e['kind']} {e['source']}" for t, e in summary["teachers"].items()), ""]
    write_text(run / "report.md", "\n".join(md))
    body = "<div class='trades'>" + "".join(f"<p class='trade'>{html.escape(line)}</p>" for line in trade)
    body += (f"<p class='note'>{html.escape(base)}</p>" if base else "") + "</div>"
    body += f"<h1>mkd report: {html.escape(summary['recipe'])} ({len(summary['models'])} models)</h1>"
    for title, h, r in sections[:2]:
        body += f"<h2>{html.escape(title)}</h2>{_html_table(h, r)}"
    body += "".join(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'/>"
                    for t, b in figs.items())
    title, h, r = sections[2]
    body += f"<h2>{html.escape(title)}</h2>{_html_table(h, r)}"
    if transfer:
        body += f"<p class='note'>Transfer set: {html.escape(transfer)}</p>"
    body += _teachers_html(summary)
    body += f"<h2>Machine</h2><p>{html.escape(machine)}</p>"
    if precision:
        body += f"<p>Training precision (every score at fp32, as mkd predict serves): {html.escape(precision)}</p>"
    body += (f"<h2>Recipe: what differs from the defaults</h2><pre>{html.escape(changes)}</pre>"
             f"<details><summary>The full resolved recipe</summary><pre>{html.escape(recipe)}</pre></details>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>mkd report: {html.escape(summary['recipe'])}"
            f"</title><style>{STYLE}</style></head><body>{body}</body></html>")
    write_text(run / "report.html", page)
    return run / "report.html"
