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
