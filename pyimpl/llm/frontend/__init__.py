"""The frontend half of serving: typed requests, the model registry, streams from workers, OpenAI chunks, HTTP.

Data path: edge (http/ or the C ABI) -> protocols (validate once) -> model_manager (pick a model, preprocess)
-> worker_streams (runtime streams, errors mapped once) -> openai_chunks / openai_stream (what the client sees).
"""
