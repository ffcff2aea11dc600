"""A compiled BiLSTM for serving one text at a time, with no padding: the small BiLSTM student's recurrence
as numba runs it (mkd.serving.lstm_numpy).

ONNX Runtime runs the student's LSTM over padded batches, step by step, at about 11,500 examples/s
on one core (benchmarks/RESULTS.md); here each text steps only over its own words (a batch's texts
step together, longest first, and a text that has ended leaves the recurrent product), the input
projection of every word is read from a table made at load (the embedding times W_ih, plus both
biases), and the gates' sigmoids and tanhs are a rational function the compiler vectorizes (Eigen's
float tanh: within 3.5e-7 of tanh, sigmoid(x) = (1 + tanh(x / 2)) / 2). The logits stay within the
1e-4 gate of PyTorch (numpy_server.check_logits decides, as for the static student).

Gates in PyTorch's order (input, forget, cell, output). Without numba, `KERNEL` is None and this path is
not offered; `python_kernel()` reads the same code as Python (for tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mkd.serving.compiled import NUMBA, inline, jit

CLAMP = np.float32(7.90531110763549805)  # beyond it the rational function's tanh is 1 within float32's step
P = tuple(np.float32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                  5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                  4.89352455891786e-03))
Q = tuple(np.float32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                  4.89352518554385e-03))
P0, P1, P2, P3, P4, P5, P6 = P
Q0, Q1, Q2, Q3 = Q
HALF = np.float32(0.5)


@inline
def tanh(x):  # pragma: no cover - compiled
    x = min(max(x, -CLAMP), CLAMP)
    x2 = x * x
    p = ((((((P0 * x2 + P1) * x2 + P2) * x2 + P3) * x2 + P4) * x2 + P5) * x2 + P6) * x
    q = ((Q0 * x2 + Q1) * x2 + Q2) * x2 + Q3
    return p / q


@inline
def sigmoid(x):  # pragma: no cover - compiled
    return HALF + HALF * tanh(HALF * x)


@inline
def step(gates, table_row, h, c):  # pragma: no cover - compiled
    """One text's state update from its gates (recurrent product in `gates`, the word's input projection in
    table_row): c := f * c + i * g, h := o * tanh(c)."""
    width = h.shape[0]
    for k in range(width):
        i = sigmoid(gates[k] + table_row[k])
        f = sigmoid(gates[width + k] + table_row[width + k])
        g = tanh(gates[2 * width + k] + table_row[2 * width + k])
        o = sigmoid(gates[3 * width + k] + table_row[3 * width + k])
        cell = f * c[k] + i * g
        c[k] = cell
        h[k] = o * tanh(cell)


@jit
def last_states(ids, starts, forward, recurrent_f, backward, recurrent_b, out):  # pragma: no cover - compiled
    """out[r] := [forward h after text r's last word, backward h after its first]: the student's sentence
    vector (wordlevel._last_states). `forward`/`backward`: (vocab, 4 * width) input projections with both
    biases; `recurrent_*`: (width, 4 * width), W_hh transposed.

    The texts step together, longest first: at step t the texts still running are a prefix of that order,
    so their recurrent products are one matrix product (BLAS) over that prefix and nothing runs on
    padding; each text's gates are then updated in one vectorized pass."""
    n, width = out.shape[0], recurrent_f.shape[0]
    lengths = starts[1:] - starts[:-1]
    order = np.argsort(-lengths, kind="mergesort")
    longest = lengths[order[0]] if n else 0
    for side in range(2):
        table, recurrent = (forward, recurrent_f) if side == 0 else (backward, recurrent_b)
        h = np.zeros((n, width), np.float32)
        c = np.zeros((n, width), np.float32)
        running = n
        for t in range(longest):
            while running and lengths[order[running - 1]] <= t:
                running -= 1
            gates = np.dot(h[:running], recurrent)
            for a in range(running):
                r = order[a]
                word = ids[starts[r] + t] if side == 0 else ids[starts[r + 1] - 1 - t]
                step(gates[a], table[word], h[a], c[a])
        for a in range(n):
            for k in range(width):
                out[order[a], side * width + k] = h[a, k]


def python_kernel() -> Any:
    """last_states read as plain Python (slow; for tests where numba is missing)."""
    return getattr(last_states, "py_func", last_states)


KERNEL = None if NUMBA is None else last_states
"""The compiled kernel, or None (no numba, or MKD_NO_NUMBA set)."""
