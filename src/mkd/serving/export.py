"""Serving artefacts of a model folder: one ONNX graph for all tasks (mkd.serving.onnx_graph), or one
Hugging Face folder per task.

Nothing is kept unless it reproduces the PyTorch model: every export runs on real inputs (the model's
own encoding of the task's dev examples, or of given ones) at two batch sizes and two padded lengths,
and is refused when the largest absolute difference of the logits exceeds TOLERANCE. The output
folder is written under a temporary name and renamed, so a failed export leaves nothing behind.

ONNX uses the TorchScript exporter (`dynamo=False`): it needs no onnxscript and turns the LSTM
students' recurrences into ONNX LSTMs, so they export as they are.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json, write_json
from mkd.models.base import MkdModel
from mkd.models.loading import load_model
from mkd.serving.checks import TOLERANCE, check_batches, probe_examples
from mkd.tasks.task import Example, TaskSpec

MANIFEST = "export.json"
FORMATS = ("onnx", "hf")


def dev_examples(folder: Path, tasks: Sequence[str], n: int | None = None) -> dict[str, list[Example]]:
    """The dev examples (up to n) of each task from the folder's own recipe, for the tasks whose data is here."""
    from mkd.config import load_recipe
    from mkd.tasks import load_task

    out: dict[str, list[Example]] = {}
    if not (folder / "recipe.yaml").is_file():
        return out
    try:
        recipe = load_recipe(folder / "recipe.yaml")
    except MkdError:
        return out
    for cfg in recipe.tasks:
        if cfg.name in tasks:
            with contextlib.suppress(MkdError):
                out[cfg.name] = load_task(cfg, recipe.seed, fetch_missing=False).split("dev")[:n]
    return out


def ort_session(path: str | Path, threads: int = 1) -> Any:
    from mkd.serving.runtime import session

    return session(path, threads)


def weights_digest(folder: Path) -> str:
    """sha256 of a model folder's weights and of the files that turn text into ids."""
    h = hashlib.sha256()
    for name in ("model.safetensors", "mkd.json", "vocab.txt", "tokenizer.json"):
        path = Path(folder) / name
        if path.is_file():
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier export (the output is swapped in whole)."""
    if out.exists() and not out.is_dir():
        raise MkdError(f"export target {out} is a file", "give a folder with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise MkdError(f"{out} exists and is not an mkd export, so it would be replaced",
                       "give a new or empty folder with --out")


def _too_far(what: str, task: str, diff: float) -> MkdError:
    return MkdError(f"the {what} export of task {task} differs from PyTorch by {diff:.2e} (> {TOLERANCE:g})",
                    "report it with the model's mkd.json; the PyTorch model folder is unaffected")


# ---- ONNX ----------------------------------------------------------------------------------------
def export_onnx(folder: str | Path, out: str | Path | None = None,
                examples: dict[str, list[Example]] | None = None, quantize: str | None = None,
                int8_agreement: float | None = None, model: MkdModel | None = None,
                logits: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`<out>/model.onnx` (default out: `<folder>/onnx`): one graph for every task, tokenizer.json and
    export.json (inputs, outputs, labels, checks); `quantize="int8"` adds model.int8.onnx, refused below
    `int8_agreement` argmax agreement with PyTorch on dev (default 0.99; a study that measures the int8
    model's own accuracy may pass 0 and read the agreement in export.json). `model`: the folder's model,
    when the caller has it loaded already."""
    from mkd.serving.onnx_graph import export_graph

    if quantize not in (None, "int8"):
        raise MkdError(f"unknown --quantize '{quantize}'", "use --quantize int8, or leave it out for fp32 only")
    folder = Path(folder)
    model = model if model is not None else load_model(folder)
    out = Path(out) if out is not None else folder / "onnx"
    _check_out(out)
    examples = examples if examples is not None else dev_examples(folder, list(model.specs))
    given = {t: list(examples.get(t) or []) for t in model.specs}
    with atomic_dir(out) as tmp:
        body = export_graph(model, tmp, {t: given[t] or probe_examples(model.specs[t]) for t in given},
                            quantize == "int8", *(() if int8_agreement is None else (int8_agreement,)),
                            logits=logits)
        for t, info in body["tasks"].items():
            info["checked_on"] = "dev" if given[t] else "probe texts"
        doc = {"format": "onnx", "source": str(folder), "arch": model.arch, "settings": model.settings(),
               "weights_sha256": weights_digest(folder), **body}
        write_json(tmp / MANIFEST, doc)
    return {**doc, "out": str(out)}


# ---- Hugging Face --------------------------------------------------------------------------------
def hf_state(model: Any, task: str, target: nn.Module) -> dict[str, torch.Tensor]:
    """mkd weights under the names of `target` (a *ForSequenceClassification): BERT-like classes put the
    pooler in the base model and a linear classifier after it; RoBERTa-like ones own the pooler's dense
    layer as classifier.dense and call the output layer classifier.out_proj."""
    prefix = target.base_model_prefix
    wanted = set(target.state_dict())
    encoder = {f"{prefix}.{k}": v for k, v in model.encoder.state_dict().items()}
    head = model.heads.heads[task]
    if "classifier.weight" in wanted and f"{prefix}.pooler.dense.weight" in wanted:
        return {**encoder, "classifier.weight": head.weight, "classifier.bias": head.bias}
    if {"classifier.dense.weight", "classifier.out_proj.weight"} <= wanted:
        state = {k: v for k, v in encoder.items() if not k.startswith(f"{prefix}.pooler.")}
        pooler = model.encoder.pooler.dense
        return {**state, "classifier.dense.weight": pooler.weight, "classifier.dense.bias": pooler.bias,
                "classifier.out_proj.weight": head.weight, "classifier.out_proj.bias": head.bias}
    raise MkdError(f"mkd cannot map its head onto {type(target).__name__}", "export this model with --format onnx")


def hf_classifier(model: Any, spec: TaskSpec) -> nn.Module:
    """A *ForSequenceClassification of the encoder's type holding the encoder and this task's head."""
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(model.encoder.config)
    labels = list(spec.labels) if spec.type == "classification" else ["score"]
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: i for i, name in enumerate(labels)}
    config.problem_type = "single_label_classification" if spec.type == "classification" else "regression"
    try:
        target = AutoModelForSequenceClassification.from_config(config)
    except (ValueError, KeyError) as e:
        raise MkdError(f"transformers has no sequence-classification class for model type "
                       f"'{config.model_type}' ({str(e).splitlines()[0][:80]})", "use --format onnx") from None
    config.architectures = [type(target).__name__]
    result = target.load_state_dict(hf_state(model, spec.name, target), strict=False)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        raise MkdError(f"the weights do not fit {type(target).__name__} (first mismatch: {bad})",
                       "export this model with --format onnx")
    return target.eval()


def export_hf(folder: str | Path, out: str | Path | None = None,
              examples: dict[str, list[Example]] | None = None) -> dict[str, Any]:
    """`<out>/<task>/` per task (default out: `<folder>/hf`): a folder that AutoModelForSequenceClassification
    and AutoTokenizer load without mkd and that gives mkd's logits (checked after reloading it)."""
    from transformers import AutoModelForSequenceClassification

    from mkd.models.teacher import TeacherModel

    folder = Path(folder)
    model = load_model(folder)
    if not isinstance(model, TeacherModel):
        raise MkdError(f"{folder} holds a {model.arch} student, which has no Hugging Face class",
                       "export it with --format onnx")
    if model.pooling != "pooler":
        raise MkdError(f"{folder} pools '{model.pooling}', but Hugging Face's *ForSequenceClassification "
                       "classes classify [CLS] through the encoder's pooler",
                       "train it with pooling: pooler (student.pooling or teacher.pooling), or use --format onnx")
    out = Path(out) if out is not None else folder / "hf"
    _check_out(out)
    examples = examples if examples is not None else dev_examples(folder, list(model.specs))
    model.tokenizer.model_max_length = model.max_length  # the tokenizer then truncates as mkd does
    tasks: dict[str, Any] = {}
    with atomic_dir(out) as tmp:
        for task, spec in sorted(model.specs.items()):
            hf_classifier(model, spec).save_pretrained(tmp / task)
            model.tokenizer.save_pretrained(tmp / task)
            reloaded = AutoModelForSequenceClassification.from_pretrained(tmp / task).eval()
            diff = 0.0
            with torch.no_grad():
                for batch in check_batches(model, spec, (examples.get(task) or probe_examples(spec))[:32]):
                    want = model(task, batch).numpy()
                    diff = max(diff, float(np.abs(reloaded(**batch).logits.numpy() - want).max()))
            if diff > TOLERANCE:
                raise _too_far("Hugging Face", task, diff)
            tasks[task] = {"folder": task, "class": type(reloaded).__name__, "type": spec.type,
                           "labels": list(spec.labels), "max_abs_diff": diff,
                           "checked_on": "dev" if examples.get(task) else "probe texts"}
        doc = {"format": "hf", "source": str(folder), "arch": model.arch, "tasks": tasks}
        write_json(tmp / MANIFEST, doc)
    return {**doc, "out": str(out)}


def export(folder: str | Path, fmt: str, out: str | Path | None = None,
           examples: dict[str, list[Example]] | None = None, quantize: str | None = None,
           int8_agreement: float | None = None) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise MkdError(f"unknown export format '{fmt}'", "use --format onnx or --format hf")
    if fmt == "hf":
        if quantize:
            raise MkdError("--quantize applies to --format onnx", "drop --quantize, or export with --format onnx")
        return export_hf(folder, out, examples)
    if int8_agreement is not None and quantize != "int8":
        raise MkdError("--int8-agreement applies to --quantize int8", "add --quantize int8, or drop --int8-agreement")
    return export_onnx(folder, out, examples, quantize, int8_agreement)


def read_export(out: str | Path) -> dict[str, Any] | None:
    path = Path(out) / MANIFEST
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None
