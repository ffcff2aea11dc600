"""Which ONNX Runtime dynamic-quantization settings keep a model's predictions (prints figures).

For a model folder: export it once to ONNX fp32, quantize that graph with several `quantize_dynamic`
settings, and print, per task, the argmax agreement of each int8 graph with fp32 and both dev
accuracies on up to 300 dev examples. This is how mkd's choice (MatMul/Gemm only, per channel:
mkd.onnx_export.QUANTIZED_OPS) was made; see benchmarks/RESULTS.md.

    python benchmarks/int8_probe.py runs/demo/student /tmp/probe-student
    python benchmarks/int8_probe.py runs/demo/teacher /tmp/probe-teacher
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from mkd.export import dev_examples, export_onnx
from mkd.serve import OnnxModel

VARIANTS = {
    "every op, per tensor (ONNX Runtime's default)": {},
    "MatMul/Gemm, per tensor": {"op_types_to_quantize": ["MatMul", "Gemm"]},
    "MatMul/Gemm, per channel (mkd)": {"op_types_to_quantize": ["MatMul", "Gemm"], "per_channel": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path, help="a scratch folder for the graphs")
    ap.add_argument("--n", type=int, default=300, help="dev examples per task")
    args = ap.parse_args()
    if not (args.out / "export.json").is_file():
        export_onnx(args.model, args.out)
    fp32 = OnnxModel(args.out, "fp32")
    examples = dev_examples(args.model, list(fp32.doc["tasks"]), args.n)
    manifest = args.out / "export.json"
    for i, (name, settings) in enumerate(VARIANTS.items()):
        graph = args.out / f"probe-{i}.int8.onnx"
        quantize_dynamic(str(args.out / "model.onnx"), str(graph), weight_type=QuantType.QInt8, **settings)
        doc = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**doc, "int8_graph": graph.name}))
        int8 = OnnxModel(args.out, "int8")
        cells = []
        for task, rows in examples.items():
            columns = [[e.texts[k] for e in rows] for k in range(len(rows[0].texts))]
            a, b = fp32.logits(task, columns).argmax(1), int8.logits(task, columns).argmax(1)
            gold = np.array([e.label for e in rows])
            cells.append(f"{task}: agreement {(a == b).mean():.1%}, accuracy {(a == gold).mean():.1%} -> "
                         f"{(b == gold).mean():.1%}")
        print(f"{name}: {graph.stat().st_size / 1e6:.1f} MB; " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
