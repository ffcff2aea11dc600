"""An ONNX export's inputs from the fast tokenizer (mkd.serving.fast_tokens), exact or not used.

Students' exports tokenize each text alone ("two inputs"), which is what tokie's flat batches do:
ids and masks are padded in numpy, not row by row. At export time the check against `tokenizers`
runs on every dev text and export.json records it ("fast_tokenizer"); a server then uses the fast path
only when that record names it (tokie: the installed version), or when it is given texts to check on
(as the bench does), and otherwise the `tokenizers` path of mkd.serving.runtime. Word-level exports get
mkd.serving.fast_words the same way. Transformers (pairs tokenized
together, with special tokens) keep the `tokenizers` path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mkd.serving.fast_tokens import Encoder, fast_ids, tokie_version

WORDS = "regex batches"  # mkd.serving.fast_words.FastWords.name (not imported: it loads only when used)


def _settings(doc: dict[str, Any], tokenizer_json: str) -> tuple[int | None, int]:
    """(max_length, unk id) of an export's tokenizer.json and export.json."""
    import json

    truncation = json.loads(tokenizer_json).get("truncation") or {}
    return truncation.get("max_length"), int(doc["tokenizer"]["unk_id"])


def export_check(doc: dict[str, Any], folder: Path, texts: Sequence[str]) -> dict[str, Any]:
    """export.json's "fast_tokenizer": which tokenizer serves this export and on how many texts tokie
    was checked (or, in "note", why it does not serve)."""
    if doc["tokenizer"]["pairs"] != "two inputs":
        return {"tokenizer": "tokenizers", "note": "a pair is tokenized together: tokenizers serves"}
    tokenizer_json = (Path(folder) / doc["tokenizer"]["file"]).read_text(encoding="utf-8")
    _, info = fast_ids(tokenizer_json, *_settings(doc, tokenizer_json), list(texts))
    return info


def onnx_encoder(doc: dict[str, Any], folder: Path, check_texts: Sequence[str] | None = None,
                 ) -> tuple[Encoder | None, dict[str, Any]]:
    """(the fast encoder, or None when `tokenizers` serves; what serves and why)."""
    if doc["tokenizer"]["pairs"] != "two inputs" or "token_type_ids" in doc["inputs"]:
        return None, {"tokenizer": "tokenizers"}
    recorded = doc.get("fast_tokenizer") or {}
    version = tokie_version()
    trusted = recorded.get("tokenizer") in (WORDS, f"tokie {version}" if version else None)
    if check_texts is None and not trusted:
        why = recorded.get("note") or (
            "tokie is not installed" if version is None and recorded.get("tokenizer", "").startswith("tokie")
            else f"export.json records no check by {f'tokie {version}' if version else 'a fast tokenizer'} "
                 "(export again to check it)")
        return None, {"tokenizer": "tokenizers", "note": why}
    tokenizer_json = (Path(folder) / doc["tokenizer"]["file"]).read_text(encoding="utf-8")
    encoder, info = fast_ids(tokenizer_json, *_settings(doc, tokenizer_json), list(check_texts or []))
    return (encoder, info) if info["tokenizer"] != "tokenizers" else (None, info)


def fast_feeds(doc: dict[str, Any], encoder: Encoder, columns: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """mkd.serving.runtime.feeds for a "two inputs" export: every graph input for one batch of texts."""
    pad_id = int(doc["tokenizer"]["pad_id"])
    arrays: dict[str, np.ndarray] = {}
    for side, texts in zip(("", "_b"), columns, strict=False):
        arrays[f"input_ids{side}"], arrays[f"attention_mask{side}"] = encoder(list(texts)).padded(pad_id)
    n = len(columns[0])
    for name in doc["inputs"]:
        if name not in arrays:
            value = 1 if name.startswith("attention_mask") else pad_id
            arrays[name] = np.full((n, 1), value, dtype=np.int64)
    return {name: arrays[name] for name in doc["inputs"]}
