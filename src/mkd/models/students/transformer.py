"""MKD-Transformer: a small BERT-style encoder, pooled as student.pooling says, and one head per task.

Three ways to make one (MKD.md, Students): from the sizes in the recipe (random weights, the
teacher's tokenizer); from the first `init_layers` layers of a pretrained encoder (embeddings and
those layers copied); or a whole smaller pretrained encoder. It is saved exactly like the teacher.
With `pooling: pooler` it is a BertForSequenceClassification per task, and `mkd export --format hf`
writes it as one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from mkd.config import StudentConfig
from mkd.errors import MkdError
from mkd.models.base import ARCHS
from mkd.models.students.borrow import Borrow, EncoderSource
from mkd.models.teacher import POOLINGS, TeacherModel
from mkd.tasks.task import TaskSpec


@ARCHS.register("transformer")
class TransformerStudent(TeacherModel):
    arch = "transformer"
    ACCEPTS = frozenset({"num_layers", "num_heads", "pooling", "init_from", "init_layers"})
    """The student.* settings of this kind besides the common ones (students/__init__.py)."""
    EXCLUSIVE = frozenset({"init_from", "init_layers"})
    """Its settings that another kind refuses (it would train without them)."""

    @classmethod
    def check(cls, cfg: StudentConfig, fetch_missing: bool = False) -> None:
        """Its settings, and the pretrained encoder it starts from, before any work."""
        if cfg.pooling not in POOLINGS:
            raise MkdError(f"student.pooling '{cfg.pooling}' does not apply to the transformer student",
                           f"use one of: {', '.join(POOLINGS)}")
        if cfg.init_from is None and cfg.hidden_size % cfg.num_heads:
            raise MkdError(f"student.hidden_size {cfg.hidden_size} is not a multiple of student.num_heads "
                           f"{cfg.num_heads}", "choose sizes that divide, e.g. hidden_size 312 with 4 heads")
        if cfg.init_from is None and cfg.init_layers is not None:
            raise MkdError("student.init_layers keeps the first layers of student.init_from, which is not set",
                           "set student.init_from (e.g. minilm-l6), or remove student.init_layers")
        if cfg.init_from is not None:
            from mkd.models.pretrained import resolve

            resolve(cfg.init_from, fetch_missing)

    @classmethod
    def borrows(cls, cfg: StudentConfig) -> Borrow | None:
        """A tokenizer, when it is made from the recipe's sizes (no init_from)."""
        return Borrow("its tokenizer (no student.init_from)") if cfg.init_from is None else None

    @classmethod
    def from_config(cls, cfg: StudentConfig, specs: dict[str, TaskSpec], texts: Iterable[str],
                    encoder: EncoderSource | None, fetch_missing: bool = False) -> TransformerStudent:
        """`texts` is unused: the vocabulary is the tokenizer's."""
        if cfg.init_from is None:
            assert encoder is not None  # build_student checks it
            net, tokenizer = sized_encoder(cfg, encoder)
        else:
            from mkd.models.pretrained import load_encoder

            net, tokenizer = load_encoder(cfg.init_from, fetch_missing=fetch_missing)
            if cfg.init_layers is not None:
                net = first_layers(net, cfg.init_layers, cfg.init_from)
        return cls(net, tokenizer, specs, cfg.max_length, cfg.dropout, cfg.pooling)


def sized_encoder(cfg: StudentConfig, source: EncoderSource) -> tuple[Any, Any]:
    """A randomly initialised BERT of the recipe's size, over the source encoder's tokenizer."""
    from transformers import BertConfig, BertModel

    tokenizer = source.tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                        num_attention_heads=cfg.num_heads, intermediate_size=4 * cfg.hidden_size,
                        max_position_embeddings=max(cfg.max_length, 8), hidden_dropout_prob=cfg.dropout,
                        attention_probs_dropout_prob=cfg.dropout, pad_token_id=tokenizer.pad_token_id or 0)
    return BertModel(config), tokenizer


def first_layers(encoder: Any, k: int, name: str) -> Any:
    """A copy of `encoder` keeping its embeddings and first k layers (any HF encoder whose layers are
    numbered in its state dict: a k-layer model of the same config loads them by name)."""
    from transformers import AutoModel

    total = getattr(encoder.config, "num_hidden_layers", None)
    if total is None:
        raise MkdError(f"cannot tell how many layers {name} has", "leave student.init_layers empty")
    if k > total:
        raise MkdError(f"student.init_layers is {k} but {name} has only {total} layers", f"choose 1 to {total}")
    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = k
    small = AutoModel.from_config(config)
    missing, _ = small.load_state_dict(encoder.state_dict(), strict=False)
    if missing:
        raise MkdError(f"cannot copy the first {k} layers of {name} (no weights for {missing[0]})",
                       "leave student.init_layers empty to use the whole encoder")
    return small
