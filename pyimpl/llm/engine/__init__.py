"""Continuous-batching LLM engine: token ids in, token ids out (knows nothing of HTTP, NATS or C).

Engine (synchronous: add_request / step / abort_request / generate_batch) and AsyncEngine (a dedicated thread
steps the engine; `async for out in engine.generate(...)`). KV events reach `subscribe_kv_events(callback)`.
"""
from .async_engine import AsyncEngine
from .engine import Engine
from .kv_events import KvCacheCleared, KvCacheRemoved, KvCacheStored, KvEvent, StoredBlock
from .outputs import EngineStats, RequestOutput
from .sampling_params import SamplingParams

__all__ = ["Engine", "AsyncEngine", "SamplingParams", "RequestOutput", "EngineStats", "KvEvent",
           "KvCacheStored", "KvCacheRemoved", "KvCacheCleared", "StoredBlock"]
