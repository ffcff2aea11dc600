"""`mkd predict`: labels and probabilities (classification) or scores (regression) for new texts.

Any model folder serves: a multi-task student answers every task it has a head for. Inputs come from
the command line (a pair as "first ||| second") or from a CSV/TSV/JSONL file whose columns are the
task's text_fields, so a user can score the very files they trained on. With --onnx DIR it serves an
ONNX export through mkd.serving.runtime (onnxruntime + tokenizers), and PyTorch is never imported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mkd.errors import MkdError, did_you_mean
from mkd.tasks.task import Example, TaskSpec

if TYPE_CHECKING:
    from mkd.models.base import MkdModel

PAIR_SEP = "|||"
BATCH_SIZE = 64
TEXT_WIDTH = 60


def choose_task(model: MkdModel | dict[str, TaskSpec], task: str | None, folder: Path) -> TaskSpec:
    """The named task, or the only one; a clear error for a missing or unknown name."""
    specs = model if isinstance(model, dict) else model.specs
    if task is None:
        if len(specs) == 1:
            return next(iter(specs.values()))
        raise MkdError(f"{folder} serves several tasks ({', '.join(sorted(specs))})", "choose one with --task")
    if task not in specs:
        raise MkdError(f"{folder} has no head for task '{task}'", did_you_mean(task, specs))
    return specs[task]


def from_texts(spec: TaskSpec, texts: Sequence[str]) -> list[Example]:
    """Command-line texts; for a pair task each one is "first ||| second". "-" reads lines from stdin."""
    if list(texts) == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    out = []
    for i, text in enumerate(texts):
        if spec.is_pair:
            first, sep, second = text.partition(PAIR_SEP)
            if not sep:
                raise MkdError(f"task {spec.name} takes pairs ({' and '.join(spec.text_fields)}), but text {i + 1} "
                               f"has no '{PAIR_SEP}'", f'write it as "first {PAIR_SEP} second"')
            out.append(Example(f"text {i + 1}", (first.strip(), second.strip())))
        else:
            out.append(Example(f"text {i + 1}", (text,)))
    return out


def from_file(spec: TaskSpec, raw_path: str, columns: Sequence[str] | None = None) -> list[Example]:
    """Rows of a CSV/TSV/JSONL file; the texts are the columns named by `columns` (--column), else by
    the task's text_fields."""
    from mkd.tasks.files import _resolve, _rows

    fields = tuple(columns or spec.text_fields)
    if len(fields) != len(spec.text_fields):
        raise MkdError(f"--column names {len(fields)} column(s), task {spec.name} reads {len(spec.text_fields)} "
                       f"({', '.join(spec.text_fields)})", "give --column once per text field, in that order")
    out = []
    for where, row in _rows(_resolve(raw_path)):
        missing = [c for c in fields if c not in row]
        if missing:
            raise MkdError(f"{where}: no column '{missing[0]}' (columns: {', '.join(map(str, row))})",
                           f"task {spec.name} reads the column(s) {', '.join(fields)}; name yours with --column")
        out.append(Example(where, spec.texts_of(tuple("" if row[c] is None else str(row[c]) for c in fields))))
    if not out:
        raise MkdError(f"{raw_path} has no rows", "give a header line and at least one row")
    return out


def top_label(logits: np.ndarray) -> int:
    """The label index of one row of logits: the largest logit, and on an exact tie the lowest index, as
    numpy's and torch's argmax, the metrics and the README's snippet all pick."""
    return int(np.argmax(logits))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def predict_examples(model: MkdModel, spec: TaskSpec, examples: Sequence[Example],
                     precision: str = "fp32") -> list[dict[str, Any]]:
    """One record per example, in input order: texts and either label + probabilities, or score."""
    from mkd.data.evaluate import predict
    from mkd.tasks.blank import is_blank

    filled = [e for e in examples if not is_blank(e)]
    outputs = predict(model, spec.name, model.encode(spec, filled), BATCH_SIZE, precision=precision) if filled else None
    return rows_of(spec, examples, outputs)


def rows_of(spec: TaskSpec, examples: Sequence[Example], outputs: np.ndarray | None) -> list[dict[str, Any]]:
    """The records of predict_examples from the logits of the non-blank examples (any runtime), in input
    order; a blank example gets an explicit empty result."""
    from mkd.tasks.blank import is_blank

    found = iter(outputs if outputs is not None else [])
    rows: list[dict[str, Any]] = []
    for example in examples:
        row: dict[str, Any] = {"task": spec.name, "texts": dict(zip(spec.inputs, example.texts, strict=True))}
        if is_blank(example):  # nothing to read: an explicit empty result, never a guess
            row.update(empty=True, **({"score": None} if spec.type == "regression" else {"label": None}))
            rows.append(row)
            continue
        out = next(found)
        if spec.type == "regression":
            row["score"] = round(float(out[0]), 6)
        else:
            probs = _softmax(out.astype(np.float64))
            best = top_label(out)
            row.update(label=spec.labels[best], probability=round(float(probs[best]), 6),
                       probabilities={lab: round(float(p), 6) for lab, p in zip(spec.labels, probs, strict=True)})
        rows.append(row)
    return rows


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table_lines(spec: TaskSpec, rows: Sequence[dict[str, Any]]) -> list[str]:
    """A plain aligned table: text(s), then label and probability (or score)."""
    texts = [f" {PAIR_SEP} ".join(r["texts"].values()) for r in rows]
    width = min(TEXT_WIDTH, max([len(" ".join(t.split())) for t in texts] + [4]))
    if spec.type == "regression":
        lines = [f"{'text':{width}s}  {'score':>10s}"]
        lines += [f"{_short(t, width):{width}s}  {r['score']:10.4f}" for t, r in zip(texts, rows, strict=True)]
        return lines
    lab = max(len(x) for x in [*spec.labels, "label"])
    lines = [f"{'text':{width}s}  {'label':{lab}s}  {'prob':>6s}"]
    lines += [f"{_short(t, width):{width}s}  {r['label']:{lab}s}  {r['probability']:6.3f}"
              for t, r in zip(texts, rows, strict=True)]
    return lines


def onnx_specs(doc: dict[str, Any]) -> dict[str, TaskSpec]:
    """TaskSpecs of an export's tasks, from export.json (what reading inputs and printing rows need)."""
    return {t: TaskSpec(t, tuple(i["text_fields"]), i["type"], tuple(i["labels"]), (), "", join=i.get("join"))
            for t, i in doc["tasks"].items()}


def check_precision(precision: str, onnx: bool) -> None:
    """fp32 serves everywhere; int8 is an ONNX graph; bf16 is PyTorch autocast."""
    if precision == "int8" and not onnx:
        raise MkdError("--int8 serves an ONNX export's int8 graph", "add --onnx DIR (mkd export --quantize int8)")
    if precision == "bf16" and onnx:
        raise MkdError("--bf16 is PyTorch arithmetic", "serve the model folder with --model DIR --bf16")
    if precision not in ("fp32", "int8", "bf16"):
        raise MkdError(f"unknown precision '{precision}'", "use fp32 (the default), --bf16 or --int8")


def run_predict(folder: str | Path | None, task: str | None, texts: Sequence[str], file: str | None,
                as_json: bool, onnx: str | Path | None = None, precision: str = "fp32",
                threads: int | None = None, columns: Sequence[str] | None = None) -> list[str]:
    """The output lines of `mkd predict`: a table, or one JSON object per input. `onnx`: serve that export
    (its int8 graph with precision="int8") instead of a model folder, which serves at fp32 (the report's
    scores) unless precision="bf16". `columns`: --file's text columns."""
    from mkd.tasks.blank import is_blank

    if (folder is None) == (onnx is None):
        raise MkdError("give either --model DIR or --onnx DIR", "--model serves with PyTorch, --onnx with onnxruntime")
    check_precision(precision, onnx is not None)
    if not texts and file is None:
        raise MkdError("nothing to predict", "give texts, --file F.csv|F.jsonl, or '-' to read lines from stdin")
    if onnx is not None:
        from mkd.serving.runtime import OnnxModel

        served = OnnxModel(onnx, precision, threads or 1)
        spec = choose_task(onnx_specs(served.doc), task, Path(onnx))
    else:
        from mkd.models.loading import load_model

        model = load_model(Path(str(folder)))
        spec = choose_task(model, task, Path(str(folder)))
    examples = (from_texts(spec, texts) if texts else []) + (from_file(spec, file, columns) if file is not None else [])
    if not examples:
        raise MkdError("nothing to predict (no text was given)", "give texts, --file, or lines on stdin with '-'")
    blank = [e.id for e in examples if is_blank(e)]
    if blank and not as_json:
        raise MkdError(f"{blank[0]} is empty ({len(blank)} blank input(s) in all): there is nothing to predict",
                       'remove it, or use --json, which answers {"empty": true} for a blank input')
    if onnx is not None:
        filled = [e for e in examples if not is_blank(e)]
        cols = [[e.texts[i] for e in filled] for i in range(len(spec.inputs))]
        rows = rows_of(spec, examples, served.logits(spec.name, cols, BATCH_SIZE) if filled else None)
    else:  # fp32 unless asked: the arithmetic of the report's scores, of --onnx and of the README's snippet
        rows = predict_examples(model, spec, examples, precision)
    if as_json:
        return [json.dumps(r, ensure_ascii=False) for r in rows]
    return table_lines(spec, rows)
