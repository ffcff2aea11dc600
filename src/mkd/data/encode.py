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
        if second is not None:
            first, second = cut_long_pairs(tokenizer, first, second, max_length)
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


PAIR_CHARS_PER_TOKEN = 8
"""A pair longer than this many characters per token of max_length is cut before tokenization."""


def longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Tokens that Hugging Face's longest-first truncation keeps of each side of a pair (`budget`: max_length
    minus the special tokens): the shorter side keeps at most half, the longer gets the rest."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if len_a > len_b:
        kept = min(len_b, budget // 2)
        return budget - kept, kept
    kept = min(len_a, budget // 2)
    return kept, budget - kept


def cut_long_pairs(tokenizer, first: list[str], second: list[str], max_length: int) -> tuple[list[str], list[str]]:
    """Long pairs cut to the text of the tokens longest-first truncation keeps, so the tokenizer never
    truncates a long pair itself: it builds every combination of the two sides' overflowing windows, in
    time and memory that grow with the product of their lengths (2,000 words a side: gigabytes). The
    tokens are the same as without the cut."""
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    long = [i for i, (a, b) in enumerate(zip(first, second, strict=True))
            if len(a) + len(b) > PAIR_CHARS_PER_TOKEN * max_length]
    if not long or budget < 0 or not getattr(tokenizer, "is_fast", False) or tokenizer.truncation_side != "right":
        return first, second
    first, second = list(first), list(second)
    spans = [tokenizer([side[i] for i in long], add_special_tokens=False, return_offsets_mapping=True,
                       return_attention_mask=False, return_token_type_ids=False)["offset_mapping"]
             for side in (first, second)]
    for i, offsets_a, offsets_b in zip(long, *spans, strict=True):
        keep_a, keep_b = longest_first(len(offsets_a), len(offsets_b), budget)
        for side, offsets, keep in ((first, offsets_a, keep_a), (second, offsets_b, keep_b)):
            if keep < len(offsets):
                side[i] = side[i][: offsets[keep - 1][1]] if keep else ""
    return first, second
