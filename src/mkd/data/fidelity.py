"""The fidelity gate of labelling below fp32: are the cheaper logits the teacher's logits?

Before a task is labelled at bf16 (or any precision other than fp32), the first examples of its
first shard are run at both precisions; argmax agreement and the mean / max absolute logit
difference are measured and stored in the transfer manifest. Below the threshold the whole task is
labelled at fp32 instead. The gate only needs "a callable that returns the logits of the sample at
a precision", so any teacher (a model, an ensemble, ...) can be gated the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

REGRESSION_TOLERANCE = 0.01  # a score "agrees" within 1% of the spread (std) of the fp32 scores


@dataclass(frozen=True)
class Fidelity:
    requested: str  # the precision asked for (resolved setting)
    used: str  # what the task is labelled at: requested, or fp32 after a fallback
    examples: int
    agreement: float  # argmax agreement with fp32 (regression: share within the tolerance)
    mean_abs_diff: float
    max_abs_diff: float
    threshold: float

    @property
    def fell_back(self) -> bool:
        return self.used != self.requested

    def record(self) -> dict:
        """What the transfer manifest stores."""
        return {**asdict(self), "fell_back": self.fell_back}

    def line(self, task: str) -> str:
        """One line for the user."""
        figures = (f"{self.requested} logits agree with fp32 on {100 * self.agreement:.2f}% of {self.examples} "
                   f"examples (mean |diff| {self.mean_abs_diff:.2g}, max {self.max_abs_diff:.2g})")
        if self.fell_back:
            return (f"label: {task}: {figures}, below the threshold {100 * self.threshold:.2f}%: "
                    f"labelling at fp32 instead")
        return f"label: {task}: {figures}: labelling at {self.used}"


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float, float]:
    """(agreement, mean |diff|, max |diff|) of two logits arrays of the same examples."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"logits of shape {candidate.shape} cannot be compared with {reference.shape}")
    if reference.size == 0:
        return 1.0, 0.0, 0.0
    diff = np.abs(reference - candidate)
    if reference.ndim == 2 and reference.shape[1] > 1:
        agreement = float(np.mean(reference.argmax(1) == candidate.argmax(1)))
    else:
        tolerance = REGRESSION_TOLERANCE * max(float(reference.std()), 1e-6)
        agreement = float(np.mean(diff.reshape(len(reference), -1).max(1) <= tolerance))
    return agreement, float(diff.mean()), float(diff.max())


def gate(logits_at: Callable[[str], np.ndarray], precision: str, threshold: float) -> Fidelity:
    """Measure `precision` against fp32 on one sample (`logits_at(p)`: its logits at precision p)
    and decide what to label at."""
    reference = logits_at("fp32")
    if precision == "fp32":
        return Fidelity("fp32", "fp32", len(reference), 1.0, 0.0, 0.0, threshold)
    agreement, mean_diff, max_diff = compare(reference, logits_at(precision))
    used = precision if agreement >= threshold else "fp32"
    return Fidelity(precision, used, len(reference), agreement, mean_diff, max_diff, threshold)
