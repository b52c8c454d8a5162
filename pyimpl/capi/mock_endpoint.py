"""A built-in generator served on a config's "mock_endpoint", for C tests and the capi benchmark.

Request {"n": N, "interval_us": U, "busy_ms": B}: yields N chunks {"index", "token_ids", "t_ns"}
(t_ns = CLOCK_MONOTONIC at production), U microseconds apart; B > 0 instead keeps a Python
thread CPU-busy for B ms (the GIL-contention load of the benchmark) and yields one chunk.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator


def _spin(busy_ms: float) -> int:
    """Pure-Python work that holds the GIL as a busy request would."""
    end = time.monotonic() + busy_ms / 1000.0
    count = 0
    while time.monotonic() < end:
        count += sum(i * i for i in range(200))
    return count


async def mock_stream(request: Any, context: Any = None) -> AsyncIterator[dict]:
    """The mock endpoint's handler."""
    if not isinstance(request, dict):
        raise ValueError("mock request must be a JSON object")
    busy_ms = float(request.get("busy_ms", 0))
    if busy_ms > 0:
        work = await asyncio.to_thread(_spin, busy_ms)
        yield {"index": 0, "token_ids": [0], "t_ns": time.monotonic_ns(), "work": work}
        return
    n, interval = int(request.get("n", 10)), float(request.get("interval_us", 0)) / 1e6
    for i in range(n):
        if interval:
            await asyncio.sleep(interval)
        elif i % 64 == 63:
            await asyncio.sleep(0)  # let other streams run
        yield {"index": i, "token_ids": [i], "t_ns": time.monotonic_ns()}
