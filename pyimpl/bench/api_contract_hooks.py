"""Schemathesis hooks for `python -m pyimpl.bench api-contract`: steer most generated bodies past the limits
that depend on the served model, so they reach the worker and their answers (streams included) get checked.

- most `model` names become the model served on that route (else nearly every request stops at 404);
- most `max_tokens` / `max_completion_tokens` / `max_output_tokens` over 256, `min_tokens` over 8 and prompt
  token ids over 255 are folded below (else nearly every request is a 400 for the tiny model's context,
  max_tokens or vocabulary).
Which values are changed depends only on the values themselves, so a seed reproduces a run; non-string
models, empty names and every fourth value stay as generated (the 400 and 404 paths).
"""
from __future__ import annotations

import json
import os

import schemathesis

SERVED = json.loads(os.environ.get("API_CONTRACT_MODELS", "{}"))  # route path -> served model name


def _fold(value, limit: int, low: int = 0):
    """`value` brought into [low, limit) for three values in four (an int only; anything else as generated)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= limit and value % 4:
        return low + value % (limit - low)
    return value


@schemathesis.hook
def map_body(context, body):
    """Point a generated body at the model served for its route, within its limits."""
    served = SERVED.get(context.operation.path) if context.operation is not None else None
    if not served or not isinstance(body, dict):
        return body
    body = dict(body)
    model = body.get("model")
    if isinstance(model, str) and model and len(model) % 4:
        body["model"] = served
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if name in body:
            body[name] = _fold(body[name], 256, low=1)
    if "min_tokens" in body:  # over max_tokens is a 400
        body["min_tokens"] = _fold(body["min_tokens"], 8)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        body["prompt"] = [_fold(t, 256) for t in prompt]
    return body
