"""One ONNX graph for all of a model's tasks, optionally int8, gated on the model's dev examples.

The graph is traced from the model's own `forward(task, batch)`, once per task, so any registered
architecture exports; the per-task traces repeat the shared layers, and two graph passes make them
one again: identical initializers are merged, then ONNX Runtime's common-subexpression elimination
(basic, hardware-independent optimizations) folds the repeated layers. Every task's logits are an
output named `logits_<task>`. Gates (each failure is a one-line MkdError, nothing is written):
- tokenizer.json gives the model's own token ids on every dev text;
- fp32: max |logits - PyTorch| <= TOLERANCE per task;
- int8 (ONNX Runtime dynamic quantization): argmax agreement with PyTorch >= INT8_AGREEMENT per
  classification task (every task is checked, and one error names all under it); the accuracy change
  on dev is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mkd.errors import MkdError
from mkd.models.base import MkdModel
from mkd.serving.checks import TOLERANCE, check_batches, probe_examples, quiet
from mkd.serving.runtime import feeds, session, token_rows
from mkd.tasks.task import Example, TaskSpec

INT8_AGREEMENT = 0.99
OPSET = 17
GRAPH, INT8_GRAPH, TOKENIZER = "model.onnx", "model.int8.onnx", "tokenizer.json"
GATE_EXAMPLES = 1000
"""Dev examples per task the logits gates run on (the tokenizer gate reads every dev text)."""


class ModelGraph(nn.Module):
    """Every task's logits from one set of positional inputs (what ONNX export needs)."""

    def __init__(self, model: MkdModel, names: Sequence[str], tasks: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names, self.tasks = model, list(names), list(tasks)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = dict(zip(self.names, inputs, strict=True))
        return tuple(self.model(t, batch) for t in self.tasks)


# ---- the serving tokenizer -----------------------------------------------------------------------
def serving_tokenizer(model: MkdModel) -> tuple[Any, dict[str, Any]]:
    """(tokenizers.Tokenizer, its export.json entry) reproducing model.encode."""
    from tokenizers import Tokenizer

    from mkd.models.students.vocab import PAD_ID, UNK_ID, WordVocab, word_tokenizer

    tokens = getattr(model, "tokens", None)
    max_length = int(model.max_length)  # type: ignore[attr-defined]
    if isinstance(tokens, WordVocab):
        return word_tokenizer(tokens.words, max_length), {
            "kind": "words", "pairs": "two inputs", "special_tokens": False, "pad_id": PAD_ID, "unk_id": UNK_ID}
    hf = getattr(tokens, "tokenizer", None) if tokens is not None else getattr(model, "tokenizer", None)
    if hf is None or not getattr(hf, "is_fast", False):
        raise MkdError(f"mkd cannot ship a tokenizer.json for the {model.arch} model",
                       "serve it with mkd predict --model DIR instead")
    tok = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    tok.enable_truncation(max_length)
    pad = hf.pad_token_id if hf.pad_token_id is not None else 0
    tok.enable_padding(pad_id=pad, pad_token=hf.pad_token or "[PAD]")
    unk = hf.unk_token_id if hf.unk_token_id is not None else pad
    joint = tokens is None  # a transformer reads a pair as one sequence
    return tok, {"kind": "subword", "pairs": "one input" if joint else "two inputs", "special_tokens": joint,
                 "pad_id": pad, "unk_id": unk}


def check_tokenizer(doc: dict[str, Any], tokenizer: Any, model: MkdModel, spec: TaskSpec,
                    examples: Sequence[Example]) -> int:
    """Refuse unless tokenizer.json gives model.encode's ids on every example; returns how many."""
    if not examples:
        return 0
    want = model.encode(spec, list(examples)).features
    columns = [[e.texts[i] for e in examples] for i in range(len(spec.text_fields))]
    got = token_rows(doc, tokenizer, columns)
    for name, rows in want.items():
        for example, a, b in zip(examples, rows, got.get(name, []), strict=False):
            if list(a) != list(b):
                raise MkdError(f"tokenizer.json tokenizes dev text {example.id} of task {spec.name} differently "
                               f"from the model ({name}: {list(b)[:8]} vs {list(a)[:8]})",
                               "report it with the text; export with mkd predict --model DIR as the server")
    return len(examples)


# ---- graph passes ---------------------------------------------------------------------------------
def merge_initializers(path: Path) -> None:
    """Point every use of an initializer at the first one with the same dtype, shape and bytes."""
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    first: dict[tuple[Any, ...], str] = {}
    rename: dict[str, str] = {}
    kept = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        key = (init.data_type, tuple(init.dims), hashlib.sha256(arr.tobytes()).hexdigest())
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
            kept.append(init)
    if rename:
        del graph.initializer[:]
        graph.initializer.extend(kept)
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name in rename:
                    node.input[i] = rename[name]
    onnx.save(graph_model, str(path))


def fold_repeats(src: Path, dst: Path) -> None:
    """ONNX Runtime's basic optimizations (constant folding, common subexpressions), saved as plain ONNX."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


INT8_OPS = (("MatMul", "Gemm", "LSTM"), ("MatMul", "Gemm"))
"""What int8 quantizes, first choice first, weights per output channel (per channel also kept the demo
teacher closer: 98.0% / 95.3% argmax agreement against 96.0% / 91.3% per tensor). The int8 LSTM
(DynamicQuantizeLSTM) serves bilstm_attn students 1.6-2.2x faster than fp32 at 99.4-99.8% agreement
once its weights are unshared (unshare_lstm_weights); a model whose int8 LSTMs fall under the gate
(Tang's single-task BiLSTM at hidden 300: 98.9%) keeps them fp32 (benchmarks/RESULTS.md)."""


def unshare_lstm_weights(src: Path, dst: Path) -> int:
    """Give every LSTM node its own copy of the weights it shares with another one; returns the copies.

    ONNX Runtime's LSTM quantizer rewrites a weight initializer in place (it transposes the quantized
    matrix), so the second LSTM node reading a shared initializer got a scrambled matrix: the int8
    student agreed with fp32 on 36-59% of dev. A pair task's two texts share one encoder, and
    merge_initializers makes them share one initializer, so this happened to every LSTM student with a
    pair task."""
    import onnx

    graph_model = onnx.load(str(src))
    graph = graph_model.graph
    inits = {i.name: i for i in graph.initializer}
    seen: set[str] = set()
    copies = 0
    for node in graph.node:
        if node.op_type != "LSTM":
            continue
        for k in range(1, min(4, len(node.input))):  # W, R, B
            name = node.input[k]
            if name in seen and name in inits:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__{copies}"
                graph.initializer.append(copy)
                node.input[k] = copy.name
                copies += 1
            seen.add(name)
    onnx.save(graph_model, str(dst))
    return copies


def quantize(src: Path, dst: Path, ops: Sequence[str] = INT8_OPS[0]) -> None:
    """ONNX Runtime dynamic int8 quantization of `ops` (weights int8 per channel, activations quantized
    on the fly); the fidelity gate then checks the graph on dev. Initializers are unshared for the
    quantizer and merged again after it."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    unshared = dst.with_name(dst.stem + ".unshared.onnx")
    logging.disable(logging.WARNING)  # its advice to pre-process is for static quantization
    try:
        copies = unshare_lstm_weights(src, unshared) if "LSTM" in ops else 0
        quantize_dynamic(str(unshared if copies else src), str(dst), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=list(ops))
    finally:
        logging.disable(logging.NOTSET)
        unshared.unlink(missing_ok=True)
    if copies:
        merge_initializers(dst)


# ---- export and gates -----------------------------------------------------------------------------
def _sample(model: MkdModel, examples: dict[str, list[Example]]) -> tuple[list[str], dict[str, dict]]:
    """Input names (union over tasks, a pair task's first) and each task's PyTorch check batch."""
    batches = {t: check_batches(model, s, examples[t]) for t, s in sorted(model.specs.items())}
    names: list[str] = []
    for t in sorted(batches, key=lambda t: not model.specs[t].is_pair):
        names += [n for n in batches[t][0] if n not in names]
    return names, batches


def _fill(batch: dict[str, torch.Tensor], names: Sequence[str], pad_id: int) -> dict[str, np.ndarray]:
    n = next(iter(batch.values())).shape[0]
    out = {k: v.numpy() for k, v in batch.items()}
    for name in names:
        if name not in out:
            out[name] = np.full((n, 1), 1 if name.startswith("attention_mask") else pad_id, dtype=np.int64)
    return {name: out[name] for name in names}


def torch_logits(model: MkdModel, task: str, examples: Sequence[Example], batch_size: int = 64) -> np.ndarray:
    from mkd.data.evaluate import predict

    return predict(model, task, model.encode(model.specs[task], list(examples)), batch_size)


def export_graph(model: MkdModel, tmp: Path, examples: dict[str, list[Example]], int8: bool,
                 int8_agreement: float = INT8_AGREEMENT, logits: dict[str, dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """Write model.onnx (and model.int8.onnx), tokenizer.json; check them; return export.json's body.
    `logits` (when given) receives each task's gate logits: {task: {torch_fp32, onnx_fp32, onnx_int8}}."""
    model.eval()
    names, batches = _sample(model, examples)
    tasks = sorted(model.specs)
    sample = next(b for t in sorted(tasks, key=lambda t: not model.specs[t].is_pair) for b in batches[t][:1])
    graph = ModelGraph(model, names, tasks).eval()
    outputs = [f"logits_{t}" for t in tasks]
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "length_b" if n.endswith("_b") else "length"}
                                       for n in names}
    axes.update({o: {0: "batch"} for o in outputs})
    raw = tmp / "traced.onnx"
    try:
        with quiet(), torch.no_grad():
            torch.onnx.export(graph, tuple(sample[n] for n in names), str(raw), dynamo=False, input_names=names,
                              output_names=outputs, dynamic_axes=axes, opset_version=OPSET)
        merge_initializers(raw)
        fold_repeats(raw, tmp / GRAPH)
    except Exception as e:  # the exporter's own errors are many and unrelated: name the model and stop
        raise MkdError(f"cannot export this {model.arch} model to ONNX "
                       f"({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''})",
                       "rerun with --debug for the traceback and report it") from e
    finally:
        raw.unlink(missing_ok=True)
    tokenizer, tok_doc = serving_tokenizer(model)
    tokenizer.save(str(tmp / TOKENIZER))
    doc: dict[str, Any] = {"graph": GRAPH, "int8_graph": None, "inputs": names, "opset": OPSET,
                           "tokenizer": {"file": TOKENIZER, **tok_doc}, "tasks": {}}
    fp32 = session(tmp / GRAPH, torch.get_num_threads())  # the gates run on the command's threads
    pad_id = int(tok_doc["pad_id"])
    wants: dict[str, np.ndarray] = {}  # PyTorch's gate logits, computed once for the fp32 and int8 gates
    for t in tasks:
        spec = model.specs[t]
        diff = 0.0
        with torch.no_grad():
            for batch in batches[t]:
                want = model(t, batch).numpy()
                got = fp32.run([f"logits_{t}"], _fill(batch, names, pad_id))[0]
                diff = max(diff, float(np.abs(got - want).max()))
        doc["tasks"][t] = {"output": f"logits_{t}", "type": spec.type, "labels": list(spec.labels),
                           "text_fields": list(spec.text_fields),
                           "inputs": [n for n in names if n in batches[t][0]]}
        given = examples[t]
        doc["tasks"][t]["tokenizer_checked_texts"] = check_tokenizer(doc, tokenizer, model, spec, given)
        gate = given[:GATE_EXAMPLES]
        want = wants[t] = torch_logits(model, t, gate) if gate else None
        if want is not None:
            got = ort_logits(fp32, doc, tokenizer, t, gate)
            diff = max(diff, float(np.abs(got - want).max()))
            if logits is not None:
                logits[t] = {"torch_fp32": want, "onnx_fp32": got}
        if diff > TOLERANCE:
            raise MkdError(f"the ONNX export of task {t} differs from PyTorch by {diff:.2e} (> {TOLERANCE:g})",
                           "report it with the model's mkd.json; the PyTorch model folder is unaffected")
        doc["tasks"][t].update(max_abs_diff=diff, checked_examples=len(gate),
                               checked_on="dev" if gate else "probe texts")
    from mkd.serving.fast_onnx import export_check  # tokie serves this export only if exact on every dev text

    doc["fast_tokenizer"] = export_check(doc, tmp, [x for t in tasks for e in examples[t] for x in e.texts])
    if int8:
        doc["int8_graph"] = INT8_GRAPH
        gated_int8(model, tmp, doc, tokenizer, examples, int8_agreement, wants, logits)
    return doc


def gated_int8(model: MkdModel, tmp: Path, doc: dict[str, Any], tokenizer: Any,
               examples: dict[str, list[Example]], int8_agreement: float,
               wants: dict[str, np.ndarray] | None = None, logits: dict[str, dict[str, Any]] | None = None) -> None:
    """Write the int8 graph that passes the gate on every task, first choice first (INT8_OPS): a graph
    whose int8 LSTMs fall under the gate gets its matrix products alone quantized, and export.json says
    why in "int8_first_try". Raises the gate's MkdError, naming every task under it, when no choice passes."""
    has_lstm = any(isinstance(m, nn.LSTM) for m in model.modules())  # the graph's LSTM nodes come from these
    choices = INT8_OPS if has_lstm else INT8_OPS[1:]
    for i, ops in enumerate(choices):
        quantize(tmp / GRAPH, tmp / INT8_GRAPH, ops)
        q = session(tmp / INT8_GRAPH, torch.get_num_threads())
        got: dict[str, np.ndarray] = {}
        gates = {t: int8_gate(model, q, doc, tokenizer, t, examples[t][:GATE_EXAMPLES], int8_agreement,
                              (wants or {}).get(t), got) for t in sorted(model.specs)}
        refused = int8_refusal(gates, int8_agreement)
        if refused is not None:
            if i == len(choices) - 1:
                raise refused
            doc["int8_first_try"] = f"{'/'.join(ops)}: {refused.problem}"
            continue
        doc["int8_ops"] = list(ops)
        for t, gate in gates.items():
            doc["tasks"][t]["int8"] = gate
            if logits is not None and t in logits:
                logits[t]["onnx_int8"] = got[t]
        return


def ort_logits(sess: Any, doc: dict[str, Any], tokenizer: Any, task: str, examples: Sequence[Example],
               batch_size: int = 64) -> np.ndarray:
    """Logits of an ONNX session on raw examples, tokenized by tokenizer.json (as a server would), in the
    examples' order; batches of similar lengths (less padding: the gates cost a third less)."""
    width = len(examples[0].texts)
    order = (sorted(range(len(examples)), key=lambda i: sum(len(t) for t in examples[i].texts)) if batch_size > 1
             else list(range(len(examples))))
    parts = []
    for start in range(0, len(examples), batch_size):
        part = [examples[i] for i in order[start: start + batch_size]]
        columns = [[e.texts[i] for e in part] for i in range(width)]
        parts.append(sess.run([f"logits_{task}"], feeds(doc, tokenizer, columns))[0])
    joined = np.concatenate(parts)
    out = np.empty_like(joined)
    out[np.asarray(order, dtype=np.int64)] = joined
    return out


def int8_gate(model: MkdModel, q: Any, doc: dict[str, Any], tokenizer: Any, task: str,
              examples: Sequence[Example], threshold: float = INT8_AGREEMENT,
              want: np.ndarray | None = None, keep: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Agreement of the int8 graph with PyTorch fp32 on dev; below `threshold` (INT8_AGREEMENT) "refused"
    holds it unrounded, for int8_refusal to name every such task at once. `want`: PyTorch's logits of
    these examples, when the fp32 gate computed them; `keep` receives the int8 logits under the task's name."""
    spec = model.specs[task]
    examples = list(examples)
    if not examples:
        examples = probe_examples(spec)
    if want is None or len(want) != len(examples):
        want = torch_logits(model, task, examples)
    got = ort_logits(q, doc, tokenizer, task, examples, batch_size=1)  # as it serves (runtime.OnnxModel)
    if keep is not None:
        keep[task] = got
    out: dict[str, Any] = {"max_abs_diff": float(np.abs(got - want).max()), "examples": len(examples)}
    if spec.type != "classification":
        return out
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    out["argmax_agreement"] = round(agree, 4)
    gold = [(i, e.label) for i, e in enumerate(examples) if e.label is not None]
    if gold:
        idx = np.array([i for i, _ in gold])
        labels = np.array([g for _, g in gold])
        before, after = float((want.argmax(1)[idx] == labels).mean()), float((got.argmax(1)[idx] == labels).mean())
        out.update(accuracy_fp32=round(before, 4), accuracy_int8=round(after, 4),
                   accuracy_change=round(after - before, 4))
    if agree < threshold:
        out["refused"] = agree
    return out


def int8_refusal(gates: dict[str, dict[str, Any]], threshold: float) -> MkdError | None:
    """One error naming every task whose int8 graph is under the gate (None when all pass)."""
    low = {t: g for t, g in gates.items() if "refused" in g}
    if not low:
        return None
    parts = [f"task {t} {g['refused']:.1%}" + (f" (its accuracy changes by {100 * g['accuracy_change']:+.2f} points)"
                                              if "accuracy_change" in g else "") for t, g in low.items()]
    lowest = min(g["refused"] for g in low.values())
    return MkdError(f"the int8 graph agrees with PyTorch on too few dev examples (< {threshold:.0%}) of "
                    f"{len(low)} of {len(gates)} task(s): {', '.join(parts)}",
                    f"accept it with --int8-agreement {max(0.0, np.floor(lowest * 100) / 100):.2f}, "
                    "or export without --quantize int8")
