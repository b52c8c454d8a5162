"""A destroyed runtime's memory is freed even though loading froze it (gc.freeze), and the full
collection that frees it runs when no stream is live (or after MAX_DEFER_S at the latest)."""
import gc
import weakref

from pyimpl.capi import heap


class Engine:
    """Stands in for a loaded engine: a reference cycle, frozen as serve_model freezes it."""

    def __init__(self):
        self.me = self


def test_collect_destroyed_frees_frozen_cycles():
    engine = Engine()
    gone = weakref.ref(engine)
    gc.freeze()
    del engine
    gc.collect()
    assert gone() is not None  # frozen: a plain collection never frees it (the leak)
    heap.collect_destroyed()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # what is alive stays frozen


def test_collection_waits_for_a_moment_without_streams(monkeypatch):
    runs = []
    monkeypatch.setattr(heap, "collect_destroyed", lambda: runs.append(1))
    reclaimer = heap.HeapReclaimer()
    reclaimer.runtime_destroyed(idle=True)
    assert runs == [1]
    reclaimer.runtime_destroyed(idle=False)  # another runtime streams: not now
    reclaimer.maybe_collect(idle=False)
    assert runs == [1]
    reclaimer.maybe_collect(idle=True)  # its last stream ended
    reclaimer.maybe_collect(idle=True)  # nothing left to free
    assert runs == [1, 1]
    monkeypatch.setattr(heap, "MAX_DEFER_S", 0.0)
    reclaimer.runtime_destroyed(idle=False)  # streams never stop: collected after MAX_DEFER_S anyway
    assert runs == [1, 1, 1]
