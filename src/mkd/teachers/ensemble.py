"""Several teachers of any kinds for one task: the weighted mean of their logits, or (declared with
`combine: probabilities`) the log of the weighted mean of their probabilities. Weights are normalised to
sum to 1. The fingerprint covers every member, so changing one relabels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mkd.errors import MkdError
from mkd.tasks.task import Example
from mkd.teachers.base import TEACHERS, Context, Teacher, as_spec, build, digest


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@TEACHERS.register("ensemble")
class EnsembleTeacher(Teacher):
    kind = "ensemble"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        refs = [as_spec(m) for m in self.ref.members or []]
        member_ctx = Context(self.ctx.cache, self.ctx.fetch_missing, internal=False)
        self.members = [build(r, self.specs, member_ctx) for r in refs]
        raw = self.ref.weights or [1.0] * len(self.members)
        self.weights = [w / sum(raw) for w in raw]
        if self.ref.combine == "probabilities":
            regression = [t for t, s in self.specs.items() if s.type == "regression"]
            if regression:
                raise MkdError(f"an ensemble for regression task {regression[0]} cannot average probabilities",
                               "set combine: logits (the mean of the scores)")

    @property
    def source(self) -> str:
        return " + ".join(f"{w:.3g} x {m.kind}:{m.source}" for w, m in zip(self.weights, self.members, strict=True))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "combine": self.ref.combine,
                "members": [m.describe() for m in self.members], "weights": self.weights}

    def compute_fingerprint(self) -> str:
        return digest([[m.fingerprint() for m in self.members], self.weights, self.ref.combine])

    def load(self, device: torch.device | str = "cpu") -> EnsembleTeacher:
        for m in self.members:
            m.load(device)
        return self

    def unload(self) -> None:
        for m in self.members:
            m.unload()

    def lookup(self) -> bool:
        return any(m.lookup() for m in self.members)

    def missing(self, task: str, examples: Sequence[Example]) -> list[int]:
        return sorted({i for m in self.members for i in m.missing(task, examples)})

    def logits(self, task: str, examples: Sequence[Example], batch_size: int = 64,
               device: torch.device | str = "cpu") -> np.ndarray:
        outs = [m.logits(task, examples, batch_size, device).astype(np.float64) for m in self.members]
        if self.ref.combine == "logits":
            mean = sum(w * o for w, o in zip(self.weights, outs, strict=True))
        else:
            mean = np.log(np.clip(sum(w * softmax(o) for w, o in zip(self.weights, outs, strict=True)), 1e-12, 1))
        return np.asarray(mean, dtype=np.float32)

    def network(self) -> torch.nn.Module | None:
        nets = [m.network() for m in self.members]
        return torch.nn.ModuleList(nets) if all(n is not None for n in nets) else None  # type: ignore[arg-type]
