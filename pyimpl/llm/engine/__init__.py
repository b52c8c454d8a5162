"""Continuous-batching LLM engine: token ids in, token ids out (knows nothing of HTTP, NATS or C).

Engine (synchronous: add_request / step / abort_request / generate_batch) and AsyncEngine (a dedicated thread
steps the engine; `async for out in engine.generate(...)`). KV events reach `subscribe_kv_events(callback)`.
The torch-backed names load on first use, so torch-free modules of this package (kv_events, outputs,
block_hash) serve the mock engine without importing torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .kv_events import KvCacheCleared, KvCacheRemoved, KvCacheStored, KvEvent, StoredBlock
from .outputs import EngineStats, RequestOutput

if TYPE_CHECKING:
    from .async_engine import AsyncEngine
    from .engine import Engine
    from .sampling_params import SamplingParams

_LAZY = {"AsyncEngine": ".async_engine", "Engine": ".engine", "SamplingParams": ".sampling_params"}

__all__ = ["Engine", "AsyncEngine", "SamplingParams", "RequestOutput", "EngineStats", "KvEvent",
           "KvCacheStored", "KvCacheRemoved", "KvCacheCleared", "StoredBlock"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
