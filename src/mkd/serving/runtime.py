"""Serving an ONNX export without PyTorch: tokenizer.json (Hugging Face `tokenizers`) + ONNX Runtime.

An export folder holds one graph for all the model's tasks (model.onnx; model.int8.onnx when
quantized), tokenizer.json and export.json, which says how texts become inputs:
- "two inputs" (LSTM students): each text is tokenized alone, without special tokens; a pair's second
  text goes to input_ids_b / attention_mask_b. A single-text task feeds those as one <pad> a row.
- "one input" (transformers): a pair is tokenized together (special tokens, token_type_ids).
An empty text is one unknown token (the models never see an empty row). This module imports numpy,
onnxruntime and tokenizers only (tokie too, where export.json records it exact: mkd.serving.fast_onnx):
`mkd predict --onnx` loads no PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mkd.errors import MkdError

MANIFEST = "export.json"
GRAPHS = {"fp32": "graph", "int8": "int8_graph"}


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise MkdError(f"{folder} is not an ONNX export of mkd (no {MANIFEST})",
                       "make one with mkd export --model DIR --format onnx")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("format") != "onnx" or "graph" not in doc:
        raise MkdError(f"{path} describes no single ONNX graph (an older or Hugging Face export)",
                       "export it again with this mkd: mkd export --model DIR --format onnx")
    return doc


def load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def encode_side(tokenizer: Any, texts: Sequence[str], second: Sequence[str] | None = None,
                special: bool = False) -> list[Any]:
    """Encodings of texts (or of pairs with `second`), unpadded and truncated as tokenizer.json says."""
    tokenizer.no_padding()
    pairs = list(zip(texts, second, strict=True)) if second is not None else list(texts)
    return tokenizer.encode_batch(pairs, add_special_tokens=special)


def token_rows(doc: dict[str, Any], tokenizer: Any, columns: Sequence[Sequence[str]]) -> dict[str, list[list[int]]]:
    """Unpadded id lists per model input (input_ids[, token_type_ids][, input_ids_b]) for the texts."""
    spec = doc["tokenizer"]
    unk = int(spec["unk_id"])

    def ids(texts: Sequence[str], second: Sequence[str] | None = None) -> tuple[list[list[int]], list[list[int]]]:
        encs = encode_side(tokenizer, texts, second, spec["special_tokens"])
        return [e.ids or [unk] for e in encs], [e.type_ids or [0] for e in encs]

    if spec["pairs"] == "two inputs" or len(columns) == 1:
        rows: dict[str, list[list[int]]] = {}
        for side, texts in zip(("", "_b"), columns, strict=False):
            rows[f"input_ids{side}"], types = ids(texts)
            if "token_type_ids" in doc["inputs"] and not side:
                rows["token_type_ids"] = types
        return rows
    first, types = ids(columns[0], columns[1])
    rows = {"input_ids": first}
    if "token_type_ids" in doc["inputs"]:
        rows["token_type_ids"] = types
    return rows


def pad(rows: dict[str, list[list[int]]], pad_id: int) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays, with attention_mask(_b) beside each input_ids(_b)."""
    out: dict[str, np.ndarray] = {}
    for name, seqs in rows.items():
        width = max(1, max(len(s) for s in seqs))
        arr = np.full((len(seqs), width), pad_id if name.startswith("input_ids") else 0, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for i, s in enumerate(seqs):
            arr[i, : len(s)] = s
            mask[i, : len(s)] = 1
        out[name] = arr
        if name.startswith("input_ids"):
            out[name.replace("input_ids", "attention_mask")] = mask
    return out


def feeds(doc: dict[str, Any], tokenizer: Any, columns: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Every graph input for one batch of texts; inputs the task does not read get the filler row."""
    arrays = pad(token_rows(doc, tokenizer, columns), int(doc["tokenizer"]["pad_id"]))
    n = len(columns[0])
    for name in doc["inputs"]:
        if name not in arrays:
            value = 1 if name.startswith("attention_mask") else int(doc["tokenizer"]["pad_id"])
            arrays[name] = np.full((n, 1), value, dtype=np.int64)
    return {name: arrays[name] for name in doc["inputs"]}


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An export folder, ready to score raw texts: `logits(task, columns)`.

    The int8 graph runs one text at a time: ONNX Runtime's dynamic quantization scales each activation
    tensor by its largest value over the whole batch, so in a batch a text's int8 logits (and, near a
    tie, its label) depend on its batch mates. One row per run makes a text's answer its own."""

    def __init__(self, folder: str | Path, precision: str = "fp32", threads: int = 1,
                 check_texts: Sequence[str] | None = None) -> None:
        """`check_texts`: texts to check the fast tokenizer on (else export.json's record of its check)."""
        from mkd.serving.fast_onnx import onnx_encoder

        self.folder = Path(folder)
        self.doc = read_manifest(self.folder)
        key = GRAPHS.get(precision)
        if key is None or not self.doc.get(key):
            raise MkdError(f"{self.folder} has no {precision} graph",
                           "export it with --quantize int8" if precision == "int8" else "export it again")
        self.tokenizer = load_tokenizer(self.folder / self.doc["tokenizer"]["file"])
        self.session = session(self.folder / self.doc[key], threads)
        self.tasks: dict[str, Any] = self.doc["tasks"]
        self.one_row = precision == "int8"
        self.fast, self.fast_info = onnx_encoder(self.doc, self.folder, check_texts)

    def logits(self, task: str, columns: Sequence[Sequence[str]], batch_size: int = 64) -> np.ndarray:
        """(n, outputs) logits of `task` for n texts (pairs: two columns), in input order; the int8 graph
        one text at a time, whatever `batch_size`."""
        output = self.tasks[task]["output"]
        batch_size = 1 if self.one_row else batch_size
        parts = []
        for start in range(0, len(columns[0]), batch_size):
            part = [list(c[start: start + batch_size]) for c in columns]
            parts.append(self.session.run([output], self.feeds(part))[0])
        return np.concatenate(parts) if parts else np.zeros((0, len(self.tasks[task]["labels"]) or 1), np.float32)

    def feeds(self, columns: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        from mkd.serving.fast_onnx import fast_feeds

        return fast_feeds(self.doc, self.fast, columns) if self.fast else feeds(self.doc, self.tokenizer, columns)
