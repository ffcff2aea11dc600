"""The fast end of the front, measured: tokenizers against tokie, and the static student's serving paths
against fastText and a small BiLSTM, in one interleaved bench per task (one thread, tokenization included).

1. Tokenizers: every text of each task (train, dev, test) through `tokenizers` and through tokie, one
   thread, batches of 32: identical ids or not (counted), texts/s by wall clock and by CPU time.
2. Serving, one interleaved `mkd.serving.timing.measure` per task on its dev texts: the static student
   in PyTorch (mkd's path until now), in numpy with `tokenizers` ids, in numpy with tokie ids (the fast
   path), fastText supervised (the study's peer, trained here on the run's train split), and a small
   BiLSTM (GloVe-50d, hidden 96; untrained weights serve at the trained model's speed; --bilstm DIR for a
   trained one) in PyTorch, in ONNX Runtime with the word-level fast path, and in numpy with its compiled
   recurrence (mkd.serving.lstm_numpy), also with the word split's chunk memory emptied before every call
   (each batch as if its words were new). Examples/s at batch 32 (wall and CPU) and batch-1 p50 / p99 latency.
3. Predictions: the numpy paths' argmax against PyTorch's on every dev example of each task.

    OMP_NUM_THREADS=1 python benchmarks/fast_serving.py runs/demo [--bilstm DIR] [--rounds 5 --budget 0.2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread: no rayon pool in `tokenizers`

import numpy as np
import torch

from mkd.config import StudentConfig, load_recipe
from mkd.models.loading import load_model
from mkd.serving.bench import onnx_runner, torch_runner
from mkd.serving.fast_bench import texts_of
from mkd.serving.fast_tokens import ReferenceIds, TokieIds, first_difference
from mkd.serving.lstm_numpy import BiLSTMNumpy
from mkd.serving.numpy_server import check_logits
from mkd.serving.runtime import OnnxModel
from mkd.serving.static_numpy import StaticNumpy
from mkd.serving.timing import measure
from mkd.tasks import load_task

FASTTEXT = {"epoch": 5, "lr": 0.5, "wordNgrams": 2, "dim": 100, "bucket": 200_000}  # from the study's grid


def speed(encode, texts: list[str], batch: int = 32) -> tuple[float, float]:
    """(texts/s by wall clock, by CPU time) over all texts in batches."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        encode(texts[i: i + batch])
    return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)


def tokenizer_part(student, datas) -> None:
    print("\n1. MiniLM-L6 tokenizer.json (padding off): tokenizers vs tokie, one thread, batches of 32")
    js = student.tokens.tokenizer.backend_tokenizer.to_str()
    ref, fast = ReferenceIds(js, student.max_length, student.tokens.unk_id), TokieIds(js, student.max_length,
                                                                                      student.tokens.unk_id)
    for name, data in datas.items():
        texts = [t for split in data.splits.values() for e in split for t in e.texts]
        diff = first_difference(ref, fast, texts)
        a, b = speed(ref, texts), speed(fast, texts)
        print(f"  {name:12s} {len(texts):6d} texts, ids {'identical' if diff is None else 'DIFFER: ' + diff}; "
              f"tokenizers {a[0]:8.0f}/s (cpu {a[1]:8.0f}), tokie {b[0]:8.0f}/s (cpu {b[1]:8.0f}): {b[0] / a[0]:.1f}x")


def small_bilstm(folder: Path | None, datas, scratch: Path):
    if folder is not None:
        return load_model(folder)
    from mkd.models.students import build_student

    cfg = StudentConfig(type="bilstm", embeddings="glove-6b-50d", pooling="mean", hidden_size=96)
    texts = [t for d in datas.values() for e in d.split("train") for t in e.texts]
    torch.manual_seed(0)
    build_student(cfg, {n: d.spec for n, d in datas.items()}, texts, None).save(scratch / "bilstm")
    return load_model(scratch / "bilstm")


def fasttext_runner(data):
    """fastText as the run's baselines train it (mkd.baselines), at the study's best setting."""
    from mkd.baselines.fasttext_baseline import FastTextBaseline

    return FastTextBaseline().fit(data, FASTTEXT, 13).predict


def serving_part(student, bilstm, bilstm_dir: Path, datas, args, scratch: Path) -> None:
    from mkd.serving.fast_bench import onnx_export_for

    print(f"\n2. Serving, one thread, tokenization included; {args.rounds} interleaved rounds of {args.budget}s "
          "per path and batch size")
    print(f"  {'task':12s} {'path':34s} {'ex/s b=32':>10s} {'cpu ex/s':>10s} {'b=1 p50 ms':>11s} {'p99 ms':>8s}")
    graph, _ = onnx_export_for(bilstm_dir, scratch / "bilstm-onnx", {t: d.split("dev") for t, d in datas.items()},
                               bilstm)
    for name, data in datas.items():
        dev = data.split("dev")[: args.examples]
        spec = student.specs[name]
        fast = StaticNumpy.from_model(student, texts_of(dev))
        slow = StaticNumpy(fast_weights(student), student.settings(), fast.tasks,
                           ReferenceIds(student.tokens.tokenizer.backend_tokenizer.to_str(), student.max_length,
                                        student.tokens.unk_id))
        width = len(spec.text_fields)
        runners = {
            "static, PyTorch (tokenizers)": torch_runner(student, spec),
            "static, numpy + tokenizers": _numpy(slow, name, width),
            "static, numpy + tokie (fast path)": _numpy(fast, name, width),
            "fastText supervised": fasttext_runner(data),
            "small BiLSTM, PyTorch": torch_runner(bilstm, bilstm.specs[name]),
            "small BiLSTM, ONNX + tokenizers": onnx_runner(OnnxModel(graph, "fp32", 1), bilstm.specs[name]),
            "small BiLSTM, ONNX + regex batches": onnx_runner(OnnxModel(graph, "fp32", 1, texts_of(dev)),
                                                              bilstm.specs[name]),
        }
        compiled = BiLSTMNumpy.from_model(bilstm, texts_of(dev))
        if compiled is not None:
            runners["small BiLSTM, numpy + compiled kernel"] = _numpy(compiled, name, width)
            cold = BiLSTMNumpy.from_model(bilstm, texts_of(dev))
            if hasattr(cold.encoder, "chunks"):  # the regex batches' chunk memory emptied before every call
                runners["small BiLSTM, numpy, no chunk memory"] = _forgetting(cold, name, width)
        figures = measure(runners, dev, (1, 32), args.rounds, args.budget)
        for path, f in figures.items():
            b32, b1 = f["batch_32"], f["batch_1"]
            print(f"  {name:12s} {path:34s} {b32['examples_per_s']:10.0f} {b32['cpu_examples_per_s']:10.0f} "
                  f"{b1['p50_ms']:11.3f} {b1['p99_ms']:8.3f}")
        print(f"  {'':12s} (numpy + tokie: {fast.tokenizer_info})")


def fast_weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().float().numpy() for k, v in model.state_dict().items()}


def _numpy(served: StaticNumpy, task: str, width: int):
    def run(part):
        return served.logits(task, [[e.texts[i] for e in part] for i in range(width)])

    return run


def _forgetting(served: BiLSTMNumpy, task: str, width: int):
    run = _numpy(served, task, width)

    def forget_then_run(part):
        served.encoder.chunks.clear()
        return run(part)

    return forget_then_run


def predictions_part(student, bilstm, datas) -> None:
    print("\n3. Predictions of the numpy paths against PyTorch on every dev example")
    for name, data in datas.items():
        dev = data.split("dev")
        columns = [[e.texts[i] for e in dev] for i in range(len(data.spec.text_fields))]
        served = StaticNumpy.from_model(student, texts_of(dev))
        check = check_logits(served, student, name, columns)
        print(f"  {name:12s} {check['texts']} dev examples: argmax agreement {check['argmax_agreement']:.4f}, "
              f"max |logits diff| {check['max_abs_diff']:.2e}, tokenizer {served.tokenizer_info['tokenizer']}")
        lstm = BiLSTMNumpy.from_model(bilstm, texts_of(dev))
        if lstm is not None:
            check = check_logits(lstm, bilstm, name, columns)
            print(f"  {'':12s} small BiLSTM, numpy + compiled kernel: argmax agreement "
                  f"{check['argmax_agreement']:.4f}, max |logits diff| {check['max_abs_diff']:.2e}, "
                  f"tokenizer {lstm.tokenizer_info['tokenizer']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run folder with a static student (e.g. runs/demo)")
    ap.add_argument("--student", default="student")
    ap.add_argument("--bilstm", type=Path, help="a small BiLSTM folder (default: built here, untrained)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.2, help="seconds per path, batch size and round")
    ap.add_argument("--examples", type=int, default=256, help="dev examples per task for the speed figures")
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipe = load_recipe(args.run / "recipe.yaml")
    datas = {t.name: load_task(t, recipe.seed) for t in recipe.tasks}
    student = load_model(args.run / args.student).eval()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    tokenizer_part(student, datas)
    with tempfile.TemporaryDirectory(prefix="mkd-fast-") as tmp:
        bilstm = small_bilstm(args.bilstm, datas, Path(tmp)).eval()
        serving_part(student, bilstm, args.bilstm or Path(tmp) / "bilstm", datas, args, Path(tmp))
        predictions_part(student, bilstm, datas)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
