"""Continuous-batching LLM engine: token ids in, token ids out (knows nothing of HTTP, NATS or C)."""
from .async_engine import AsyncEngine
from .engine import Engine
from .kv_events import KvCacheCleared, KvCacheRemoved, KvCacheStored, KvEvent, StoredBlock
from .outputs import EngineStats, RequestOutput
from .sampling_params import SamplingParams

__all__ = ["Engine", "AsyncEngine", "SamplingParams", "RequestOutput", "EngineStats", "KvEvent",
           "KvCacheStored", "KvCacheRemoved", "KvCacheCleared", "StoredBlock"]
