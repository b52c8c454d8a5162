"""Schemathesis hooks for `python -m pyimpl.bench api-contract`: most generated `model` names are swapped
for the model actually served on that route, so requests reach the worker instead of stopping at 404.

Which bodies are swapped depends only on the body (length of the generated name), so a seed reproduces
a run; non-string models, empty names and every fourth name stay as generated (the 400 and 404 paths).
"""
from __future__ import annotations

import json
import os

import schemathesis

SERVED = json.loads(os.environ.get("API_CONTRACT_MODELS", "{}"))  # route path -> served model name


@schemathesis.hook
def map_body(context, body):
    """Point a generated body at the model served for its route."""
    served = SERVED.get(context.operation.path) if context.operation is not None else None
    if served and isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str) and model and len(model) % 4:
            body = {**body, "model": served}
    return body
