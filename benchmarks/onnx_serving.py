"""ONNX serving of a multi-task LSTM student at full size (issue 12.4): one graph vs one per task, fp32 vs int8.

    OMP_NUM_THREADS=1 python benchmarks/onnx_serving.py [--arch bilstm_attn] [--rounds 7]

A random bilstm_attn student (hidden 300, 300-d embeddings over a 20,000-word vocabulary) with the
demo's two tasks (rt_polarity-like single text, snli-like pair). Prints the size of the single
graph (`mkd export`) against the sum of per-task graphs (each task traced alone, as mkd exported
before), and ONNX Runtime examples/s at batch 32 (one thread, tokenization included, interleaved
medians) of the fp32 and int8 graphs. Random weights: the int8 gate is skipped here, speed and size
do not depend on training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mkd.serving.onnx_graph as ox
from mkd.models.students.bilstm import BiLSTMStudent
from mkd.models.students.bilstm_attn import BiAttentiveStudent
from mkd.models.students.vocab import WordVocab
from mkd.serving.runtime import OnnxModel
from mkd.tasks.task import Example, TaskSpec

SINGLE = TaskSpec("rt", ("text",), "classification", ("neg", "pos"), ("accuracy",), "accuracy")
PAIR = TaskSpec("nli", ("premise", "hypothesis"), "classification", ("e", "n", "c"), ("accuracy",), "accuracy")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="bilstm_attn", choices=["bilstm", "bilstm_attn"])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    words = [f"w{i}" for i in range(20000)]
    vocab = WordVocab(["<pad>", "<unk>", *words])
    cls = BiAttentiveStudent if args.arch == "bilstm_attn" else BiLSTMStudent
    specs = {"rt": SINGLE, "nli": PAIR}
    model = cls(specs, vocab, len(vocab), 300, hidden_size=300).eval()
    g = torch.Generator().manual_seed(1)

    def text(n: int) -> str:
        return " ".join(words[int(i)] for i in torch.randint(0, 20000, (n,), generator=g))

    examples = {"rt": [Example(f"r{i}", (text(int(5 + i % 30)),)) for i in range(256)],
                "nli": [Example(f"n{i}", (text(int(5 + i % 20)), text(int(3 + i % 10)))) for i in range(256)]}
    ox.int8_gate = lambda *a, **k: {"gate": "skipped (random weights)"}  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one"
        one.mkdir()
        (one / "export.json").write_text(json.dumps({"format": "onnx", **ox.export_graph(model, one, examples, True)}))
        per_task = 0
        for t in specs:
            alone = Path(tmp) / t
            alone.mkdir()
            sub = cls({t: specs[t]}, vocab, len(vocab), 300, hidden_size=300).eval()
            sub.load_state_dict(model.state_dict(), strict=False)
            ox.export_graph(sub, alone, {t: examples[t]}, int8=False)
            per_task += (alone / ox.GRAPH).stat().st_size
        size, size8 = (one / ox.GRAPH).stat().st_size, (one / ox.INT8_GRAPH).stat().st_size
        print(f"{args.arch}: single graph {size / 1e6:.1f} MB (int8 {size8 / 1e6:.1f} MB) vs per-task graphs "
              f"{per_task / 1e6:.1f} MB in all")
        served = {q: OnnxModel(one, q) for q in ("fp32", "int8")}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for t, spec in specs.items():
                cols = [[e.texts[i] for e in examples[t]] for i in range(len(spec.text_fields))]
                for q, m in served.items():
                    start = time.perf_counter()
                    m.logits(t, cols, batch_size=32)
                    times.setdefault((t, q), []).append(len(examples[t]) / (time.perf_counter() - start))
        for t in specs:
            fp, i8 = (statistics.median(times[(t, q)]) for q in ("fp32", "int8"))
            print(f"  {t:4s} batch 32, 1 thread: ONNX fp32 {fp:7.0f} ex/s, int8 {i8:7.0f} ex/s ({i8 / fp:.2f}x)")


if __name__ == "__main__":
    main()
