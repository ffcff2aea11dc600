"""Losses chosen per task type, written once (MKD.md stage 1 and 3).

Every loss has the signature (spec, logits, batch) -> scalar, so the training loop never knows
whether it refines a teacher or distils a student.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mkd.registry import Registry
from mkd.tasks.task import TaskSpec

Loss = Callable[[TaskSpec, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]
SOFT_LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = Registry("distillation loss")


def gold_loss(spec: TaskSpec, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy for classification, MSE for regression, on gold labels (only the rows that
    have one when the batch carries a label_mask)."""
    labels = batch["labels"]
    if "label_mask" in batch:
        mask = batch["label_mask"]
        if not bool(mask.any()):
            return logits.sum() * 0.0
        logits, labels = logits[mask], labels[mask]
    if spec.type == "regression":
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


@SOFT_LOSSES.register("mse")
def logit_mse(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """MSE between student and teacher logits, the paper's loss (no temperature)."""
    return F.mse_loss(student.float(), teacher.float())


@SOFT_LOSSES.register("kl")
def softened_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher_T || student_T) * T^2 (Hinton et al.), batch-mean."""
    t = temperature
    log_p = F.log_softmax(student.float() / t, dim=-1)
    q = F.softmax(teacher.float() / t, dim=-1)
    return F.kl_div(log_p, q, reduction="batchmean") * t * t


def distillation_loss(kind: str = "mse", temperature: float = 1.0, alpha: float = 0.0) -> Loss:
    """(1 - alpha) * soft loss against the teacher + alpha * gold loss where gold labels exist.
    Regression tasks always match the teacher's score with MSE."""
    soft = SOFT_LOSSES.get(kind)

    def loss(spec: TaskSpec, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        teacher = batch["teacher_logits"]
        if spec.type == "regression":
            value = F.mse_loss(logits.float().view_as(teacher), teacher.float())
        else:
            value = soft(logits, teacher, temperature)
        if alpha > 0 and "labels" in batch:
            value = (1 - alpha) * value + alpha * gold_loss(spec, logits, batch)
        return value

    return loss
