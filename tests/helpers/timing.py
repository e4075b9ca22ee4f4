"""Timing for the benchmarks (never for the tests: machines here are noisy, and a test asserts behaviour)."""

from __future__ import annotations

import time


def best_of(action, repeats: int = 5) -> float:
    "The fastest of `repeats` timed calls of `action()`, in seconds."
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)
