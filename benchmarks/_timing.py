"""The timing loop the benchmark scripts share."""

from __future__ import annotations

import time
from typing import Callable


def rate(fn: Callable[[], object], items_per_call: int, seconds: float, sync: Callable[[], None] = lambda: None) -> float:
    """Items per second of calling ``fn`` repeatedly for ``seconds`` after one warm-up call.

    ``sync`` waits for queued device work (``torch.cuda.synchronize`` on a GPU) before each clock read.
    """
    fn()
    sync()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        fn()
        n += items_per_call
    sync()
    return n / (time.perf_counter() - t0)


def time_calls(obj: object, name: str) -> dict[str, float]:
    """Wrap ``obj.<name>`` so the seconds spent in it and the number of calls accumulate in the returned dict
    (e.g. an SB3 model's ``train``: the time in updates, apart from acting)."""
    acc = {"s": 0.0, "calls": 0}
    inner = getattr(obj, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            acc["s"] += time.perf_counter() - t0
            acc["calls"] += 1

    setattr(obj, name, timed)
    return acc
