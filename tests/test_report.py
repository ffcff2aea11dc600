"""The report read at a glance: the trade in one sentence per student first, quality kept per task, the
Pareto plot, stage times, the machine in words, the recipe reduced to its changes, and nine models
without overlapping labels. The run folder is written by hand (JSON and CSV files exactly as the stages
write them); `summarize` and `write_report` read it like any run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from mkd.config import Recipe
from mkd.io import write_json
from mkd.report.plots import Point, draw_pareto
from mkd.report.write import write_report
from mkd.stages.pipeline import summarize

TASKS = {"sent": "accuracy", "nli": "accuracy"}
MODELS = ["teacher", "student", *(f"student-{k}" for k in range(2, 8)), "finetuned/sent"]


def _model(run: Path, name: str, k: int) -> None:
    folder = run / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * (90_000_000 if name == "teacher" else 1_200_000 + k))
    # the teacher is weaker on nli: a one-task model is compared with its score on that task alone
    scores = {t: 90.0 - (10 * i if name == "teacher" else 4 + k % 3 + (i * 2)) for i, t in enumerate(TASKS)}
    tasks = ["sent"] if name.startswith("finetuned") else list(TASKS)
    per = {t: {"accuracy": scores[t]} for t in tasks}
    macro = sum(scores[t] for t in tasks) / len(tasks)
    split = {"tasks": per, "macro": macro}
    write_json(folder / "metrics.json", {"split": "test", "tasks": per, "macro": macro,
                                         "splits": {"dev": split, "test": split}})
    write_json(folder / "mkd.json", {"arch": "teacher" if name == "teacher" else "bilstm_attn",
                                     "tasks": {t: {"primary": TASKS[t]} for t in tasks},
                                     "parameters": {"total": 22_000_000 if name == "teacher" else 300_000,
                                                    "without_embeddings": 100_000}})
    resumed = {"resumed_step": 50, "earlier_seconds": 20.0} if name == "student" else {}
    write_json(folder / "stage.json", {"stage": "distill", "fingerprint": name, "wall_seconds": 30.0 + k,
                                       "train_seconds": 25.0, **resumed})
    steps = 100 * (k + 1)
    with open(folder / "eval_log.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "task", "metric", "value"])
        for s in range(steps // 4, steps + 1, steps // 4):
            for t in tasks:
                w.writerow([s, 0, t, "accuracy", scores[t] - 10 + 10 * s / steps])
            w.writerow([s, 0, "macro", "macro", macro - 10 + 10 * s / steps])


@pytest.fixture(scope="module")
def nine(tmp_path_factory) -> tuple[Path, Recipe]:
    root = tmp_path_factory.mktemp("nine")
    recipe = Recipe(name="nine", output_dir=str(root), tasks=[
        {"name": t, "source": "files", "train": "x.csv", "text_fields": ["text"], "type": "classification",
         "labels": ["a", "b"]} for t in TASKS], student={"hidden_size": 64})
    run = recipe.run_dir
    for k, name in enumerate(MODELS):
        _model(run, name, k)
    Recipe(**{**recipe.model_dump(), "student": {"hidden_size": 96}}).save(run / "student-2")
    speeds = {name: 30.0 if name == "teacher" else 600.0 + 40 * k for k, name in enumerate(MODELS)}
    write_json(run / "bench" / "bench.json", {
        "machine": {"platform": "Linux-x", "processor": "x86_64", "python": "3.12", "torch": "2.13", "threads": 2},
        "tasks": {t: {n: {"batch_32": {"examples_per_s": s}, "batch_1": {"examples_per_s": s / 4}}
                      for n, s in speeds.items() if t in json.loads((run / n / "mkd.json").read_text())["tasks"]}
                  for t in TASKS}})
    write_json(run / "transfer" / "label.json", {"wall_seconds": 42.0, "tasks": {
        "sent": {"seconds": 20.0, "labelled": 3, "kept": 2}, "nli": {"seconds": 22.0, "labelled": 5, "kept": 0}}})
    write_json(run / "times.json", {"teach": 600.0, "augment": 20.0, "label": 30.0, "distill": 120.0, "bench": 60.0})
    recipe.save(run)
    summarize(recipe)
    write_report(run)
    return run, recipe


def test_the_first_line_is_the_trade_of_each_student(nine):
    run, _ = nine
    md = (run / "report.md").read_text(encoding="utf-8").splitlines()
    assert md[0] == "**student: 99% of the teacher's macro at 21.3x its speed, 1.2 MB**  ", md[0]
    assert sum(1 for line in md if line.startswith("**")) == len(MODELS) - 1
    # 84 on sent against the teacher's 90 on sent (not its 85 macro over sent and nli)
    assert any(line.startswith("**finetuned/sent: 93% of the teacher's sent at") for line in md[:9]), md[:9]
    assert any(line.startswith("**student-2:") and "(other settings: student.hidden_size 96 vs 64" in line
               for line in md[:9]), md[:9]
    assert md[len(MODELS) - 1] == "speed-ups against the teacher's PyTorch: 30 examples/s, 85.00 (test macro)"
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.index("<p class='trade'>student: 99%") < html.index("<p class='note'>speed-ups") < html.index("<h1>")


def test_the_report_shows_kept_quality_pareto_times_machine_and_recipe_changes(nine):
    run, _ = nine
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "<td>94.4% (85.0 / 90.0)</td>" in html  # student on sent: its score as a share of the teacher's
    assert "<td>finetuned/sent</td><td>-</td><td>93.3% (84.0 / 90.0)</td><td>93.3%</td>" in html  # its own task
    assert "Accuracy against speed (Pareto front per task)" in html and html.count("<img") == 3
    assert "<td>teach</td>" in html and "<td>10.0 min</td>" in html
    assert "CPU: " in html and "PyTorch threads: 2" in html and "training precision: auto" in html
    changes = html[html.index("what differs from the defaults"):html.index("<details>")]
    assert "hidden_size: 64" in changes and "mixing_temperature" not in changes and "lr:" not in changes
    full = html[html.index("<details>"):]
    assert "mixing_temperature" in full


def test_stage_times_count_resumed_work_and_labelling(nine):
    html = (nine[0] / "report.html").read_text(encoding="utf-8")
    times = html[html.index("<h2>Stage times"):]
    assert "<td>label</td><td>42.0 s (resumed: 2 shard(s) labelled before, not counted)</td>" in times
    assert "<td>distill</td><td>31.0 s (resumed at step 50)</td>" in times


def test_the_console_table_stays_aligned_with_long_names(nine):
    from mkd.io import read_json
    from mkd.stages.pipeline import console_table

    summary = read_json(nine[0] / "summary.json")
    long = "student-with-a-name-much-longer-than-twenty-four-characters"
    summary["models"][long] = summary["models"]["student"]
    lines = console_table(summary)
    assert len(lines) == len(MODELS) + 2 and len({len(line) for line in lines}) == 1, lines
    ends = {line.index("macro") + len("macro") for line in lines[:1]}
    assert all(line[next(iter(ends)) - 1] != " " for line in lines), lines  # right-aligned under "macro"


def test_nine_pareto_labels_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    points = [Point(f"student-{k}", 800.0 + 30 * k, 84.0 + 0.05 * k) for k in range(8)] + [Point("teacher", 40, 90)]
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    draw_pareto(ax, points, "sent")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # the label itself, not its leader line
    assert len(boxes) == 9
    clashes = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    plt.close(fig)
    assert not clashes, f"{len(clashes)} overlapping labels"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium here (apt-get install -y chromium)")
def test_the_report_renders_in_headless_chromium(nine, tmp_path):
    from benchmarks.render_report import render

    png = render(nine[0] / "report.html", tmp_path / "shot.png", CHROMIUM)
    assert png.stat().st_size > 20_000


def test_recipe_changes_of_a_packaged_recipe():
    from importlib import resources

    from mkd.report.sections import recipe_changes

    text = (resources.files("mkd") / "recipes" / "demo.yaml").read_text(encoding="utf-8")
    changed = yaml.safe_load(recipe_changes(text))
    assert changed["tasks"][0] == {"name": "rt_polarity", "max_train": 2000, "unlabelled_train": 6000, "max_dev": 500}
    assert changed["student"] == {"type": "static", "embeddings": "teacher-static", "pooling": "weighted",
                                  "hidden_size": 150}
    assert changed["bench"] == {"rounds": 3}
    assert "seed" not in changed and "output_dir" not in changed  # values equal to the defaults are left out


def test_progress_lines_in_a_log_file_are_whole(monkeypatch):
    """Not a terminal: rich would wrap at 80 columns; a log file gets each message on one line."""
    import io

    from rich.console import Console

    import mkd.progress

    sink = io.StringIO()
    monkeypatch.setattr(mkd.progress, "console", Console(file=sink, width=40, stderr=False))
    bar = mkd.progress.progress_bar("distill student-with-a-long-name", 4)
    bar.update(4, "sent=0.1234 nli=0.5678 lr=1.00e-03 250 ex/s [not markup]")
    bar.note("resumed from the checkpoint of step 2 of 4, written " + "x" * 60)
    lines = sink.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("[not markup]") and lines[1].endswith("x" * 60), lines
