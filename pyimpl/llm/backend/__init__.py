"""The backend half of serving: what a worker process runs behind its runtime endpoint.

model_server (the endpoint handlers and model card registration) drives an engine: the torch engine in
`pyimpl.llm.engine`, the mock engine (mock_engine, implemented in mocker/) or the embedding engine, all behind
engine_api's Protocols (GenerateEngine, EmbedEngine); guided (llguidance grammars) constrains decoding through the
engine's logits-processor hook; kv_publisher puts the engine's KV events and load on the runtime's event plane.
"""
