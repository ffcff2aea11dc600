"""Metrics against values computed by hand (in percent, as GLUE reports them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mkd.errors import MkdError
from mkd.tasks.metrics import METRICS, accuracy, f1, macro, macro_f1, mcc, pearson, predictions, score, spearman

# gold 1 1 0 0 1 0 0 1 ; pred 1 0 0 1 1 0 0 1  ->  tp=3 fn=1 fp=1 tn=3
GOLD = np.array([1, 1, 0, 0, 1, 0, 0, 1])
PRED = np.array([1, 0, 0, 1, 1, 0, 0, 1])


def test_accuracy():
    assert accuracy(PRED, GOLD) == pytest.approx(75.0)
    assert accuracy(GOLD, GOLD) == pytest.approx(100.0)
    assert accuracy(np.array([0, 0, 0]), np.array([1, 2, 1])) == pytest.approx(0.0)


def test_binary_f1_of_the_positive_class():
    assert f1(PRED, GOLD) == pytest.approx(75.0)  # P = 3/4, R = 3/4
    # P = 2/3 (tp 2, fp 1), R = 1 (fn 0): F1 = 2PR/(P+R) = 0.8
    assert f1(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])) == pytest.approx(80.0)
    # the positive class is index 1: swapping the classes changes the score
    # pos = 0: tp 1 (idx1), fp 0, fn 1 (idx2): P = 1, R = 1/2, F1 = 2/3
    assert f1(1 - np.array([1, 0, 1, 1]), 1 - np.array([1, 0, 0, 1])) == pytest.approx(200 / 3)
    assert f1(np.zeros(4, int), np.zeros(4, int)) == 0.0  # no positives at all: 0, no warning storm


def test_mcc():
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (9 - 1) / sqrt(4^4) = 0.5
    assert mcc(PRED, GOLD) == pytest.approx(50.0)
    # tp 2 tn 1 fp 1 fn 0: 2 / sqrt(3 * 2 * 2 * 1)
    assert mcc(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])) == pytest.approx(100 * 2 / math.sqrt(12))
    assert mcc(1 - GOLD, GOLD) == pytest.approx(-100.0)


def test_macro_f1():
    # class 0: tp 3 fp 1 fn 1 -> 0.75; class 1 the same -> 0.75
    assert macro_f1(PRED, GOLD) == pytest.approx(75.0)
    # three classes: gold 0 0 1 2, pred 0 1 1 1
    # class 0: P 1, R 1/2 -> 2/3; class 1: P 1/3, R 1 -> 1/2; class 2: 0  -> mean 7/18
    assert macro_f1(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 2])) == pytest.approx(700 / 18)


def test_pearson():
    pred = np.array([1.0, 2.0, 3.0])
    gold = np.array([1.0, 2.0, 4.0])
    # deviations: pred (-1, 0, 1), gold (-4/3, -1/3, 5/3): r = 3 / sqrt(2 * 14/3)
    assert pearson(pred, gold) == pytest.approx(100 * 3 / math.sqrt(28 / 3))
    assert pearson(pred, 2 * pred + 1) == pytest.approx(100.0)
    assert pearson(pred, -pred) == pytest.approx(-100.0)


def test_spearman():
    # monotonic but not linear: rank correlation 1, Pearson below 1
    pred = np.array([1.0, 2.0, 3.0, 4.0])
    gold = np.array([1.0, 10.0, 100.0, 1000.0])
    assert spearman(pred, gold) == pytest.approx(100.0)
    assert pearson(pred, gold) < 99.0
    # ranks pred (1, 2, 3), gold (1, 3, 2): 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 9.0, 7.0])) == pytest.approx(50.0)


@pytest.mark.parametrize("fn", [pearson, spearman])
def test_correlations_of_degenerate_inputs_are_zero(fn):
    assert fn(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0])) == 0.0
    assert fn(np.array([1.0, 2.0, 3.0]), np.array([4.0, 4.0, 4.0])) == 0.0
    assert fn(np.array([1.0]), np.array([3.0])) == 0.0


def test_predictions_classification_and_regression():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    assert predictions("classification", logits).tolist() == [1, 0, 2]
    scores = np.array([[0.5], [4.25], [1.0]])
    out = predictions("regression", scores)
    assert out.shape == (3,) and out.tolist() == [0.5, 4.25, 1.0]
    assert predictions("regression", [2.0, 3.0]).tolist() == [2.0, 3.0]


def test_score_classification_from_logits():
    # logits whose argmax is PRED
    logits = np.stack([1 - PRED, PRED], axis=1).astype(float)
    got = score("classification", ["accuracy", "f1", "mcc"], logits, GOLD.tolist())
    assert got == {"accuracy": 75.0, "f1": 75.0, "mcc": 50.0}


def test_score_uses_the_binary_f1_of_the_positive_class():
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # pred 1 0 1 1
    got = score("classification", ["f1", "macro_f1", "mcc"], logits, [1, 0, 0, 1])
    # binary 0.8; macro (2/3 + 0.8) / 2; mcc 2 / sqrt(12)
    assert got == {"f1": 80.0, "macro_f1": round(100 * (2 / 3 + 0.8) / 2, 4), "mcc": round(100 * 2 / math.sqrt(12), 4)}


def test_score_regression_rounds_to_four_places():
    out = np.array([[1.0], [2.0], [3.0]])
    got = score("regression", ["pearson", "spearman"], out, [1.0, 2.0, 4.0])
    assert got["pearson"] == round(100 * 3 / math.sqrt(28 / 3), 4)
    assert got["spearman"] == 100.0


def test_macro_is_the_mean_of_primary_metrics():
    per_task = {"a": {"accuracy": 80.0, "f1": 10.0}, "b": {"mcc": 40.0, "accuracy": 99.0}, "c": {"pearson": 90.0}}
    primaries = {"a": "accuracy", "b": "mcc", "c": "pearson"}
    assert macro(per_task, primaries) == pytest.approx(70.0)
    assert macro({"a": {"f1": 1.0}, "b": {"f1": 2.0}}, {"a": "f1", "b": "f1"}) == pytest.approx(1.5)
    assert macro({}, {}) == 0.0


def test_metric_registry():
    expected = {"accuracy": accuracy, "f1": f1, "macro_f1": macro_f1, "mcc": mcc, "pearson": pearson,
                "spearman": spearman}  # fmt: skip
    for name, fn in expected.items():
        assert METRICS.get(name) is fn
    with pytest.raises(MkdError, match="did you mean 'accuracy'"):
        METRICS.get("acuracy")
