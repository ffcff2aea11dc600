"""Teacher-side tokenization: the Hugging Face fast tokenizer of the chosen encoder."""

from __future__ import annotations

from collections.abc import Sequence

from mkd.data.batch import EncodedSplit
from mkd.tasks.task import Example, TaskSpec

AUG_MASK = "[MASK]"
"""The mask token the augmentation writes; each model reads it as its own mask (or <unk>)."""


def encode_for_transformer(
    tokenizer, spec: TaskSpec, examples: Sequence[Example], max_length: int,
    targets=None, chunk: int = 4096,
) -> EncodedSplit:
    """Token ids (unpadded) of every example; pairs truncated longest-first to max_length."""
    mask = getattr(tokenizer, "mask_token", None)
    def text(s: str) -> str:
        return s.replace(AUG_MASK, mask) if mask and mask != AUG_MASK and AUG_MASK in s else s

    feats: dict[str, list[list[int]]] = {"input_ids": []}
    use_types = "token_type_ids" in tokenizer.model_input_names
    if use_types:
        feats["token_type_ids"] = []
    for start in range(0, len(examples), chunk):
        part = examples[start : start + chunk]
        first = [text(e.texts[0]) for e in part]
        second = [text(e.texts[1]) for e in part] if spec.is_pair else None
        enc = tokenizer(first, second, truncation=True, max_length=max_length,
                        return_token_type_ids=use_types, return_attention_mask=False)
        feats["input_ids"] += enc["input_ids"]
        if use_types:
            feats["token_type_ids"] += enc["token_type_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return EncodedSplit(
        task=spec.name, task_type=spec.type, ids=[e.id for e in examples], features=feats,
        pad_values={"input_ids": pad, "token_type_ids": 0},
        labels=[e.label for e in examples], targets=targets,
    )
