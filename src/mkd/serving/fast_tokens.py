"""Token ids for serving: fast and exact, or not used.

Hugging Face `tokenizers` costs a static student most of its serving time (about 17,000 texts/s on
one core at batch 32 with the MiniLM tokenizer). `tokie` (PyPI, Rust, `pip install 'mkd[fast]'`) reads
the same tokenizer.json and returns every text's ids in one flat numpy buffer, about 10x faster.
It is young (0.1.x), so it serves only after giving exactly the ids of `tokenizers` on the texts it
is checked on (a task's dev texts, plus PROBES: added tokens, accents, scripts, emoji, control
characters, texts past max_length); any difference, or no tokie, means the `tokenizers` path
serves, with one line saying why. Both paths give the same `Ragged` ids: no per-text Python objects
on the fast one. An empty text is one unknown token, as the models read it.

Imports numpy and tokenizers (tokie when installed) only: no PyTorch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mkd.serving.token_ids import Ragged, ReferenceIds, _ragged

PROBES = (
    "", " ", "\t\n", "a [MASK] b", "[CLS] x [SEP] [PAD] [UNK]", "hello[MASK]world", "<s> </s> <unk>",
    "Café naïve résumé Ångström", "cafe\u0301 decomposed", "北京欢迎你 東京", "emoji 😀👍🏽 ok", "tab\tnew\nline\r end",
    "zero\u200bwidth\u00a0nbsp", "don't stop—believing… “quoted” ‘single’", "ﬁ ligature Ⅻ ① ㎏ ㈱",
    "Ελληνικά Русский עברית العربية हिन्दी", "a\x00b\x07c\x1fd", "ÅΩ µ ß İstanbul ΣΑΣ", "12,345.67 $5 3rd 1/2",
    "word " * 160, "unbelievably" * 40, "don't it's they're we've I'll he'd I'm can't won't",
    "wait -- what... --- ....",
    "<unk> <UNK> [mask] x[MASK]y", "\x1c\x1d\x1e\x1f", "a\x1cb", "under_score snake_case_3 x2 3.14",
)
"""Texts every fast tokenizer must also agree on: what dev texts may lack (for subwords and for mkd's
word split alike)."""


_POOL: list[bool] = []


def _one_thread_pool(tokenizer: Any) -> None:
    """Make tokie's worker pool (one per process, sized by the CPUs the first batch call may use) one
    thread: the bench pins one thread, and at tens of texts a batch the second thread cost more than
    it gave (430,000-730,000 texts/s on one thread against about 300,000 on two, batch 32). Linux only:
    elsewhere tokie keeps its own pool."""
    if _POOL or not hasattr(os, "sched_setaffinity"):
        return
    _POOL.append(True)
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})  # this thread only; the pool's threads start inside the call
        tokenizer.encode_batch_flat(["a"] * 64, add_special_tokens=False)
    finally:
        os.sched_setaffinity(0, cpus)


class TokieIds:
    """tokie's encode_batch_flat: one call, one flat buffer."""

    name = "tokie"

    def __init__(self, tokenizer_json: str, max_length: int | None, unk_id: int | None) -> None:
        import tokie

        fd, path = tempfile.mkstemp(suffix=".json", prefix="mkd-tokie-")  # tokie reads a file only
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(tokenizer_json)
            self.tokenizer = tokie.Tokenizer.from_json(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        if max_length is not None:
            self.tokenizer.enable_truncation(max_length)
        self.unk_id = unk_id
        _one_thread_pool(self.tokenizer)
        self.encode = self.tokenizer.encode_batch_flat

    def __call__(self, texts: Sequence[str]) -> Ragged:
        ids, lengths = self.encode(texts if isinstance(texts, list) else list(texts), add_special_tokens=False)
        return _ragged(ids, lengths, self.unk_id)


Encoder = Callable[[Sequence[str]], Ragged]


def first_difference(want: Encoder, got: Encoder, texts: Sequence[str], chunk: int = 512) -> str | None:
    """Where `got` tokenizes differently from `want` on `texts` (one line), or None when identical."""
    for start in range(0, len(texts), chunk):
        part = list(texts[start: start + chunk])
        a, b = want(part), got(part)
        if np.array_equal(a.lengths, b.lengths) and np.array_equal(a.ids, b.ids):
            continue
        for i, (x, y) in enumerate(zip(a.rows(), b.rows(), strict=True)):
            if x != y:
                text = " ".join(part[i].split())[:40]
                return f"text {start + i + 1} ({text!r}) gives {y[:6]}, tokenizers {x[:6]}"
    return None


def tokie_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("tokie")
    except metadata.PackageNotFoundError:
        return None


def fast_ids(tokenizer_json: str, max_length: int | None, unk_id: int | None,
             check_texts: Sequence[str]) -> tuple[Encoder, dict[str, Any]]:
    """(encoder, what serves and why): the fast path when it gives the `tokenizers` ids on `check_texts`
    and PROBES, else `tokenizers`; "note" is one line when the fast path is not used. The fast path is
    tokie, or for a word-level tokenizer (WordLevel, which tokie does not read) mkd.serving.fast_words."""
    import json

    reference = ReferenceIds(tokenizer_json, max_length, unk_id)
    make: Callable[..., Encoder]
    if (json.loads(tokenizer_json).get("model") or {}).get("type") == "WordLevel":
        from mkd.serving.fast_words import FastWords

        make, name = FastWords, FastWords.name
    else:
        version = tokie_version()
        if version is None:
            return reference, {"tokenizer": reference.name,
                               "note": "tokie is not installed (pip install 'mkd[fast]')"}
        make, name = TokieIds, f"tokie {version}"
    try:
        fast = make(tokenizer_json, max_length, unk_id)
    except Exception as e:  # tokie raises its own error types for tokenizer.json it cannot read
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        return reference, {"tokenizer": reference.name, "note": f"{name} cannot read this tokenizer: {first}"}
    texts = [*check_texts, *PROBES]
    diff = first_difference(reference, fast, texts)
    if diff is not None:
        return reference, {"tokenizer": reference.name,
                           "note": f"{name} tokenizes differently from tokenizers: {diff}; serving with tokenizers"}
    return fast, {"tokenizer": name, "checked_texts": len(texts)}
