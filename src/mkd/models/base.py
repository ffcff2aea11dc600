"""The model contract every teacher and student keeps, and its folder format.

A model folder holds: model.safetensors (all weights), mkd.json (architecture name, tasks,
settings), the tokenizer / vocabulary, config.json where the model has a Hugging Face encoder,
and metrics.json once evaluated. Loading reads safetensors only: nothing is unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mkd.data.batch import EncodedSplit
from mkd.errors import MkdError
from mkd.io import atomic_path, write_json
from mkd.registry import Registry
from mkd.tasks.task import Example, TaskSpec

FORMAT_VERSION = 1
ARCHS: Registry[type[MkdModel]] = Registry("model architecture")


class MkdModel(nn.Module):
    """Shared layers plus one head per task; `forward(task, batch)` gives that task's logits."""

    arch: ClassVar[str]
    specs: dict[str, TaskSpec]

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def encode(self, spec: TaskSpec, examples: Sequence[Example], targets: Any = None) -> EncodedSplit:
        raise NotImplementedError  # pragma: no cover

    def settings(self) -> dict[str, Any]:
        """What `load` needs besides the weights to rebuild this model (JSON-able)."""
        raise NotImplementedError  # pragma: no cover

    def save_extras(self, folder: Path) -> None:
        """Tokenizer, vocabulary, HF config: whatever else the folder needs."""

    @classmethod
    def build(cls, folder: Path, specs: dict[str, TaskSpec], settings: dict[str, Any]) -> MkdModel:
        raise NotImplementedError  # pragma: no cover

    def count_parameters(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.parameters())
        emb = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Embedding))
        return {"total": total, "without_embeddings": total - emb}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        self.save_extras(folder)
        write_json(folder / "mkd.json", {
            "format_version": FORMAT_VERSION, "arch": self.arch,
            "tasks": {t: asdict(s) for t, s in sorted(self.specs.items())},
            "settings": self.settings(), "parameters": self.count_parameters(),
        })


def read_meta(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    meta_path = folder / "mkd.json"
    if not folder.is_dir():
        raise MkdError(f"model folder {folder} does not exist", "give a folder that mkd teach/distill wrote")
    if not meta_path.is_file():
        raise MkdError(f"{folder} is not an mkd model folder (no mkd.json)",
                       "give a folder that mkd teach/distill wrote")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MkdError(f"{meta_path} is corrupt", "retrain or restore that model folder") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise MkdError(f"{folder} has model format {meta.get('format_version')}, expected {FORMAT_VERSION}",
                       "retrain it with this version of mkd")
    return meta


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """safetensors only; a corrupt, truncated or pickled file is refused with a clear error."""
    if not path.is_file():
        pickles = sorted(p.name for p in path.parent.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        if pickles:
            raise MkdError(f"{path.parent} holds {pickles[0]} but no {path.name}; mkd never loads pickled weights",
                           "convert them to safetensors (safetensors.torch.save_file) or retrain")
        raise MkdError(f"weights file {path} is missing", "retrain or restore the model folder")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise MkdError(f"{path} is not a valid safetensors file ({str(e)[:80]})",
                       "mkd loads weights only from safetensors; retrain or restore it") from None


def rebuild(folder: str | Path, tasks: Sequence[str] | None = None) -> MkdModel:
    """Rebuild a model from its folder, its architecture already registered (mkd.models.loading.load_model
    registers them all); `tasks` (when given) must all have a head in it."""
    folder = Path(folder)
    meta = read_meta(folder)
    specs = {t: TaskSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
             for t, s in meta["tasks"].items()}
    if tasks is not None:
        missing = [t for t in tasks if t not in specs]
        if missing:
            raise MkdError(f"model {folder} has no head for task(s) {', '.join(missing)} (it has {', '.join(specs)})",
                           "train it on these tasks, or use a recipe whose tasks match")
    model = ARCHS.get(meta["arch"]).build(folder, specs, meta["settings"])
    state = load_weights(folder / "model.safetensors")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        raise MkdError(f"weights in {folder} do not fit its architecture (first mismatch: {bad})",
                       "the folder is damaged or was written by another tool; retrain it")
    model.eval()
    return model
