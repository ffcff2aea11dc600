"""Compiled kernels for the static student's numpy path: one pass over a batch's ids makes each text's
pooled vector and its folded first-layer rows (mkd.serving.static_numpy.Folded), with no Python per text
and no intermediate arrays.

Numba (`pip install 'mkd[fast]'`) compiles them for this CPU on first use (a few seconds, then cached
next to this file or in numba's user cache). Without numba, or with MKD_NO_NUMBA=1, `KERNELS` is None and
static_numpy pools with scipy's sparse kernel instead (three passes a pair batch, each allocating). Both
sum in float32; the kernels may fuse multiply-adds and reorder (fastmath: 17% faster on snli), which moves
logits by about 1e-6, and the serving gate (numpy_server.check_logits, 1e-4 against PyTorch) still decides.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mkd.serving.compiled import NUMBA, jit

PRIME = 1_000_003  # StaticStudent's bigram hash: (a * PRIME + b) mod buckets


@jit
def pool_into(ids, a, b, weight, table, folded, vec, fold_out):  # pragma: no cover - compiled
    """Add rows a..b-1 of `table` (into vec) and of `folded` (into fold_out), weighted; returns the
    weights' sum (the count without weights)."""
    den = np.float32(0.0)
    for j in range(a, b):
        t = ids[j]
        wj = weight[t] if weight.shape[0] else np.float32(1.0)
        den += wj
        if table.shape[0]:
            row = table[t]
            for k in range(vec.shape[0]):
                vec[k] += wj * row[k]
        frow = folded[t]
        for k in range(fold_out.shape[0]):
            fold_out[k] += wj * frow[k]
    return den


@jit
def bigrams_into(ids, a, b, buckets, bigram, bfolded, vec, fold_out):  # pragma: no cover - compiled
    """Add the mean of the hashed adjacent pairs' rows (of `bigram` into vec, of `bfolded` into fold_out)."""
    count = max(b - a - 1, 1)
    tmp = np.zeros(vec.shape[0], np.float32)
    ftmp = np.zeros(fold_out.shape[0], np.float32)
    for j in range(a, b - 1):
        h = (ids[j] * PRIME + ids[j + 1]) % buckets
        if vec.shape[0]:
            row = bigram[h]
            for k in range(vec.shape[0]):
                tmp[k] += row[k]
        frow = bfolded[h]
        for k in range(fold_out.shape[0]):
            ftmp[k] += frow[k]
    for k in range(vec.shape[0]):
        vec[k] += tmp[k] / np.float32(count)
    for k in range(fold_out.shape[0]):
        fold_out[k] += ftmp[k] / np.float32(count)


@jit
def mean_of(ids, a, b, weight, table, folded, buckets, bigram, bfolded, vec, fold_out):  # pragma: no cover
    """vec, fold_out := text a..b's pooled vector (as StaticStudent.sentence) and its folded rows."""
    vec[:] = 0.0
    fold_out[:] = 0.0
    den = pool_into(ids, a, b, weight, table, folded, vec, fold_out)
    if weight.shape[0]:
        den = max(den, np.float32(1e-6))
    for k in range(vec.shape[0]):
        vec[k] /= den
    for k in range(fold_out.shape[0]):
        fold_out[k] /= den
    if buckets:
        bigrams_into(ids, a, b, buckets, bigram, bfolded, vec, fold_out)


@jit
def single(ids, starts, weight, folded, buckets, bfolded, bias, out):  # pragma: no cover - compiled
    """out[i] := text i's pooled rows of the folded table, plus the bias: a single-text head's first layer."""
    none = np.zeros((0, 0), np.float32)
    vec = np.zeros(0, np.float32)
    row = np.empty(out.shape[1], np.float32)
    for i in range(out.shape[0]):
        mean_of(ids, starts[i], starts[i + 1], weight, none, folded, buckets, none, bfolded, vec, row)
        for k in range(out.shape[1]):
            out[i, k] = row[k] + bias[k]


@jit
def pair(ids, starts, weight, table, fold_u, fold_v, buckets, bigram, bfold_u, bfold_v, bias,
         feats, first):  # pragma: no cover - compiled
    """Texts i and n + i: feats[i] := [|u - v|, u * v] and first[i] := u @ W_u + v @ W_v + bias (folded)."""
    n, dim = first.shape[0], table.shape[1]
    u = np.empty(dim, np.float32)
    v = np.empty(dim, np.float32)
    fu = np.empty(first.shape[1], np.float32)
    fv = np.empty(first.shape[1], np.float32)
    for i in range(n):
        mean_of(ids, starts[i], starts[i + 1], weight, table, fold_u, buckets, bigram, bfold_u, u, fu)
        mean_of(ids, starts[n + i], starts[n + i + 1], weight, table, fold_v, buckets, bigram, bfold_v, v, fv)
        for k in range(dim):
            feats[i, k] = abs(u[k] - v[k])
            feats[i, dim + k] = u[k] * v[k]
        for k in range(first.shape[1]):
            first[i, k] = fu[k] + fv[k] + bias[k]


def python_kernels() -> SimpleNamespace:
    """The kernels read as plain Python (slow; for tests where numba is missing)."""
    return SimpleNamespace(single=getattr(single, "py_func", single), pair=getattr(pair, "py_func", pair))


KERNELS = None if NUMBA is None else SimpleNamespace(single=single, pair=pair)
"""The compiled kernels, or None (no numba, or MKD_NO_NUMBA set)."""
