"""What every export is checked on: inputs (the model's own dev examples, or plain probe texts) at two
batch shapes, the tolerance against PyTorch, and a guard that keeps the exporter's C++ warnings quiet.
Shared by the export (export.py) and the ONNX graph (onnx_graph.py), so neither imports the other back."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

import torch

from mkd.models.base import MkdModel
from mkd.tasks.task import Example, TaskSpec

TOLERANCE = 1e-4
NOT_INPUTS = ("labels", "label_mask", "teacher_logits", "index")
PROBE_TEXTS = (
    "a gripping, beautifully acted film that stays with you long after the credits",
    "the plot is thin and the jokes fall flat",
    "A man is playing a guitar on a crowded street.",
    "two dogs run through the snow",
    "it's not bad, but it isn't good either",
    "Nobody is outside.",
    "the movie was very long",
    "What a waste of time!",
)
"""Used only when the model's own dev data is not at hand (e.g. a folder copied to another machine)."""


# ---- inputs --------------------------------------------------------------------------------------
def probe_examples(spec: TaskSpec) -> list[Example]:
    """Plain English texts (pairs: consecutive texts) of varied lengths, for models without data at hand."""
    texts = list(PROBE_TEXTS)
    if spec.is_pair:
        return [Example(f"probe:{i}", (texts[i], texts[(i + 3) % len(texts)])) for i in range(len(texts))]
    return [Example(f"probe:{i}", (t,)) for i, t in enumerate(texts)]


def check_batches(model: MkdModel, spec: TaskSpec, examples: Sequence[Example]) -> list[dict[str, torch.Tensor]]:
    """Two batches of model inputs: all examples, and the shortest third (fewer rows, shorter padding)."""
    examples = list(examples)[:32] or probe_examples(spec)
    data = model.encode(spec, examples)
    shortest = sorted(range(len(data)), key=lambda i: data.lengths[i])[: max(1, len(data) // 3)]
    batches = [data.collate(range(len(data))), data.collate(shortest)]
    return [{k: v for k, v in b.items() if k not in NOT_INPUTS} for b in batches]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The TorchScript exporter writes C++ warnings straight to file descriptor 2 (e.g. shape inference of
    packed sequences, harmless here): keep the command's output to its own lines."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 to protect
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
        return
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
