"""Numba, where installed (`pip install 'mkd[fast]'`), for the serving kernels (static_kernels,
lstm_kernels): compiled for this CPU on first use and cached on disk (next to the module, else numba's
user cache). MKD_NO_NUMBA=1 turns it off; without it the kernels stay plain Python and the serving paths
that need them are not offered (the static student falls back to scipy's kernel)."""

from __future__ import annotations

import os
from typing import Any


def _numba() -> Any:
    if os.environ.get("MKD_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


NUMBA = _numba()
"""The numba module, or None (not installed, or MKD_NO_NUMBA set)."""


OPTIONS = {"cache": True, "fastmath": True, "error_model": "numpy"}
"""fastmath: sums may be reordered and fused (within the serving gates); numpy's error model: a division
has no zero check, whose branch kept the gates' loop from vectorizing (tanh 4.7 -> 0.8 ns an element)."""


def jit(f: Any) -> Any:
    """f compiled (OPTIONS, no GIL), or f."""
    return f if NUMBA is None else NUMBA.njit(nogil=True, **OPTIONS)(f)


def inline(f: Any) -> Any:
    """Like `jit`, and compiled into its callers (numba's IR inlining: their loops vectorize)."""
    return f if NUMBA is None else NUMBA.njit(inline="always", **OPTIONS)(f)
