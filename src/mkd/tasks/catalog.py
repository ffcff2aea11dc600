"""Every known task, declared once as data: the built-in real tasks and the GLUE tasks."""

from __future__ import annotations

from dataclasses import replace

from mkd.config import TaskConfig
from mkd.errors import MkdError, did_you_mean
from mkd.tasks.task import TaskSpec

NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")

_KNOWN = [
    TaskSpec("rt_polarity", ("text",), "classification", ("negative", "positive"),
             ("accuracy", "f1"), "accuracy", "builtin",
             "Rotten Tomatoes review snippets, fresh vs rotten (the SST-2 analogue)"),
    TaskSpec("snli", ("premise", "hypothesis"), "classification", NLI3,
             ("accuracy",), "accuracy", "builtin", "SNLI 1.0 natural language inference (the MNLI analogue)",
             group_field="premise"),
    TaskSpec("cola", ("sentence",), "classification", ("unacceptable", "acceptable"),
             ("mcc", "accuracy"), "mcc", "glue", "GLUE CoLA grammatical acceptability"),
    TaskSpec("sst2", ("sentence",), "classification", ("negative", "positive"),
             ("accuracy",), "accuracy", "glue", "GLUE SST-2 sentiment"),
    TaskSpec("mrpc", ("sentence1", "sentence2"), "classification", ("not_equivalent", "equivalent"),
             ("accuracy", "f1"), "f1", "glue", "GLUE MRPC paraphrase"),
    TaskSpec("qqp", ("question1", "question2"), "classification", ("not_duplicate", "duplicate"),
             ("accuracy", "f1"), "accuracy", "glue", "GLUE QQP duplicate questions", group_field="question1"),
    TaskSpec("stsb", ("sentence1", "sentence2"), "regression", (),
             ("pearson", "spearman"), "pearson", "glue", "GLUE STS-B similarity score 0-5"),
    TaskSpec("mnli", ("premise", "hypothesis"), "classification", NLI3,
             ("accuracy",), "accuracy", "glue", "GLUE MNLI inference (test = dev matched, plus mismatched)",
             group_field="premise"),
    TaskSpec("qnli", ("question", "sentence"), "classification", NLI2,
             ("accuracy",), "accuracy", "glue", "GLUE QNLI question answering inference", group_field="question"),
    TaskSpec("rte", ("sentence1", "sentence2"), "classification", NLI2,
             ("accuracy",), "accuracy", "glue", "GLUE RTE textual entailment", group_field="sentence1"),
    TaskSpec("wnli", ("sentence1", "sentence2"), "classification", ("not_entailment", "entailment"),
             ("accuracy",), "accuracy", "glue", "GLUE WNLI Winograd inference", group_field="sentence1"),
]
CATALOG: dict[str, TaskSpec] = {spec.name: spec for spec in _KNOWN}


def resolve_spec(cfg: TaskConfig) -> TaskSpec:
    """The declaration of a recipe's task: the catalog's, with the recipe's fields on top; a task
    the catalog does not know must be declared in full (source: files)."""
    base = CATALOG.get(cfg.name)
    if base is not None and cfg.source == "files":
        base = None  # a task read from the user's own files is the user's own declaration, whatever its name
    if base is None:
        if cfg.source not in ("files", "hub"):
            raise MkdError(
                f"unknown task '{cfg.name}'",
                f"{did_you_mean(cfg.name, CATALOG)}; or declare your own with source: files (or hub)",
            )
        where = "train" if cfg.source == "files" else "hub_name"
        missing = [k for k in (where, "text_fields", "type") if getattr(cfg, k) is None]
        own = (f" (with its own source: {cfg.source} it is your own task, not the built-in {cfg.name})"
               if cfg.name in CATALOG else "")
        if missing:
            raise MkdError(f"task {cfg.name}: a {cfg.source} task needs {', '.join(missing)}{own}",
                           "add them to the task" + (", or rename it" if own else ""))
        if cfg.type == "classification" and not cfg.labels:
            raise MkdError(f"task {cfg.name}: a classification task needs labels", "list them under labels:")
        base = TaskSpec(cfg.name, tuple(cfg.text_fields or ()), cfg.type or "classification")
        default_metrics = ("pearson", "spearman") if cfg.type == "regression" else ("accuracy",)
        base = replace(base, metrics=default_metrics, primary=default_metrics[0])
    spec = replace(base, source=cfg.source or base.source)
    if cfg.text_fields:
        group = spec.group_field  # the catalog's group is a position (the premise is the first text)
        at = spec.text_fields.index(group) if group in spec.text_fields else None
        fields = tuple(cfg.text_fields)
        spec = replace(spec, text_fields=fields,
                       group_field=fields[at] if at is not None and at < len(fields) else group)
    if cfg.type:
        spec = replace(spec, type=cfg.type)
    if cfg.labels is not None:
        spec = replace(spec, labels=tuple(cfg.labels))
    if cfg.label_field:
        spec = replace(spec, label_field=cfg.label_field)
    if cfg.group_field:
        spec = replace(spec, group_field=cfg.group_field)
    if cfg.metrics:
        spec = replace(spec, metrics=tuple(cfg.metrics), primary=cfg.primary or cfg.metrics[0])
    elif cfg.primary:
        spec = replace(spec, primary=cfg.primary)
    if cfg.join is not None:
        if len(spec.text_fields) < 2:
            raise MkdError(f"task {spec.name}: join needs two text_fields to join", "remove join: or name two columns")
        spec = replace(spec, join=cfg.join)
    files = {k: v for k in ("train", "dev", "test") if (v := getattr(cfg, k))}
    if files:
        spec = replace(spec, files=files)
    _check(spec)
    return spec


def _check(spec: TaskSpec) -> None:
    from mkd.tasks.metrics import METRICS

    for m in spec.metrics:
        METRICS.get(m)
    if spec.primary not in spec.metrics:
        raise MkdError(f"task {spec.name}: primary metric '{spec.primary}' is not among its metrics",
                       f"choose one of: {', '.join(spec.metrics)}")
    if spec.group_field and spec.source != "files" and spec.group_field not in spec.text_fields:
        raise MkdError(f"task {spec.name}: group_field '{spec.group_field}' is not one of its text_fields",
                       f"use one of: {', '.join(spec.text_fields)} (other columns: source files only)")
    if spec.type == "regression" and spec.labels:
        raise MkdError(f"task {spec.name}: a regression task has no labels", "remove labels:")
    if spec.type == "classification" and len(spec.labels) < 2:
        raise MkdError(f"task {spec.name}: a classification task needs at least 2 labels", "list them")
    binary = [m for m in spec.metrics if m == "f1"]  # binary F1 of the positive label
    if binary and len(spec.labels) != 2:
        raise MkdError(f"task {spec.name}: metric {binary[0]} is for 2 labels, the task has {len(spec.labels)}",
                       "use accuracy or macro_f1 under metrics:")
