"""Which ONNX Runtime dynamic-quantization settings keep a model's predictions (prints figures).

For a model folder: export it once to ONNX fp32 (or reuse an export folder given as `out`), quantize
that graph with several `quantize_dynamic` settings, and print, per task, the argmax agreement of each
int8 graph with fp32 and both dev accuracies on up to --n dev examples, and each graph's speed against
fp32 (examples/s at batch 32, one thread, tokenization included, interleaved rounds). This is how
mkd's choice (mkd.serving.onnx_graph: which ops, per channel, which nodes stay fp32) was made; see
benchmarks/RESULTS.md.

    python benchmarks/int8_probe.py runs/demo/student /tmp/probe-student
    python benchmarks/int8_probe.py runs/demo/teacher /tmp/probe-teacher --n 1000
    python benchmarks/int8_probe.py runs/demo/teacher /tmp/probe-teacher --only mkd "FFN out fp32"
    python benchmarks/int8_probe.py runs/demo/teacher /tmp/probe-teacher --only mkd --scan --rounds 0
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.capi.onnxruntime_pybind11_state import Fail
from onnxruntime.quantization import QuantType, quantize_dynamic

from mkd.serving.export import dev_examples, export_onnx
from mkd.serving.onnx_graph import quantize
from mkd.serving.runtime import OnnxModel

MATMULS = {"op_types_to_quantize": ["MatMul", "Gemm"]}
FFN_OUT = re.compile(r"/layer\.\d+/output/dense")  # a Transformer layer's FFN down-projection
HEADS = re.compile(r"/heads/")
MKD = "mkd (MatMul/Gemm/LSTM, per channel, LSTM weights unshared)"
NBITS = "weight-only 8-bit (MatMulNBits, blocks of 32, int8 compute)"


def _weight_only_8bit(src: Path, dst: Path) -> None:
    """ONNX Runtime's MatMulNBits at 8 bits (needs `pip install onnx_ir`, which mkd does not)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8,
                                          op_types_to_quantize=("MatMul",))
    quantizer = MatMulNBitsQuantizer(str(src), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def _layers(names: list[str]) -> list[str]:
    return sorted({m.group(0) for n in names if (m := re.search(r"/layer\.\d+/", n))},
                  key=lambda s: int(s.strip("/").split(".")[1]))


GROUP = re.compile(r"layer\.(\d+)/(attention/self/(?:query|key|value)|attention/output|intermediate|output)")
GROUP_NAMES = {"attention/output": "attention out", "intermediate": "FFN in", "output": "FFN out"}


def _groups(names: list[str]) -> dict[str, list[str]]:
    """A BERT-style Transformer's MatMuls by layer and role (Q/K/V, attention out, FFN in, FFN out)."""
    groups: dict[str, list[str]] = {}
    for n in names:
        if m := GROUP.search(n):
            groups.setdefault(f"layer {m.group(1)} {GROUP_NAMES.get(m.group(2), 'Q/K/V')}", []).append(n)
    return groups


def _keep(pattern: Callable[[list[str]], list[str]]) -> Callable[[list[str]], dict]:
    """Settings of mkd's choice with the nodes `pattern` picks left in fp32."""
    return lambda names: {**MATMULS, "per_channel": True, "nodes_to_exclude": pattern(names)}


VARIANTS: dict[str, Callable[[list[str]], dict]] = {
    "every op, per tensor (ONNX Runtime's default)": lambda names: {},
    "MatMul/Gemm, per tensor": lambda names: dict(MATMULS),
    "MatMul/Gemm, per channel": lambda names: {**MATMULS, "per_channel": True},
    MKD: lambda names: {},  # mkd.serving.onnx_graph.quantize itself
    NBITS: lambda names: {},  # _weight_only_8bit
    "FFN out fp32": _keep(lambda names: [n for n in names if FFN_OUT.search(n)]),
    "heads fp32": _keep(lambda names: [n for n in names if HEADS.search(n)]),
    "last layer fp32": _keep(lambda names: [n for n in names if _layers(names) and _layers(names)[-1] in n]),
    "first layer fp32": _keep(lambda names: [n for n in names if _layers(names) and _layers(names)[0] in n]),
    "FFN out of the last layer fp32": _keep(
        lambda names: [n for n in names if FFN_OUT.search(n) and _layers(names)[-1] in n]),
    "per channel, reduce_range": lambda names: {**MATMULS, "per_channel": True, "reduce_range": True},
    "MatMul/Gemm/LSTM, per channel, weights left shared": lambda names: {
        "op_types_to_quantize": ["MatMul", "Gemm", "LSTM"], "per_channel": True},
}


def _speed(models: dict[str, OnnxModel], task: str, columns: list[list[str]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for r in range(rounds + 1):
        for name in (list(models) if r % 2 else list(models)[::-1]):
            start = time.perf_counter()
            models[name].logits(task, columns, batch_size=32)
            if r:  # the first round warms up
                times[name].append(len(columns[0]) / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in times.items()}


def _columns(rows: list) -> list[list[str]]:
    return [[e.texts[k] for e in rows] for k in range(len(rows[0].texts))]


def _cells(examples: dict, reference: dict, fp32: OnnxModel, int8: OnnxModel, rounds: int) -> list[str]:
    cells = []
    for task, rows in examples.items():
        columns = _columns(rows)
        a, b = reference[task], int8.logits(task, columns).argmax(1)
        gold = np.array([e.label for e in rows])
        cell = (f"{task}: agreement {(a == b).mean():.1%}, accuracy {(a == gold).mean():.1%} -> "
                f"{(b == gold).mean():.1%}")
        if rounds:
            speed = _speed({"fp32": fp32, "int8": int8}, task, [c[:256] for c in columns], rounds)
            cell += f", {speed['int8'] / speed['fp32']:.2f}x fp32 ({speed['int8']:.0f} ex/s)"
        cells.append(cell)
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path, help="a scratch folder for the graphs (an export folder is reused)")
    ap.add_argument("--n", type=int, default=300, help="dev examples per task")
    ap.add_argument("--only", nargs="*", default=None, help="variants whose names contain one of these (default: all)")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (0: no timing)")
    ap.add_argument("--scan", action="store_true",
                    help="also: each layer's Q/K/V, attention out, FFN in, FFN out kept fp32 alone (no timing)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # ONNX Runtime's advice to pre-process is for static quantization
    if not (args.out / "export.json").is_file():
        export_onnx(args.model, args.out)
    manifest = args.out / "export.json"
    doc = json.loads(manifest.read_text())
    fp32 = OnnxModel(args.out, "fp32")
    examples = dev_examples(args.model, list(fp32.doc["tasks"]), args.n)
    names = [n.name for n in onnx.load(str(args.out / doc["graph"]), load_external_data=False).graph.node
             if n.op_type in ("MatMul", "Gemm")]
    reference = {t: fp32.logits(t, _columns(rows)).argmax(1) for t, rows in examples.items()}
    print(f"{args.model}: {len(names)} MatMul/Gemm nodes; {', '.join(f'{t}: {len(e)}' for t, e in examples.items())} "
          "dev examples", flush=True)
    variants = {k: v for k, v in VARIANTS.items() if not args.only or any(o in k for o in args.only)}
    if args.scan:
        variants.update({f"{g} fp32": _keep(lambda names, g=g: _groups(names)[g]) for g in _groups(names)})
    for i, (name, settings) in enumerate(variants.items()):
        graph = args.out / f"probe-{i}.int8.onnx"
        chosen = settings(names)
        if name in (MKD, NBITS):
            (quantize if name == MKD else _weight_only_8bit)(args.out / doc["graph"], graph)
            logging.disable(logging.WARNING)  # quantize restores logging when it is done
        else:
            quantize_dynamic(str(args.out / doc["graph"]), str(graph), weight_type=QuantType.QInt8, **chosen)
        manifest.write_text(json.dumps({**doc, "int8_graph": graph.name}))
        try:
            int8 = OnnxModel(args.out, "int8")
            cells = _cells(examples, reference, fp32, int8, 0 if name not in VARIANTS else args.rounds)
        except Fail as e:  # ONNX Runtime refuses some graphs outright
            cells = [f"does not run ({str(e).split('Status Message: ')[-1][:120]})"]
        kept = len(chosen.get("nodes_to_exclude", []))
        print(f"{name} ({kept} nodes fp32): {graph.stat().st_size / 1e6:.1f} MB; " + "; ".join(cells), flush=True)
    manifest.write_text(json.dumps(doc))


if __name__ == "__main__":
    main()
