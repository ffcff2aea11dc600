"""How fast a BiLSTM student could serve on one core if only its matrix products ran (prints figures).

The small BiLSTM (`small-bilstm` preset: GloVe 50d in, hidden_size 96 = 48 units a direction, as
mkd.models.students.wordlevel.lstm builds it) spends its time in the recurrence: every word of every
text, in each direction, multiplies a (batch, 48) state by a (48, 4 * 48) matrix, one word after the
other. (Before 2026-12-06 this script took --hidden as the units of ONE direction and so timed a BiLSTM
twice as wide, about 3x the products.) This measures, on one thread, batches of 32 of a run's dev texts:
- words per text (the student's own word split), and per batch the padded width (the longest text:
  a batch steps that many times unless it shrinks as texts end);
- the step's matrix products alone (input and recurrent, both directions) in numpy fp32, torch fp32
  and torch bf16, timed on random matrices of the student's shapes;
- the ceiling in examples/s those products allow: products only, no gates, no tokenization, no
  pooling or head, either over the padded width or over each text's own length (a perfectly shrinking
  batch). A serving path cannot beat it; the issue's 30,000 ex/s is compared with it.

    OMP_NUM_THREADS=1 python benchmarks/lstm_floor.py runs/demo [--hidden 96 --input 50]
--hidden is the student's hidden_size (both directions together), as in a recipe.
Run from the folder that holds runs/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mkd.config import load_recipe
from mkd.models.students.vocab import word_tokenizer
from mkd.tasks import load_recipe_tasks

BATCH = 32


def step_us(hidden: int, inputs: int, reps: int = 3000) -> dict[str, float]:
    """Microseconds of one step's products (x @ W_ih and h @ W_hh, one direction) at batch 32."""
    rng = np.random.default_rng(0)
    x, h = (rng.standard_normal((BATCH, d)).astype(np.float32) for d in (inputs, hidden))
    w_ih, w_hh = (rng.standard_normal((d, 4 * hidden)).astype(np.float32) for d in (inputs, hidden))
    tx, th, tih, thh = (torch.from_numpy(a) for a in (x, h, w_ih, w_hh))
    bx, bh, bih, bhh = (t.bfloat16() for t in (tx, th, tih, thh))
    runs = {"numpy fp32": lambda: (x @ w_ih, h @ w_hh), "torch fp32": lambda: (tx @ tih, th @ thh),
            "torch bf16": lambda: (bx @ bih, bh @ bhh)}
    out = {}
    for name, fn in runs.items():
        fn()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - start) / reps * 1e6)
        out[name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--input", type=int, default=50)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    recipe = load_recipe(args.run / "recipe.yaml")
    split = word_tokenizer(["<pad>", "<unk>"], args.max_length)
    split.no_padding()
    units = max(1, args.hidden // 2)  # a direction's units (wordlevel.lstm)
    steps = step_us(units, args.input)
    macs = 2 * 4 * units * (args.input + units)  # per word, both directions
    print(f"BiLSTM hidden_size {args.hidden} ({units} units a direction), input {args.input}: {macs:,} "
          f"multiply-adds a word (both directions); "
          f"one step's products at batch {BATCH}, one direction: "
          + ", ".join(f"{k} {v:.1f} us" for k, v in steps.items()))
    for name, data in load_recipe_tasks(recipe).items():
        dev = data.split("dev")
        width = len(dev[0].texts)
        words = [[len(e.ids) or 1 for e in split.encode_batch([x.texts[i] for x in dev])] for i in range(width)]
        per_text = np.sum(words, axis=0)  # a pair's two texts both run
        n = len(dev) - len(dev) % BATCH
        padded = sum(max(words[i][s: s + BATCH]) * BATCH for i in range(width) for s in range(0, n, BATCH)) / n
        print(f"  {name}: {per_text.mean():.1f} words an example, {padded:.1f} padded "
              f"(the longest of each batch of {BATCH}, dev order)")
        for kind, us in steps.items():
            per_word = 2 * us / BATCH  # both directions, per example
            print(f"    {kind:10s} ceiling {1e6 / (per_word * padded):9,.0f} ex/s padded, "
                  f"{1e6 / (per_word * per_text.mean()):9,.0f} ex/s if batches shrank as texts end")


if __name__ == "__main__":
    main()
