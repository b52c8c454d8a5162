"""The mock engine (as Dynamo's mocker): paged KV with prefix caching and real KV events, a batching
scheduler and an optional timing model, computing nothing; for tests and benchmarks above the engine."""
from .engine import MockEngine
from .params import MockSamplingParams, make_params
from .timing import PerfModel

__all__ = ["MockEngine", "MockSamplingParams", "PerfModel", "make_params"]
