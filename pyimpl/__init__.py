"""dynamo-llm-capi: a distributed LLM serving runtime, reachable from C through a stable C ABI."""

__version__ = "0.1.0"
