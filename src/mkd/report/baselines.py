"""The baselines in the report: the verdict (does the best student beat the best baseline at its speed?),
their rows in the models table and their points in the Pareto plot. Everything comes from summary.json's
`baselines` and bench.json, so `mkd report` can rebuild it.

The verdict, per task: the best student is the most accurate one on the task's test split (the faster on
a tie); its rivals are the baselines at least as fast on that task in the run's one bench. The student
wins when it beats the best rival; a rival at least as accurate means: ship the baseline. When no
baseline is as fast, the student wins on speed and the verdict says what the best baseline would cost.
"""

from __future__ import annotations

from typing import Any

from mkd.report.plots import Point

STUDENT, BASELINE, TRADE = "student", "baseline", "trade"


def _score(cell: dict[str, float] | None, primary: str | None = None) -> float | None:
    if not cell:
        return None
    return float(cell[primary]) if primary in cell else float(next(iter(cell.values())))


def _student_speed(bench: dict[str, Any], m: dict[str, Any], name: str, task: str, big: int) -> float | None:
    """The student's fastest serving path on this task (as the Pareto plot counts it)."""
    figures = bench.get("tasks", {}).get(task, {}).get(name, {})
    paths = [f.get(f"batch_{big}", {}).get("examples_per_s") for f in (figures.get("paths") or {}).values()]
    return (max((v for v in paths if v), default=None) or figures.get(f"batch_{big}", {}).get("examples_per_s")
            or m.get("best_examples_per_s") or m.get("examples_per_s"))


def _students(summary: dict[str, Any]) -> dict[str, Any]:
    others = {n: m for n, m in summary.get("models", {}).items() if n != "teacher"}
    current = {n: m for n, m in others.items() if m.get("status", "current") == "current"}
    return current or others


def _baselines_on(summary: dict[str, Any], task: str) -> list[tuple[float, float | None, str]]:
    """(test score, examples/s, name) of every baseline trained on the task."""
    out = []
    for b, per in (summary.get("baselines") or {}).items():
        rec = per.get(task) or {}
        score = _score(rec.get("test"), rec.get("primary"))
        if "skipped" not in rec and score is not None:
            out.append((score, rec.get("examples_per_s"), b))
    return out


def verdicts(summary: dict[str, Any], bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task: the best student against the best baseline at least as fast (see the module's note)."""
    big = summary.get("batch_size_for_speed")
    students = _students(summary)
    tasks = sorted({t for m in students.values() for t in m.get("tasks", [])})
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        cands = [(s, _student_speed(bench, m, n, task, big) or 0.0, n) for n, m in students.items()
                 if (s := _score(((m.get("test") or {}).get("tasks") or {}).get(task))) is not None]
        bases = _baselines_on(summary, task)
        if not cands or not bases:
            continue
        score, speed, name = max(cands)
        measured = speed > 0 and all(b[1] for b in bases)
        rivals = [b for b in bases if b[1] and b[1] >= speed] if measured else bases
        pool = rivals or bases
        b_score, b_speed, b_name = max(pool, key=lambda b: (b[0], b[1] or 0.0))
        margin = round(score - b_score, 2)
        # a rival as fast must be beaten; with none, the student at least matches the best or it is a trade
        outcome = (STUDENT if margin > 0 else BASELINE) if rivals else (STUDENT if margin >= 0 else TRADE)
        out[task] = {"student": name, "student_score": round(score, 2), "student_speed": speed or None,
                     "baseline": b_name, "baseline_score": round(b_score, 2), "baseline_speed": b_speed,
                     "margin": margin, "as_fast": bool(rivals) and measured, "measured": measured,
                     "outcome": outcome}
    return out


def _speed(value: float | None) -> str:
    return f"{value:,.0f} ex/s" if value else "speed not measured"


def _task_line(task: str, v: dict[str, Any]) -> str:
    s, b, gap = v["student"], v["baseline"], abs(v["margin"])
    scores = f"{v['student_score']:.2f} vs {v['baseline_score']:.2f}"
    if not v.get("measured", True):  # bench off: scores only
        beats = "beats" if v["margin"] > 0 else "does not beat"
        return f"{task}: {s} {beats} the best baseline, {b}, by {v['margin']:.2f} points ({scores}; speed not measured)"
    speeds = f"{_speed(v['student_speed'])} vs {_speed(v['baseline_speed'])}"
    if v["outcome"] == BASELINE:
        more = f"{gap:.2f} points more accurate" if gap else "as accurate"
        return (f"{task}: ship the {b} baseline instead of {s}: it is at least as fast "
                f"({_speed(v['baseline_speed'])} vs {_speed(v['student_speed'])}) and {more} "
                f"({v['baseline_score']:.2f} vs {v['student_score']:.2f})")
    if v["outcome"] == TRADE:
        return (f"{task}: {s} is faster than every baseline ({speeds} for {b}) but {gap:.2f} points less accurate "
                f"than {b} ({scores}): a trade")
    if v["as_fast"]:
        return f"{task}: {s} beats the best baseline at its speed, {b}, by {gap:.2f} points ({scores}; {speeds})"
    return (f"{task}: {s} beats every baseline: faster than all of them and {gap:.2f} points above the best, {b} "
            f"({scores}; {speeds})")


def verdict_lines(found: dict[str, dict[str, Any]]) -> list[str]:
    """The verdict in words: one overall sentence, then one per task. Nothing without baselines."""
    if not found:
        return []
    lost = [t for t, v in found.items() if v["outcome"] == BASELINE]
    trades = [t for t, v in found.items() if v["outcome"] == TRADE]
    n = len(found)
    if lost:
        head = (f"A baseline wins on {len(lost)} of {n} task{'s' * (n > 1)} ({', '.join(lost)}): at least as fast "
                "and at least as accurate as the best student; ship the baseline there, or improve the student")
    elif trades:
        head = (f"The student is faster than every baseline, but a slower baseline is more accurate on "
                f"{', '.join(trades)}")
    else:
        every = "every" if n > 1 else "the"
        head = f"Distilling paid off: the best student beats the baselines at its speed on {every} task"
    return [head, *(_task_line(t, v) for t, v in found.items())]


def baseline_points(summary: dict[str, Any]) -> dict[str, list[Point]]:
    """Per task, each baseline's (examples/s, test primary score), marked as a baseline."""
    out: dict[str, list[Point]] = {}
    for b, per in (summary.get("baselines") or {}).items():
        for task, rec in per.items():
            score = _score(rec.get("test"), rec.get("primary"))
            if "skipped" not in rec and score is not None and rec.get("examples_per_s"):
                out.setdefault(task, []).append(Point(f"{b} (baseline)", float(rec["examples_per_s"]), score, True))
    return out


def baseline_rows(summary: dict[str, Any], head: list[str]) -> list[list[str]]:
    """The baselines' rows of the models table, filled by column name ('-' where a column does not apply)."""
    teacher = (summary.get("models") or {}).get("teacher") or {}
    base = teacher.get("best_examples_per_s") or teacher.get("examples_per_s")
    tasks = sorted({t for m in (summary.get("models") or {}).values() for t in m.get("tasks", [])})
    rows = []
    for b, per in (summary.get("baselines") or {}).items():
        done = {t: r for t, r in per.items() if "skipped" not in r}
        if not done:
            continue
        cells = {"model": f"{b} (baseline)", "status": "baseline: gold labels only"}
        for t, r in done.items():
            cells[f"{t} (test)"] = ", ".join(f"{k} {v:.2f}" for k, v in r["test"].items())
        scores = [_score(done[t]["test"], done[t]["primary"]) for t in tasks if t in done]
        if tasks and len(scores) == len(tasks):
            cells["macro"] = f"{sum(s for s in scores if s is not None) / len(scores):.2f}"
        speeds = [r["examples_per_s"] for r in done.values() if r.get("examples_per_s")]
        if speeds:
            mean = sum(speeds) / len(speeds)
            cells["best ex/s (path)"] = f"{mean:.0f} (native)"
            cells["speed-up"] = f"{mean / base:.1f}x" if base else "-"
        rows.append([cells.get(h, "-") for h in head])
    return rows
