"""Numeric precision of every stage: one setting, resolved once per stage to what actually runs.

Settings (recipe values): `auto` (bf16 autocast where the hardware is fast at it, else fp32),
`no` (always fp32), `bf16`, `fp16` (CUDA only). Resolved precisions: `fp32`, `bf16`, `fp16`.
Autocast only changes the arithmetic of the forward pass: master weights, optimizer state, saved
weights and returned logits stay fp32. bf16 needs no loss scaling; fp16 gets Accelerate's scaler.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from mkd.errors import MkdError

Setting = Literal["auto", "no", "bf16", "fp16"]
SETTINGS = ("auto", "no", "bf16", "fp16")
PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 dot products: autocast pays off


@lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is absent: macOS, Windows)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def fast_bf16(device: str | torch.device) -> bool:
    """True where bf16 autocast is faster than fp32 on `device` (a CPU with AVX512-BF16 or AMX; a
    CUDA GPU that supports bf16, i.e. Ampere or newer)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)
    return False


def resolve(setting: str, device: str | torch.device) -> str:
    """The precision a stage runs at on `device`: fp32, bf16 or fp16."""
    kind = torch.device(device).type
    if setting == "no":
        return "fp32"
    if setting == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    if setting == "bf16":
        return "bf16"
    if setting == "fp16":
        if kind != "cuda":
            raise MkdError(f"precision fp16 needs a CUDA GPU, this stage runs on {kind}",
                           "set mixed_precision (or precision) to auto, bf16 or no")
        return "fp16"
    raise MkdError(f"unknown precision setting '{setting}'", f"use one of: {', '.join(SETTINGS)}")


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """The forward pass's context: torch.autocast at bf16/fp16, nothing at fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def set_threads(threads: int | None = None) -> int:
    """Torch's intra-op threads: `threads` when given, else OMP_NUM_THREADS, else every core this
    process may use. Returns the number set."""
    if threads is None:
        raw = os.environ.get("OMP_NUM_THREADS", "").strip()
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise MkdError(f"OMP_NUM_THREADS={raw!r} is not a positive whole number",
                               "unset it or give a thread count such as 2")
            threads = int(raw)
        else:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads < 1:
        raise MkdError(f"--threads {threads} is not a positive whole number", "give a thread count such as 2")
    torch.set_num_threads(threads)
    return threads

