"""The bench's fast serving path, and what a bench stage reuses.

A model gets the "numpy" path when its architecture has one (the static student, in
mkd.serving.static_numpy; the one-layer BiLSTM, in mkd.serving.lstm_numpy, where numba is installed)
and it passes its gates on the bench's own texts: tokie's ids against
`tokenizers` (else `tokenizers` serves it, and the figures say so) and the logits against PyTorch
(else no numpy figure, and one line says why). `Shared` loads and exports each model once per stage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mkd.errors import MkdError
from mkd.models.base import MkdModel
from mkd.tasks.task import Example

NUMPY = "numpy"
GATE_LOGITS = "gate_logits"


def texts_of(examples: Sequence[Any]) -> list[str]:
    return [t for e in examples for t in e.texts]


NUMPY_SERVERS = {"static": ("mkd.serving.static_numpy", "StaticNumpy"),
                 "bilstm": ("mkd.serving.lstm_numpy", "BiLSTMNumpy")}
"""Architecture -> (module, class) of its numpy path, imported only when a model of it is benched."""


def numpy_server(model: Any, check_texts: Sequence[str]) -> Any:
    """The model served from numpy (NUMPY_SERVERS' `from_model`), or None where its architecture has no such
    path (or the server declines: the BiLSTM without a compiled kernel or with more than one layer)."""
    import importlib

    where = NUMPY_SERVERS.get(getattr(model, "arch", None) or "")
    if where is None:
        return None
    return getattr(importlib.import_module(where[0]), where[1]).from_model(model, check_texts)


def numpy_runner(model: Any, spec: Any, examples: Sequence[Any]) -> tuple[Callable | None, dict[str, Any]]:
    """(runner of raw examples, what serves and the gates' figures), or (None, why) for no numpy path."""
    from mkd.serving.numpy_server import check_logits

    served = numpy_server(model, texts_of(examples))
    if served is None:
        return None, {}
    width = len(spec.text_fields)
    columns = [[e.texts[i] for e in examples] for i in range(width)]
    try:
        check = check_logits(served, model, spec.name, columns)
    except MkdError as e:
        return None, {**served.tokenizer_info, "error": e.problem}

    def run(part: Sequence[Any]) -> object:
        return served.logits(spec.name, [[e.texts[i] for e in part] for i in range(width)])

    return run, {**served.tokenizer_info, **check}


# ---- what one bench stage reuses across its tasks -------------------------------------------------
class Shared:
    """Loaded models and ONNX exports of one bench stage, shared by its tasks: each model is loaded
    once and exported once, its gates run on every task's bench examples (the old way exported the
    teacher once per task, and twice when its int8 graph missed the gate)."""

    def __init__(self, scratch: Path, examples: dict[str, list[Any]],
                 gate: dict[str, list[Any]] | None = None) -> None:
        """`examples`: each task's bench texts; `gate`: the dev texts the int8 graph is gated on (default:
        the bench texts), like `mkd export --quantize int8`."""
        self.scratch, self.examples, self.gate = Path(scratch), examples, gate or examples
        self.models: dict[Path, Any] = {}
        self.graphs: dict[Path, tuple[Path, dict[str, Any]] | Exception] = {}

    def model(self, folder: Path, task: str) -> Any:
        from mkd.models.loading import load_model

        if folder not in self.models:
            self.models[folder] = load_model(folder)
        model = self.models[folder]
        if task not in model.specs:  # load_model's own refusal, for the same one line
            return load_model(folder, tasks=[task])
        return model

    def graph(self, folder: Path, name: str, model: Any) -> tuple[Path, dict[str, Any]]:
        if folder not in self.graphs:
            given = {t: e for t, e in self.gate.items() if t in model.specs}
            try:
                self.graphs[folder] = onnx_export_for(folder, self.scratch / str(len(self.graphs)), given, model)
            except (MkdError, ImportError, RuntimeError, ValueError) as e:
                self.graphs[folder] = e  # each task reports it; none exports again
        got = self.graphs[folder]
        if isinstance(got, Exception):
            raise got
        out, info = got
        return out, dict(info)


def int8_tasks(doc: dict[str, Any], threshold: float | None = None) -> tuple[list[str], dict[str, str]]:
    """(tasks whose int8 graph passes the export's agreement gate, why the others do not) of an export
    made with int8_agreement=0 (every task's agreement recorded, none refused)."""
    from mkd.serving.onnx_graph import INT8_AGREEMENT

    threshold = INT8_AGREEMENT if threshold is None else threshold
    if not doc.get("int8_graph"):
        return [], {}
    ok, why = [], {}
    for task, info in doc["tasks"].items():
        agree = (info.get("int8") or {}).get("argmax_agreement")
        if agree is None or agree >= threshold:
            ok.append(task)
        else:
            why[task] = (f"the int8 graph agrees with PyTorch on {agree:.1%} of task {task}'s examples "
                         f"(< {threshold:.0%})")
    return ok, why


def onnx_export_for(folder: Path, scratch: Path, examples: dict[str, list[Example]],
                    model: MkdModel | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder's own ONNX export when it was made from these weights, else a fresh one made once with
    an int8 graph whose agreement is recorded per task; "int8" lists the tasks where it passes the
    export's gate, "int8_error" says why not for the others. A fresh export's gate logits ride along under
    GATE_LOGITS ({task: {path: logits of the gate examples}}): the bench's path checks reuse them."""
    from mkd.serving.export import export_onnx, weights_digest
    from mkd.serving.runtime import read_manifest

    saved = folder / "onnx"
    with contextlib.suppress(Exception):
        doc = read_manifest(saved)
        if doc.get("weights_sha256") == weights_digest(folder):
            return saved, {"graph": str(saved / doc["graph"]), "int8": int8_tasks(doc)[0]}
    logits: dict[str, dict[str, Any]] = {}
    doc = export_onnx(folder, scratch, examples, quantize="int8", int8_agreement=0.0, model=model, logits=logits)
    ok, why = int8_tasks(doc)
    return scratch, {"graph": "exported for the benchmark", "int8": ok, **({"int8_error": why} if why else {}),
                     GATE_LOGITS: logits}
