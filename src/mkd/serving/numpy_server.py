"""What the numpy serving paths (static_numpy, lstm_numpy) share: logits of raw texts, task by task,
checked task names, long inputs in batches; and the gate that decides whether one serves (`check_logits`).
Imports numpy only (PyTorch inside check_logits, which compares against the model itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mkd.errors import MkdError

AUG_MASK = "[MASK]"  # mkd.data.encode.AUG_MASK (not imported: that loads PyTorch)
TOLERANCE = 1e-4  # max |logits - PyTorch|, as the ONNX export's gate (mkd.serving.checks, which loads PyTorch)


class NumpyServer:
    """Subclasses set `kind` (for errors) and `heads` ({task: ...}) and compute one batch in `batch_logits`."""

    kind: ClassVar[str] = "model"
    heads: dict[str, Any]
    mask: str = AUG_MASK

    def with_mask(self, texts: list[str]) -> list[str]:
        """The augmentation's mask written as this model's tokenizer reads it (SubwordTokens)."""
        return texts if self.mask == AUG_MASK else [t.replace(AUG_MASK, self.mask) for t in texts]

    def logits(self, task: str, columns: Sequence[Sequence[str]], batch_size: int | None = None) -> np.ndarray:
        """(n, outputs) logits of `task` for n texts (pairs: two columns), in input order."""
        if task not in self.heads:
            raise MkdError(f"this {self.kind} has no head for task '{task}'", f"use one of: {', '.join(self.heads)}")
        n = len(columns[0])
        if batch_size and n > batch_size:
            return np.concatenate([self.batch_logits(task, [c[i: i + batch_size] for c in columns])
                                   for i in range(0, n, batch_size)])
        return self.batch_logits(task, columns)

    def batch_logits(self, task: str, columns: Sequence[Sequence[str]]) -> np.ndarray:
        raise NotImplementedError


def check_logits(served: NumpyServer, model: Any, task: str, columns: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Max |logits - PyTorch| and argmax agreement of the numpy path on these texts; refuses more than TOLERANCE."""
    import torch

    from mkd.tasks.task import Example

    spec = model.specs[task]
    examples = [Example(str(i), tuple(c[i] for c in columns)) for i in range(len(columns[0]))]
    model.eval()
    with torch.inference_mode():
        want = model(task, model.encode(spec, examples).collate(range(len(examples)))).float().numpy()
    got = served.logits(task, columns, batch_size=256)
    diff = float(np.abs(want - got).max()) if len(got) else 0.0
    same = float((want.argmax(1) == got.argmax(1)).mean()) if len(got) and want.shape[1] > 1 else 1.0
    if diff > TOLERANCE:
        raise MkdError(f"the numpy path's logits differ from PyTorch's by {diff:.2g} on task {task} "
                       f"(more than {TOLERANCE})", "report it; serve this model with PyTorch or ONNX Runtime")
    return {"max_abs_diff": diff, "argmax_agreement": same, "texts": len(got)}
