"""Any Hugging Face *ForSequenceClassification (a local folder or a hub name) as a teacher: BERT, RoBERTa,
DeBERTa, ModernBERT, decoder-only classifiers, ... with its own tokenizer and maximum length.

Weights are read from safetensors only (a pickle can run code when loaded); `trust_remote_code` stays off
unless the recipe entry says so. Labels are matched by name from `config.id2label`; a decoder-only model
without a padding token pads with its end-of-text token, and its head reads the last real token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mkd.data.batch import EncodedSplit
from mkd.data.encode import encode_for_transformer
from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.tasks.task import Example, TaskSpec
from mkd.teachers.base import FIX_TEACHERS, PICKLES, TEACHERS, Teacher, align_labels, digest, file_sha256

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
NOT_WEIGHTS = {".safetensors", *PICKLES}
UNBOUNDED = 100_000
"""A tokenizer whose model_max_length is above this has none set (transformers' default is 1e30)."""


def local_folder(name: str, trust_remote_code: bool) -> Path:
    """The folder of a local path, or the hub snapshot of a hub name (safetensors and text files only)."""
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not path.is_dir():
            raise MkdError(f"Hugging Face teacher {name} is not a folder", FIX_TEACHERS)
        return path
    from huggingface_hub import snapshot_download

    patterns = ["*.safetensors", "*.safetensors.index.json", "*.json", "*.txt", "*.model", *(["*.py"] if
                                                                                            trust_remote_code else [])]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as e:  # offline, unknown repo, gated repo: one line either way
        raise MkdError(f"cannot get Hugging Face teacher '{name}' ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:100] if str(e) else ''})",
                       "give a local folder, or run once while online") from None


def check_safetensors(folder: Path) -> list[Path]:
    """The folder's safetensors weights; a pickle-only folder is refused."""
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        return weights
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLES)
    if pickles:
        raise MkdError(f"{folder} holds {pickles[0]} but no .safetensors weights; mkd never loads pickled weights "
                       "(unpickling can run code)", "convert them once where you trust the file: "
                       "AutoModelForSequenceClassification.from_pretrained(it).save_pretrained(new_folder)")
    raise MkdError(f"{folder} holds no model weights (*.safetensors)", FIX_TEACHERS)


class HFClassifier(nn.Module):
    """A *ForSequenceClassification behind mkd's model interface: `encode` with its own tokenizer, and
    `forward(task, batch)` giving its logits in the task's label order."""

    def __init__(self, model: nn.Module, tokenizer: Any, specs: dict[str, TaskSpec], max_length: int,
                 order: dict[str, list[int]]) -> None:
        super().__init__()
        self.model, self.tokenizer, self.specs = model, tokenizer, specs
        self.max_length, self.order = max_length, order

    def encode(self, spec: TaskSpec, examples: Sequence[Example], targets: Any = None) -> EncodedSplit:
        return encode_for_transformer(self.tokenizer, spec, examples, self.max_length, targets)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(**{k: batch[k] for k in INPUTS if k in batch}).logits
        order = self.order[task]
        return logits if order == list(range(logits.shape[-1])) else logits[:, order]


@TEACHERS.register("hf")
class HFTeacher(Teacher):
    kind = "hf"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from transformers import AutoConfig

        self.folder = local_folder(str(self.ref.path), self.ref.trust_remote_code)
        self.weights = check_safetensors(self.folder)
        who = f"Hugging Face teacher {self.ref.path}"
        try:
            self.config = AutoConfig.from_pretrained(self.folder, trust_remote_code=self.ref.trust_remote_code)
        except (OSError, ValueError) as e:
            hint = "set trust_remote_code: true in its entry if you trust its code" if "remote" in str(e) else \
                "give a folder written by save_pretrained"
            raise MkdError(f"cannot read the config of {who} ({str(e).splitlines()[0][:100]})", hint) from None
        names = [self.config.id2label[i] for i in range(self.config.num_labels)]
        self.order = {t: align_labels(names, s, self.ref.label_map, who) for t, s in self.specs.items()}
        self.net: HFClassifier | None = None

    def compute_fingerprint(self) -> str:
        files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix not in NOT_WEIGHTS)
        parts = [file_sha256(p, self.ctx.cache) for p in self.weights]
        parts += [f"{p.name}:{file_sha256(p)}" for p in files]
        return digest([parts, self.settings_digest()])

    def load(self, device: torch.device | str = "cpu") -> HFTeacher:
        if self.net is not None:
            return self
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        trust = self.ref.trust_remote_code
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.folder, use_fast=True, trust_remote_code=trust)
            model = AutoModelForSequenceClassification.from_pretrained(
                self.folder, use_safetensors=True, trust_remote_code=trust, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise MkdError(f"cannot load Hugging Face teacher {self.ref.path} ({str(e).splitlines()[0][:120]})",
                           "give a folder that AutoModelForSequenceClassification loads") from None
        if tokenizer.pad_token is None:  # decoder-only: pad with end-of-text; the head reads the last real token
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if tokenizer.pad_token is None:
                raise MkdError(f"Hugging Face teacher {self.ref.path} has no padding, end-of-text or unknown token",
                               "add a pad_token to its tokenizer")
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        self.net = HFClassifier(model.eval().to(device), tokenizer, self.specs, self.max_length(tokenizer),
                                self.order)
        return self

    def max_length(self, tokenizer: Any) -> int:
        """The recipe's max_length, else the tokenizer's own, else what the position table holds."""
        if self.ref.max_length:
            return self.ref.max_length
        own = getattr(tokenizer, "model_max_length", None)
        if own and own < UNBOUNDED:
            return int(own)
        positions = getattr(self.config, "max_position_embeddings", None) or 512
        offset = (self.config.pad_token_id or 0) + 1 if self.config.model_type in ("roberta", "xlm-roberta",
                                                                                  "camembert") else 0
        return int(min(positions - offset, 512))

    def unload(self) -> None:
        self.net = None

    def logits(self, task: str, examples: Sequence[Example], batch_size: int = 64,
               device: torch.device | str = "cpu") -> np.ndarray:
        net = self.load(device).net
        assert net is not None
        return predict(net, task, net.encode(self.specs[task], examples), batch_size, device)

    def network(self) -> torch.nn.Module | None:
        return self.net
