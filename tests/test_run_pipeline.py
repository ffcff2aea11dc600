"""`mkd run` end to end on a tiny recipe (a tiny random BERT teacher, one single-text and one pair task
from the user's own files), its caching across runs, the report, serving the result, and the README.

The stages run in this process through the CLI's `main` (so the user-facing output and exit codes
are what is checked), with one thread: tiny models gain nothing from more.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from mkd.io import read_json
from tests.tinyfix import SPECS, make_examples, run_cli, write_tiny_bert

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("teach", "augment", "label", "distill", "baselines", "bench")
TINY_BASELINES = [  # both default baselines, with grids small enough for tiny data
    {"name": "model2vec", "grid": {"learning_rate": [3e-2], "max_epochs": [3], "batch_size": [16], "hidden_dim": [8]},
     "options": {"pca_dims": 8}},
    {"name": "fasttext", "grid": {"epoch": [5], "lr": [0.5], "dim": [8]}}]


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_csv(path: Path, spec, n: int, seed: int) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*spec.text_fields, "label"])
        for e in make_examples(spec, n, seed):
            w.writerow([*e.texts, spec.labels[e.label]])
    return str(path)


def write_recipe(folder: Path, bert_dir: Path) -> Path:
    """Two tasks from files (single: train/dev/test given; pair: JSONL, dev and test carved from train)."""
    sent, nli = SPECS["sent"], SPECS["nli"]
    with open(folder / "nli.jsonl", "w", encoding="utf-8") as f:
        for e in make_examples(nli, 90, 0):
            f.write(json.dumps({"a": e.texts[0], "b": e.texts[1], "label": nli.labels[e.label]}) + "\n")
    train = {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "log_every": 5}
    doc = {
        "name": "tiny", "seed": 3, "output_dir": str(folder / "runs"),
        "tasks": [
            {"name": "sent", "source": "files", "train": _write_csv(folder / "sent_train.csv", sent, 60, 0),
             "dev": _write_csv(folder / "sent_dev.csv", sent, 16, 1),
             "test": _write_csv(folder / "sent_test.csv", sent, 16, 2),
             "text_fields": ["text"], "type": "classification", "labels": list(sent.labels)},
            {"name": "nli", "source": "files", "train": str(folder / "nli.jsonl"), "text_fields": ["a", "b"],
             "type": "classification", "labels": list(nli.labels)},
        ],
        "teacher": {"model": str(bert_dir), "max_length": 32, "train": {**train, "max_steps": 6, "lr": 1e-3}},
        "transfer": {"augment": {"n_iter": 2}, "label_batch_size": 64},
        "student": {"type": "bilstm_attn", "embeddings": "random", "embedding_dim": 16, "hidden_size": 16,
                    "max_length": 32},
        "distill": {"train": {**train, "max_steps": 8, "lr": 3e-3}},
        "bench": {"rounds": 1, "batch_sizes": [1, 8], "examples": 12},
        "baselines": TINY_BASELINES,
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture()
def tagger(monkeypatch):
    """spaCy's tagger when its asset is cached (about 3 s to load), else a stand-in: the augmentation's
    own tests cover the rules; here only the stage's wiring matters."""
    from mkd.assets import asset_path
    from mkd.errors import MkdError

    try:
        asset_path("spacy-en-md")
    except MkdError:
        from tests.test_augment import fake_tagger

        monkeypatch.setattr("mkd.stages.augment.spacy_tagger", lambda fetch_missing=False: fake_tagger)


def _stage_lines(err: str) -> dict[str, str]:
    """The last line each stage printed ('<stage>: ...')."""
    found = {}
    for line in err.splitlines():
        m = re.match(r"(teach|augment|label|distill|baselines|bench): (.*)", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def assert_umask_modes(folder: Path) -> None:
    """Under umask 022 every output is an ordinary file (0644) or folder (0755), model weights included."""
    odd = [f"{p.relative_to(folder)} {stat.S_IMODE(p.stat().st_mode):o}" for p in [folder, *folder.rglob("*")]
           if stat.S_IMODE(p.stat().st_mode) != (0o755 if p.is_dir() else 0o644)]
    assert not odd, odd


def test_run_end_to_end_caches_reruns_what_changed_and_serves(tmp_path, monkeypatch, capsys, tagger, umask_022):
    bert_dir = write_tiny_bert(tmp_path / "bert", hidden=16)
    recipe = str(write_recipe(tmp_path, bert_dir))
    run = tmp_path / "runs" / "tiny"
    vectors = tmp_path / "vectors"  # the baseline's vectors of the tiny BERT, not in the user's cache
    monkeypatch.setattr("mkd.baselines.model2vec_baseline._vectors_dir", lambda source, dims: vectors)

    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", recipe)
    assert code == 0, err
    summary = read_json(run / "summary.json")
    html = (run / "report.html").read_text(encoding="utf-8")
    assert sorted(summary["models"]) == ["student", "teacher"]
    for name, entry in summary["models"].items():
        metrics = read_json(run / name / "metrics.json")
        assert entry["macro"] == metrics["macro"] and entry["test"]["tasks"] == metrics["tasks"]
        assert f"<td>{name}</td>" in html and f"<td>{metrics['macro']:.2f}</td>" in html
        assert entry["examples_per_s"] and entry["parameters"]["total"] > 0
    assert summary["models"]["teacher"]["speedup_vs_teacher"] == 1.0
    assert set(summary["transfer"]) == {"sent", "nli"} and summary["transfer"]["sent"]["augmented"] > 0
    assert html.count("<img") >= 2 and "data:image/png;base64," in html
    bench = read_json(run / "bench" / "bench.json")
    assert all(bench["tasks"][t][m]["onnxruntime"]["batch_8"]["examples_per_s"] > 0
               for t in ("sent", "nli") for m in ("teacher", "student"))
    for b in ("model2vec", "fasttext"):  # the baselines: trained, scored, benched beside the models, reported
        for t in ("sent", "nli"):
            entry = summary["baselines"][b][t]
            assert entry["test"] and entry["dev"] and entry["chosen"] and entry["train_seconds"] >= 0, entry
            assert entry["examples_per_s"] == bench["baselines"][t][b]["batch_8"]["examples_per_s"] > 0
        assert f"<td>{b} (baseline)</td>" in html
    assert summary["baselines"]["fasttext"]["sent"]["chosen"]["wordNgrams"] in (1, 2)  # its own grid's other keys
    assert set(summary["baseline_verdict"]) == {"sent", "nli"} and "verdict: " in err
    assert summary["baseline_verdict"]["sent"]["student"] == "student" and "baseline" in html.split("<h1>")[0]

    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", recipe)
    lines = _stage_lines(err)
    assert code == 0 and all(lines[s].startswith("unchanged") for s in STAGES), lines
    teacher_stamp = (run / "teacher" / "model.safetensors").stat().st_mtime_ns
    student_fp = read_json(run / "student" / "stage.json")["fingerprint"]

    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", recipe, "--set", "distill.train.max_steps=4",
                           "--set", "finetune.enabled=true", "--set", "finetune.train.max_steps=2")
    lines = _stage_lines(err)
    assert code == 0 and all(lines[s].startswith("unchanged") for s in ("teach", "augment", "label")), lines
    assert_report_ratios(run)
    assert lines["distill"].startswith("wrote") and not lines["bench"].startswith("unchanged"), lines
    assert read_json(run / "student" / "stage.json")["fingerprint"] != student_fp
    assert read_json(run / "student" / "stage.json")["steps"] == 4
    assert (run / "teacher" / "model.safetensors").stat().st_mtime_ns == teacher_stamp

    (run / "report.html").unlink()
    (run / "report.md").unlink()
    code, out, _ = run_cli(monkeypatch, capsys, "report", str(run))
    macro = read_json(run / "student" / "metrics.json")["macro"]
    assert code == 0 and out.strip() == str(run / "report.html")
    assert f"<td>{macro:.2f}</td>" in (run / "report.html").read_text(encoding="utf-8")
    assert f"| {macro:.2f} |" in (run / "report.md").read_text(encoding="utf-8")

    # serve the result: an ONNX export beside the student is what the next benchmark measures
    code, _, err = run_cli(monkeypatch, capsys, "export", "--model", str(run / "student"))
    assert code == 0 and "max |diff| vs PyTorch" in err and "on dev" in err
    code, _, err = run_cli(monkeypatch, capsys, "bench", "-c", recipe, "--set", "distill.train.max_steps=4")
    graph = read_json(run / "bench" / "bench.json")["tasks"]["nli"]["student"]["onnxruntime"]["graph"]
    assert code == 0 and graph == str(run / "student" / "onnx" / "model.onnx")
    code, out, _ = run_cli(monkeypatch, capsys, "predict", "--model", str(run / "student"), "--task", "nli", "--json",
                       "a cat sits ||| maybe a dog")
    assert code == 0 and json.loads(out)["label"] in SPECS["nli"].labels
    assert_umask_modes(run)


def assert_report_ratios(run: Path) -> None:
    """Every "% of the teacher" is over the model's own tasks (a fine-tuned one-task model against the
    teacher's score on that task), and the speed-ups' base is named with its accuracy."""
    summary = read_json(run / "summary.json")
    teacher = summary["models"]["teacher"]["test"]["tasks"]
    lines = (run / "report.md").read_text(encoding="utf-8").splitlines()
    for name in ("finetuned/sent", "finetuned/nli", "student"):
        m = summary["models"][name]
        own = list(m["test"]["tasks"])  # a fine-tuned model keeps every head, but is scored on its task
        assert own == (list(teacher) if name == "student" else [name.split("/")[1]])
        theirs = sum(next(iter(teacher[t].values())) for t in own) / len(own)
        whose = "macro" if name == "student" else name.split("/")[1]
        assert f"**{name}: {100 * m['macro'] / theirs:.0f}% of the teacher's {whose} at" in "\n".join(lines), lines
    base = summary["speed_base"]
    assert base["path"] and base["score"] is not None and base["examples_per_s"] == \
        summary["models"]["teacher"]["best_examples_per_s"]
    named = next(line for line in lines if line.startswith("speed-ups against the teacher's "))
    assert f"{base['examples_per_s']:.0f} examples/s, {base['score']:.2f} (dev, 12 bench texts per task)" in named


# ---- README and docs/: every command shown there exists and parses -----------------------------------
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def readme_blocks(files: list[Path] | None = None) -> list[tuple[str, list[str]]]:
    blocks = []
    for path in files or DOCS:
        text = path.read_text(encoding="utf-8")
        blocks += [(lang, body.splitlines()) for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)]
    return blocks


def test_readme_links_every_doc_and_docs_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in DOCS[1:]:
        assert f"(docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"
    for target in re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (ROOT / target).is_file(), f"README links {target}, which does not exist"


def readme_commands() -> list[list[str]]:
    """The mkd commands of the README's bash blocks (`mkd ...`, or `... -m mkd ...` after a launcher), as
    argument lists without comments; continued lines are joined."""
    out = []
    for lang, lines in readme_blocks():
        if lang != "bash":
            continue
        for line in "\n".join(lines).replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["mkd"]:
                out.append(words[1:])
            elif "mkd" in words and words[words.index("mkd") - 1] == "-m":
                out.append(words[words.index("mkd") + 1:])
    return out


def test_readme_quick_start_targets_exist_in_the_makefile():
    quick = [line.split("#")[0].strip() for lang, lines in readme_blocks() if lang == "bash" for line in lines
             if line.startswith("make ")]
    assert {"make demo", "make test"} <= set(quick)
    for target in ("demo", "test"):
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_readme_command_parses():
    """Each command of the bash blocks parses with its very arguments (without running: some train for
    minutes), and every command named in the CLI synopsis answers --help."""
    import typer.main
    from typer.testing import CliRunner

    from mkd import cli
    from mkd.config import load_recipe

    group = typer.main.get_command(cli.app)
    commands = readme_commands()
    assert len(commands) >= 4
    for args in commands:
        command = group.get_command(None, args[0])  # type: ignore[arg-type]
        assert command is not None, f"README shows 'mkd {args[0]}', which does not exist"
        ctx = command.make_context(args[0], list(args[1:]))  # raises on an unknown option or a bad value
        if ctx.params.get("overrides") and ctx.params.get("recipe") is None:
            load_recipe(None, ctx.params["overrides"])  # the --set keys exist in the default recipe
    synopsis = [line for lang, lines in readme_blocks() if lang == "text" for line in lines if line.startswith("mkd ")]
    names = {w for line in synopsis for w in re.findall(r"(?:^mkd|\|) +([a-z]+)", line)}
    assert {"fetch", "teach", "export", "predict", "run", "report"} <= names
    runner = CliRunner()
    for name in sorted(names):
        result = runner.invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (name, result.output)
