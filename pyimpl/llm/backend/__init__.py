"""The backend half of serving: what a worker process runs behind its runtime endpoint.

model_server (the endpoint handler and model card registration) drives an engine: the torch engine in
`pyimpl.llm.engine`, the mock engine or the embedding engine, all behind `engine_api.ServingEngine`;
guided_json constrains decoding through the engine's logits-processor hook.
"""
