"""The serving layer, in the order a request crosses it (docs/INTERFACES.md has the map):

frontend/  the frontend half: the typed request validated once, the model registry, routing, migration,
           streams from workers and post-processing into OpenAI chunks; http/ is the OpenAI app
text/      text around the engine: chat templates and tokenization, detokenization, stop strings, parsers
backend/   the backend half, what a worker serves: model_server in front of an engine (engine_api's Protocols)
engine/    the continuous-batching torch engine: token ids in, token ids out
kv_router/ KV-aware routing and the KV-event wire protocol between workers and routers
model_card.py, model_facts.py, errors.py   shared: the card workers publish, the one reader of a model folder,
           typed errors that carry their HTTP status
"""
