"""What the numpy serving paths (static_numpy, lstm_numpy) share: logits of raw texts, task by task,
checked task names, long inputs in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mkd.errors import MkdError


class NumpyServer:
    """Subclasses set `kind` (for errors) and `heads` ({task: ...}) and compute one batch in `batch_logits`."""

    kind: ClassVar[str] = "model"
    heads: dict[str, Any]

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
