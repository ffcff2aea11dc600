"""Training-step speed of the LSTM students: packed sequences vs the exact padded path (issue 12.3).

    OMP_NUM_THREADS=1 python benchmarks/lstm_path.py [--arch bilstm_attn] [--rounds 7]

One process, one thread, interleaved rounds, median examples/s of a full training step (forward,
backward, Adam) at batch 50, hidden 300, 300-d embeddings, lengths drawn like short reviews (5-40
words), fp32 and bf16 autocast. Both paths compute the same function (tests/test_students.py).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

import mkd.models.students.bilstm as bilstm_mod
import mkd.models.students.bilstm_attn as attn_mod
from mkd.models.students.vocab import WordVocab
from mkd.models.students.wordlevel import packed_lstm, padded_lstm
from mkd.tasks.task import TaskSpec

PATHS = {"packed": packed_lstm, "padded": padded_lstm}
SPEC = TaskSpec("sent", ("text",), "classification", ("neg", "pos"), ("accuracy",), "accuracy")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="bilstm_attn", choices=["bilstm", "bilstm_attn"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=4, help="training steps per timing")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab = WordVocab(["<pad>", "<unk>", *[f"w{i}" for i in range(5000)]])
    cls = attn_mod.BiAttentiveStudent if args.arch == "bilstm_attn" else bilstm_mod.BiLSTMStudent
    model = cls({"sent": SPEC}, vocab, len(vocab), 300, hidden_size=args.hidden, dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lengths = torch.randint(5, 41, (args.batch,))
    ids = torch.randint(2, len(vocab), (args.batch, int(lengths.max())))
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    batch = {"input_ids": ids * mask, "attention_mask": mask.long()}
    labels = torch.randint(0, 2, (args.batch,))

    def step(path: str, precision: str) -> float:
        bilstm_mod.run_lstm = attn_mod.run_lstm = PATHS[path]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        start = time.perf_counter()
        for _ in range(args.steps):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = torch.nn.functional.cross_entropy(model("sent", batch).float(), labels)
            loss.backward()
            opt.step()
        return args.batch * args.steps / (time.perf_counter() - start)

    combos = [(p, q) for q in ("fp32", "bf16") for p in PATHS]
    for c in combos:
        step(*c)  # warm-up
    figures: dict[tuple[str, str], list[float]] = {c: [] for c in combos}
    for _ in range(args.rounds):
        for c in combos:
            figures[c].append(step(*c))
    base = statistics.median(figures[("packed", "fp32")])
    print(f"{args.arch}, batch {args.batch}, hidden {args.hidden}, 1 thread, torch {torch.__version__}, "
          f"{args.rounds} interleaved rounds of {args.steps} steps")
    for (path, precision), vals in figures.items():
        med = statistics.median(vals)
        print(f"{path:7s} {precision:5s} {med:7.1f} ex/s  (min {min(vals):.1f}, max {max(vals):.1f})  "
              f"{med / base:.2f}x packed fp32")


if __name__ == "__main__":
    main()
