"""The Python heap across runtime lifetimes: what a destroyed runtime held is collected, while the
long-lived objects of the interpreter and of the runtimes still alive stay out of full collections."""
from __future__ import annotations

import ctypes
import gc
import threading
import time

MAX_DEFER_S = 30.0  # a destroyed runtime's memory waits at most this long for a moment without streams


def collect_destroyed() -> float:
    """Free what closed runtimes held; returns the seconds it took (a full collection: ~0.2-0.5 s
    with a loaded model, during which no other Python code runs).

    serve_model and the model manager gc.freeze() a loaded model so that full collections never walk
    it (they would stall every stream for hundreds of milliseconds), but frozen objects are never
    collected: a destroyed runtime's engine would stay in memory for good. So: unfreeze, collect
    the destroyed runtime's cycles, freeze again whatever is still alive (the other runtimes'
    models keep the benefit) and hand the freed heap back to the system."""
    start = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc keeps freed memory in its arenas otherwise
    except (OSError, AttributeError):  # not glibc
        pass
    return time.perf_counter() - start


class HeapReclaimer:
    """Runs collect_destroyed at a moment when no stream of any runtime is live (its stall then hits
    nobody): at once if the process is idle when a runtime is destroyed, else when the last live
    stream ends, or anyway once destroyed runtimes have waited MAX_DEFER_S."""

    def __init__(self) -> None:
        self._pending_since: float | None = None
        self._lock = threading.Lock()

    def runtime_destroyed(self, idle: bool) -> None:
        """A runtime was closed; `idle`: no stream is live now."""
        with self._lock:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
        self.maybe_collect(idle)

    def maybe_collect(self, idle: bool) -> None:
        """Collect now if a destroyed runtime waits and the moment is right (a stream just ended, say)."""
        with self._lock:
            since = self._pending_since
            if since is None or not (idle or time.monotonic() - since > MAX_DEFER_S):
                return
            self._pending_since = None
        collect_destroyed()
