"""An mkd model folder as a teacher (`mkd teach` output, or any teacher or student mkd wrote): its head
for each task, labels matched by name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.models.base import MkdModel, read_meta
from mkd.models.loading import load_model
from mkd.tasks.task import Example, TaskSpec
from mkd.teachers.base import FIX_TEACHERS, TEACHERS, Teacher, align_labels, digest, file_sha256, reorder


@TEACHERS.register("mkd")
class MkdTeacher(Teacher):
    kind = "mkd"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder = Path(str(self.ref.path)).expanduser()
        if not (self.folder / "model.safetensors").is_file() or not (self.folder / "mkd.json").is_file():
            if self.ctx.internal:
                raise MkdError(f"no teacher at {self.folder}", "run mkd teach first")
            raise MkdError(f"teacher folder {self.folder} for task(s) {', '.join(self.specs)} holds no mkd model",
                           "fix transfer.teachers in the recipe (a plain path is an mkd folder; "
                           "use kind: hf for a Hugging Face classifier)")
        heads = read_meta(self.folder)["tasks"]
        self.order: dict[str, list[int]] = {}
        for task, spec in self.specs.items():
            if task not in heads:
                raise MkdError(f"teacher {self.folder} has no head for task {task} (it has {', '.join(heads)})",
                               FIX_TEACHERS if not self.ctx.internal else "rerun mkd teach")
            head = heads[task]
            if head["type"] != spec.type or len(head["text_fields"]) != len(spec.text_fields):
                raise MkdError(f"teacher {self.folder}'s head for task {task} is a {head['type']} head on "
                               f"{len(head['text_fields'])} text(s), but the task is {spec.type} on "
                               f"{len(spec.text_fields)}", FIX_TEACHERS)
            names = head["labels"] if spec.type == "classification" else ["score"]
            self.order[task] = align_labels(names, spec, self.ref.label_map, f"teacher {self.folder}")
        self.model: MkdModel | None = None

    def compute_fingerprint(self) -> str:
        """Weights and mkd.json (as before typed teachers, so their labels stay valid), plus the settings
        when there are any beyond the path."""
        meta = hashlib.sha256((self.folder / "mkd.json").read_bytes()).hexdigest()
        own = file_sha256(self.folder / "model.safetensors", self.ctx.cache) + meta
        return own if self.ref.label_map is None else own + digest(self.ref.label_map)[:16]

    def load(self, device: torch.device | str = "cpu") -> MkdTeacher:
        if self.model is None:
            self.model = load_model(self.folder, tasks=list(self.specs)).to(device)
        return self

    def unload(self) -> None:
        self.model = None

    def logits(self, task: str, examples: Sequence[Example], batch_size: int = 64,
               device: torch.device | str = "cpu") -> np.ndarray:
        model = self.load(device).model
        assert model is not None
        spec: TaskSpec = model.specs[task]
        return reorder(predict(model, task, model.encode(spec, examples), batch_size, device), self.order[task])

    def network(self) -> torch.nn.Module | None:
        return self.model
