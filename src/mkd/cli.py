"""The `mkd` command: thin; parses arguments and calls the stage functions.

Errors a user can cause (MkdError) end in one line and exit status 2; `--debug` shows tracebacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mkd.errors import MkdError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None,
    help="mkd: distil a multi-task teacher into one small, fast student (MKD, Liu et al.).",
)
STATE = {"debug": False}

RecipeOpt = Annotated[str | None, typer.Option("-c", "--recipe", help="recipe YAML (default: the packaged demo)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override, e.g. --set teacher.train.epochs=1")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue from the stage's last checkpoint")]
RestartOpt = Annotated[bool, typer.Option("--restart", help="discard an unfinished checkpoint and start over")]
ForceOpt = Annotated[bool, typer.Option("--force", help="rerun even if unchanged; overwrite another recipe's run")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="torch's intra-op threads (default: OMP_NUM_THREADS, else every core)")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    STATE["debug"] = debug


def _recipe(recipe: str | None, overrides: list[str] | None):
    from mkd.config import load_recipe

    return load_recipe(recipe, overrides)


def _threads(threads: int | None) -> None:
    from mkd.precision import set_threads

    set_threads(threads)


def _not_built(stage: str) -> NoReturn:
    raise MkdError(f"'mkd {stage}' is not built yet in this version", "see the open issues; nothing was run")


@app.command()
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="assets to fetch (default: all but mpnet-base)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the assets and whether they are cached")] = False,
    force: Annotated[bool, typer.Option("--force", help="download again even if cached")] = False,
) -> None:
    """Download the offline assets (models, word vectors, data) into the cache ($MKD_HOME)."""
    from mkd import assets

    if list_:
        for row in assets.list_assets():
            state = "cached" if row["present"] else "missing"
            typer.echo(f"{row['name']:14s} {state:8s} {row['description']}")
        return
    chosen = names or [n for n in assets.ASSETS.names() if n != "mpnet-base"]
    for path in assets.fetch(chosen, force=force):
        typer.echo(str(path))


@app.command()
def tasks(
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List every known task (type, labels, metric, source) and the split sizes of those present."""
    from mkd.tasks.listing import describe_tasks

    rows = describe_tasks(_recipe(recipe, overrides) if recipe or overrides else None)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    cells = [[r["name"], r["type"], ",".join(r["labels"]) or "score", r["primary"], r["source"],
              " ".join(f"{k}={v}" for k, v in r["sizes"].items()) if r["sizes"] else f"({r['status']})"]
             for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]  # aligned for any name or label list
    for c in cells:
        typer.echo(" ".join([*(v.ljust(w) for v, w in zip(c, widths, strict=False)), c[5]]))


@app.command()
def teach(
    recipe: RecipeOpt = None, overrides: SetOpt = None, resume: ResumeOpt = False, force: ForceOpt = False,
    restart: RestartOpt = False, threads: ThreadsOpt = None,
) -> None:
    """Stage 1: refine the teacher jointly on all tasks of the recipe."""
    _threads(threads)
    from mkd.stages.teach import teach as run_teach

    run_teach(_recipe(recipe, overrides), resume=resume, force=force, restart=restart)


@app.command()
def augment(recipe: RecipeOpt = None, overrides: SetOpt = None, force: ForceOpt = False,
            threads: ThreadsOpt = None) -> None:
    """Stage 2a: build the transfer set with Tang et al.'s augmentation."""
    _threads(threads)
    from mkd.stages.augment import augment as run_augment

    run_augment(_recipe(recipe, overrides), force=force)


@app.command()
def label(recipe: RecipeOpt = None, overrides: SetOpt = None, force: ForceOpt = False,
          threads: ThreadsOpt = None) -> None:
    """Stage 2b: label the transfer set with the teacher's logits."""
    _threads(threads)
    from mkd.stages.label import label as run_label

    run_label(_recipe(recipe, overrides), force=force)


transfer_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="The transfer set as a file, to label with any teacher (see transfer.teachers).")
app.add_typer(transfer_app, name="transfer")


@transfer_app.command("export")
def transfer_export(
    out: Annotated[Path, typer.Option("--out", help="file to write: .csv, .jsonl or .parquet")],
    recipe: RecipeOpt = None, overrides: SetOpt = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="only this task (repeatable)")] = None,
    transfer_only: Annotated[bool, typer.Option("--transfer-only", help="without the dev and test rows")] = False,
) -> None:
    """Write the transfer set's ids and texts (after augmentation; plus dev and test) to label elsewhere."""
    from mkd.stages.common import say
    from mkd.stages.transfer_export import export_transfer

    counts = export_transfer(_recipe(recipe, overrides), out, task, transfer_only)
    say("transfer export: " + ", ".join(f"{t} {n} rows" for t, n in counts.items()))
    typer.echo(str(out))


@app.command()
def distill(
    recipe: RecipeOpt = None, overrides: SetOpt = None, resume: ResumeOpt = False, force: ForceOpt = False,
    restart: RestartOpt = False, threads: ThreadsOpt = None,
) -> None:
    """Stage 3: multi-task distillation into one student (one task: single-task distillation)."""
    _threads(threads)
    from mkd.stages.distill import distill as run_distill

    run_distill(_recipe(recipe, overrides), resume=resume, force=force, restart=restart)


@app.command()
def finetune(
    recipe: RecipeOpt = None, overrides: SetOpt = None, resume: ResumeOpt = False, force: ForceOpt = False,
    restart: RestartOpt = False, threads: ThreadsOpt = None,
) -> None:
    """Stage 4: per-task fine-tuning of the multi-task student."""
    _threads(threads)
    from mkd.stages.distill import finetune as run_finetune

    run_finetune(_recipe(recipe, overrides), resume=resume, force=force, restart=restart)


@app.command()
def baselines(recipe: RecipeOpt = None, overrides: SetOpt = None, force: ForceOpt = False,
              threads: ThreadsOpt = None) -> None:
    """Train the recipe's baselines (gold labels only, settings chosen on dev) on every task; score test."""
    _threads(threads)
    from mkd.stages.baselines import baselines_stage

    baselines_stage(_recipe(recipe, overrides), force=force)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="a model folder (teacher or student)")],
    split: Annotated[str, typer.Option("--split", help="dev or test")] = "test",
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Per-task metrics and macro score of any model folder; writes its metrics.json."""
    _threads(threads)
    from mkd.stages.evaluate import evaluate_folder

    evaluate_folder(model, split, recipe, overrides)


BenchModelOpt = Annotated[list[Path] | None, typer.Option(
    "--model", help="benchmark just these model folders (repeatable); figures go to DIR/bench.json")]


@app.command()
def bench(recipe: RecipeOpt = None, overrides: SetOpt = None, models: BenchModelOpt = None,
          threads: ThreadsOpt = None) -> None:
    """CPU throughput and latency of the teacher and every student of the run: PyTorch fp32 and at the run's
    precision, ONNX Runtime fp32 and int8; models whose weights are unchanged keep their figures."""
    _threads(threads)
    from mkd.stages.pipeline import bench_stage, print_table, summarize

    if models:
        _bench_models(models, recipe, overrides)
        return
    r = _recipe(recipe, overrides)
    bench_stage(r, force=True)
    print_table(summarize(r))


def _bench_models(models: list[Path], recipe: str | None, overrides: list[str] | None) -> None:
    from mkd.serving.bench import ORT, bench_models, mean_speed
    from mkd.stages.common import say

    if recipe or overrides:
        raise MkdError("--model takes its settings from each folder's recipe", "drop -c/--set, or drop --model")
    sizes, result = bench_models(models)
    small, big = min(sizes), max(sizes)
    say(f"{'model':32s} {f'ex/s b={small}':>9s} {f'ex/s b={big}':>9s} {f'ORT b={big}':>9s} {f'int8 b={big}':>10s} "
        f"{f'best b={big}':>10s}")
    for name, figures in result.items():
        cells = [mean_speed(figures, small), mean_speed(figures, big), mean_speed(figures, big, ORT),
                 mean_speed(figures, big, "onnx_int8"), mean_speed(figures, big, "best")]
        say(f"{name:32s} " + " ".join(f"{c:9.0f}" if c else f"{'-':>9s}" for c in cells))


ModelOpt = Annotated[Path, typer.Option("--model", help="a model folder (teacher or student)")]
FormatOpt = Annotated[str, typer.Option("--format", help="onnx (any model) or hf (transformer, pooling: pooler)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="output folder (default: MODEL/onnx or MODEL/hf)")]
TextsArg = Annotated[list[str] | None, typer.Argument(
    metavar="TEXT", help='texts; a pair as "first ||| second"; - reads lines from stdin')]
TaskOpt = Annotated[str | None, typer.Option("--task", help="which head (optional when the model has one)")]
FileOpt = Annotated[str | None, typer.Option("--file", help="CSV/TSV/JSONL with the task's text_fields columns")]


QuantizeOpt = Annotated[str | None, typer.Option("--quantize", help="int8: add an ONNX Runtime dynamic-int8 graph")]


@app.command()
def export(model: ModelOpt, fmt: FormatOpt = "onnx", out: OutOpt = None, quantize: QuantizeOpt = None,
           int8_agreement: Annotated[float | None, typer.Option(
               "--int8-agreement", min=0.0, max=1.0,
               help="with --quantize int8: the least argmax agreement with PyTorch on dev (default 0.99)")] = None,
           threads: ThreadsOpt = None) -> None:
    """Export a model to ONNX (one graph for all tasks, tokenizer.json beside it; --quantize int8 adds an
    int8 graph) or Hugging Face folders (one per task), checked against PyTorch on the model's dev examples."""
    _threads(threads)
    from mkd.serving.export import export as run_export
    from mkd.stages.common import say

    result = run_export(model, fmt, out, quantize=quantize, int8_agreement=int8_agreement)
    for task, info in result["tasks"].items():
        where = Path(result["out"]) / (result.get("graph") or info.get("folder", task))
        line = f"export: {task} -> {where} (max |diff| vs PyTorch {info['max_abs_diff']:.1e} on {info['checked_on']}"
        q = info.get("int8") or {}
        if "argmax_agreement" in q:
            line += f"; int8 agrees on {q['argmax_agreement']:.1%}, accuracy change {q.get('accuracy_change', 0):+.2%}"
        say(line + ")")
    if result.get("int8_first_try"):
        say(f"export: int8 kept the LSTMs in fp32 (quantizing {result['int8_first_try']})")
    typer.echo(result["out"])


@app.command()
def predict(
    model: Annotated[Path | None, typer.Option("--model", help="a model folder (teacher or student)")] = None,
    texts: TextsArg = None, task: TaskOpt = None, file: FileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input")] = False,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="serve an ONNX export folder (no PyTorch)")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="with --onnx: its int8 graph")] = False,
    bf16: Annotated[bool, typer.Option("--bf16", help="with --model: PyTorch bf16 autocast (default fp32, the "
                                       "arithmetic of the report's scores)")] = False,
    threads: ThreadsOpt = None,
    columns: Annotated[list[str] | None, typer.Option(
        "--column", help="--file: the text column (repeat for a pair), when not named like the task's")] = None,
) -> None:
    """Labels and probabilities (or scores) for texts, from any model folder or ONNX export."""
    if onnx is None:  # --onnx serves without PyTorch: ONNX Runtime gets the thread count itself
        _threads(threads)
    from mkd.serving.predict import run_predict

    if int8 and bf16:
        raise MkdError("--int8 and --bf16 exclude each other", "give one of them (neither: fp32)")
    precision = "int8" if int8 else "bf16" if bf16 else "fp32"
    for line in run_predict(model, task, texts or [], file, as_json, onnx, precision, threads=threads, columns=columns):
        typer.echo(line)


@app.command()
def run(
    recipe: RecipeOpt = None, overrides: SetOpt = None, force: ForceOpt = False, resume: ResumeOpt = False,
    restart: RestartOpt = False, threads: ThreadsOpt = None,
) -> None:
    """All stages in order, each skipped when unchanged (default recipe: the packaged demo)."""
    _threads(threads)
    from mkd.stages.pipeline import run_all

    run_all(_recipe(recipe, overrides), force=force, resume=resume, restart=restart)


@app.command()
def report(run_dir: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Rebuild report.html and report.md of a run folder."""
    from mkd.report.write import write_report

    typer.echo(str(write_report(run_dir or Path("runs") / "demo")))


def _disk_full(error: BaseException) -> OSError | None:
    """The OSError 'no space left' / 'quota exceeded' behind an error (also when a library wrapped it)."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return current
        text = str(current)
        if "No space left on device" in text or "Disk quota exceeded" in text or "os error 28" in text:
            return current if isinstance(current, OSError) else OSError(errno.ENOSPC, "no space left on device")
        current = current.__cause__ or current.__context__
    return None


def _interrupted(error: KeyboardInterrupt) -> NoReturn:
    from mkd.train.interrupt import interruption_line

    line, status = interruption_line(error, sys.argv[1:])
    print(f"error: {line}", file=sys.stderr)
    sys.exit(status)


def main() -> None:
    from mkd.train.interrupt import install_sigterm

    install_sigterm()
    try:
        status = app(standalone_mode=False)
        if status == 130:  # typer turns KeyboardInterrupt (and so our Interrupted) into this return value
            _interrupted(KeyboardInterrupt())
    except KeyboardInterrupt as e:
        _interrupted(e)
    except MkdError as e:
        if STATE["debug"]:
            raise
        print(f"error: {e.line()}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted(e.__context__)
        sys.exit(1)
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # usage errors (click, or typer's own copy)
            e.show()
            sys.exit(2)
        if STATE["debug"]:
            raise
        full = _disk_full(e)
        if full is not None:
            print(f"error: disk full ({full.strerror or 'no space left on device'}); finished work is kept and "
                  "nothing is half-written; free some space, then rerun with --resume", file=sys.stderr)
            sys.exit(2)
        print(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              "(unexpected; rerun with --debug for the traceback and report it)", file=sys.stderr)
        sys.exit(1)
