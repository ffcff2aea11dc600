"""The losses against values computed by hand (MKD.md, stages 1 and 3)."""

from __future__ import annotations

import math

import pytest
import torch

from mkd.errors import MkdError
from mkd.train.losses import distillation_loss, gold_loss
from tests.tinyfix import PAIR, REG, SINGLE


def batch(teacher, labels=None) -> dict[str, torch.Tensor]:
    out = {"teacher_logits": torch.tensor(teacher, dtype=torch.float32)}
    if labels is not None:
        out["labels"] = torch.tensor(labels)
    return out


def test_mse_is_the_mean_over_every_logit_without_temperature():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = batch([[0.0, 0.0], [0.0, 0.0]])
    assert distillation_loss("mse")(SINGLE, student, b).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert distillation_loss("mse", temperature=5.0)(SINGLE, student, b).item() == pytest.approx(7.5)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_kl_is_softened_and_scaled_by_t_squared(t):
    student = torch.tensor([[0.0, 0.0, 0.0]])
    teacher = [[math.log(4.0), math.log(2.0), 0.0]]
    q = [math.exp(v / t) for v in teacher[0]]
    q = [v / sum(q) for v in q]
    expected = sum(qi * math.log(qi / (1 / 3)) for qi in q) * t * t
    got = distillation_loss("kl", temperature=t)(PAIR, student, batch(teacher)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    if t == 1.0:
        assert got == pytest.approx((4 * math.log(12 / 7) + 2 * math.log(6 / 7) + math.log(3 / 7)) / 7, rel=1e-5)


def test_kl_is_a_batch_mean():
    student = torch.zeros(2, 2)
    one = distillation_loss("kl")(SINGLE, student[:1], batch([[1.0, 0.0]])).item()
    two = distillation_loss("kl")(SINGLE, student, batch([[1.0, 0.0], [0.0, 0.0]])).item()
    assert two == pytest.approx(one / 2)


def test_alpha_mixes_in_the_gold_label_loss():
    student = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    b = batch([[1.0, 0.0], [2.0, 0.0]], labels=[0, 1])
    soft = (1 + 0 + 0 + 0) / 4
    hard = (math.log(2) + (math.log(1 + math.exp(2.0)))) / 2  # cross-entropy of labels 0 and 1
    got = distillation_loss("mse", alpha=0.25)(SINGLE, student, b).item()
    assert got == pytest.approx(0.75 * soft + 0.25 * hard, rel=1e-6)
    assert gold_loss(SINGLE, student, b).item() == pytest.approx(hard, rel=1e-6)
    no_labels = batch([[1.0, 0.0], [2.0, 0.0]])
    assert distillation_loss("mse", alpha=0.25)(SINGLE, student, no_labels).item() == pytest.approx(soft)


def test_regression_always_matches_the_teachers_score_with_mse():
    student = torch.tensor([[1.0], [3.0]])
    b = batch([[2.0], [1.0]], labels=[1.5, 3.0])
    b["labels"] = b["labels"].float()
    to_teacher = (1 + 4) / 2
    for kind in ("mse", "kl"):
        assert distillation_loss(kind, temperature=3.0)(REG, student, b).item() == pytest.approx(to_teacher)
    to_gold = (0.25 + 0) / 2
    assert gold_loss(REG, student, b).item() == pytest.approx(to_gold)
    mixed = distillation_loss("mse", alpha=0.5)(REG, student, b).item()
    assert mixed == pytest.approx(0.5 * to_teacher + 0.5 * to_gold)


def test_an_unknown_loss_is_refused_with_the_nearest_name():
    with pytest.raises(MkdError, match="did you mean 'mse'"):
        distillation_loss("mes")
