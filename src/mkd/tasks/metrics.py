"""Metrics as GLUE scores them, computed with scikit-learn and scipy (reported in percent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from mkd.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[MetricFn] = Registry("metric")


@METRICS.register("accuracy")
def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return 100.0 * float(accuracy_score(gold, pred))


@METRICS.register("f1")
def f1(pred: np.ndarray, gold: np.ndarray) -> float:
    """Binary F1 of the positive class (label index 1), as GLUE scores MRPC and QQP."""
    return 100.0 * float(f1_score(gold, pred, average="binary", pos_label=1, zero_division=0))


@METRICS.register("macro_f1")
def macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    return 100.0 * float(f1_score(gold, pred, average="macro", zero_division=0))


@METRICS.register("mcc")
def mcc(pred: np.ndarray, gold: np.ndarray) -> float:
    return 100.0 * float(matthews_corrcoef(gold, pred))


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


@METRICS.register("pearson")
def pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    if len(pred) < 2 or _constant(pred) or _constant(gold):
        return 0.0
    return 100.0 * float(pearsonr(pred, gold)[0])


@METRICS.register("spearman")
def spearman(pred: np.ndarray, gold: np.ndarray) -> float:
    if len(pred) < 2 or _constant(pred) or _constant(gold):
        return 0.0
    return 100.0 * float(spearmanr(pred, gold)[0])


def predictions(task_type: str, outputs: np.ndarray) -> np.ndarray:
    """Class indices from logits, or scores from a regression head."""
    outputs = np.asarray(outputs)
    if task_type == "regression":
        return outputs.reshape(-1)
    return outputs.argmax(axis=-1)


def score(
    task_type: str, metric_names: Sequence[str], outputs: np.ndarray, gold: Sequence[float]
) -> dict[str, float]:
    """Every metric of a task on model outputs (logits or scores) against gold labels."""
    pred = predictions(task_type, outputs)
    gold_arr = np.asarray(gold, dtype=np.float64 if task_type == "regression" else np.int64)
    return {m: round(METRICS.get(m)(pred, gold_arr), 4) for m in metric_names}


def macro(per_task: dict[str, dict[str, float]], primaries: dict[str, str]) -> float:
    """The unweighted mean over tasks of each task's primary metric."""
    values = [per_task[t][primaries[t]] for t in per_task]
    return round(float(np.mean(values)), 4) if values else 0.0
