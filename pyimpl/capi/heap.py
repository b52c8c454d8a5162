"""The Python heap across runtime lifetimes: what a destroyed runtime held is collected, while the
long-lived objects of the interpreter and of the runtimes still alive stay out of full collections."""
from __future__ import annotations

import gc
import time


def collect_destroyed() -> float:
    """Run after a runtime was closed; returns the seconds it took.

    serve_model and the model manager gc.freeze() a loaded model so that full collections never walk
    it (they would stall every stream for hundreds of milliseconds), but frozen objects are never
    collected: a destroyed runtime's engine would stay in memory for good. So: unfreeze, collect
    the destroyed runtime's cycles, and freeze again whatever is still alive (the other runtimes'
    models keep the benefit; one full collection per destroy is its price)."""
    start = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - start
