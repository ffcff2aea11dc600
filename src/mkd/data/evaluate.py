"""Model outputs and metrics on a task split: the same code for teachers and students."""

from __future__ import annotations

import numpy as np
import torch

from mkd.data.batch import EncodedSplit
from mkd.precision import autocast
from mkd.tasks.metrics import macro, score
from mkd.tasks.task import TaskSpec


@torch.inference_mode()
def predict(model: torch.nn.Module, task: str, data: EncodedSplit, batch_size: int = 128,
            device: torch.device | str = "cpu", precision: str = "fp32") -> np.ndarray:
    """Outputs (logits or scores) for every example, in the split's order (length-sorted batches);
    computed at `precision` (mkd.precision), returned as fp32."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    for idx in data.eval_batches(batch_size):
        batch = {k: v.to(device) for k, v in data.collate(idx).items()}
        with autocast(precision, device):
            logits = model(task, batch)
        logits = logits.float().cpu().numpy()
        if out is None:
            out = np.zeros((len(data), logits.shape[-1]), dtype=np.float32)
        out[batch["index"].cpu().numpy()] = logits
    model.train(was_training)
    return out if out is not None else np.zeros((0, 1), dtype=np.float32)


def evaluate_tasks(model: torch.nn.Module, specs: dict[str, TaskSpec], data: dict[str, EncodedSplit],
                   batch_size: int = 128, device: torch.device | str = "cpu", precision: str = "fp32") -> dict:
    """{"tasks": {task: {metric: value}}, "macro": mean of primary metrics}."""
    per_task = {}
    for task, split in sorted(data.items()):
        outputs = predict(model, task, split, batch_size, device, precision)
        per_task[task] = score(specs[task].type, specs[task].metrics, outputs, split.labels or [])
    return {"tasks": per_task, "macro": macro(per_task, {t: specs[t].primary for t in per_task})}
