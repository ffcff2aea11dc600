"""Interleaved, time-boxed speed rounds, with request latency (the bench's clock).

Every runner and batch size gets one turn per round, in turn with the others (so a busy moment hits
them alike). A turn scores batches of the examples in order, from where its previous turn stopped
(wrapping), for `budget_s` (at least one batch) or PASSES times over the examples, whichever comes
first: a fast student goes over the examples a few times in a turn, a teacher scores a few batches,
so a bench costs seconds, not minutes, and the spread over rounds stays. Each call is timed
alone: batch-1 calls are request latencies, reported as p50 and p99 beside the examples/s. The
process's CPU time per turn gives `cpu_examples_per_s`, which a busy machine disturbs less than the
wall clock (threads are pinned to one, so it is the time the model needed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Runner = Callable[[Sequence[Any]], object]
BUDGET_S = 0.1
"""Seconds one runner gets per round and batch size (bench.budget_s)."""
PASSES = 3
"""At most this many passes over the examples in one turn: more add time, not information."""


def turn(run: Runner, examples: Sequence[Any], batch_size: int, start: int,
         budget_s: float) -> tuple[int, int, list[float], float]:
    """Score batches from `start` (wrapping) for `budget_s` (at least one batch) or PASSES passes;
    (next start, examples scored, seconds of each call, CPU seconds)."""
    n, i, done = len(examples), start, 0
    calls: list[float] = []
    cpu = time.process_time()
    begin = end = time.perf_counter()
    while (end - begin < budget_s and done < PASSES * n) or not calls:
        part = examples[i: min(i + batch_size, n)]
        t = time.perf_counter()
        run(part)
        end = time.perf_counter()
        calls.append(end - t)
        done += len(part)
        i = (i + len(part)) % n
    return i, done, calls, time.process_time() - cpu


def _percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the nearest ranks."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def figure(speeds: list[float], calls: list[float], batch_size: int, cpu_speeds: list[float]) -> dict[str, Any]:
    """Median examples/s over rounds, its spread, and the per-call latency (median batch latency, p50, p99)."""
    speeds = sorted(speeds)
    q = statistics.quantiles(speeds, n=4, method="inclusive") if len(speeds) > 1 else [speeds[0]] * 3
    med = statistics.median(speeds)
    return {"examples_per_s": round(med, 1), "latency_ms": round(1000.0 * batch_size / med, 3),
            "p50_ms": round(1000.0 * _percentile(calls, 50), 3), "p99_ms": round(1000.0 * _percentile(calls, 99), 3),
            "calls": len(calls), "cpu_examples_per_s": round(statistics.median(cpu_speeds), 1),
            "spread": {"min": round(speeds[0], 1), "p25": round(q[0], 1), "p75": round(q[2], 1),
                       "max": round(speeds[-1], 1), "rounds": len(speeds)}}


def measure(runners: dict[str, Runner], examples: Sequence[Any], batch_sizes: Sequence[int] = (1, 32),
            rounds: int = 5, budget_s: float = BUDGET_S) -> dict[str, dict]:
    """{runner: {"batch_<b>": figure}}: interleaved rounds (every runner one turn per round and batch size)."""
    for run in runners.values():  # warm-up: first calls allocate, load kernels, fill caches
        run(examples[: max(batch_sizes)])
        run(examples[:1])
    cursor: dict[tuple[str, int], int] = {}
    speeds: dict[tuple[str, int], list[float]] = {}
    calls: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for b in batch_sizes:
            for name, run in runners.items():
                key = (name, b)
                cursor[key], scored, took, cpu_s = turn(run, examples, b, cursor.get(key, 0), budget_s)
                speeds.setdefault(key, []).append(scored / sum(took))
                cpu.setdefault(key, []).append(scored / max(cpu_s, 1e-9))
                calls.setdefault(key, []).extend(took)
    out: dict[str, dict] = {}
    for (name, b), s in speeds.items():
        out.setdefault(name, {})[f"batch_{b}"] = figure(s, calls[(name, b)], b, cpu[(name, b)])
    return out
