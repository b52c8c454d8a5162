"""The frontend's OpenAPI document (served at /openapi.json), generated from the msgspec wire types."""
from __future__ import annotations

import msgspec

from pyimpl.llm.http.schemas import SCHEMA_TYPES

_REF = "#/components/schemas/{name}"
_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/ErrorResponse"}}}}
    for code, text in ((400, "Invalid request (param names the field)"), (401, "Missing or wrong API key"),
                       (404, "Unknown model"), (413, "Body too large"), (503, "No worker for the model"))}


def _json(name: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _post(summary: str, request: str, response: str, stream: str | None = None) -> dict:
    content = _json(response)
    if stream:
        content["text/event-stream"] = {"schema": {"$ref": f"#/components/schemas/{stream}"},
                                        "description": "data: {chunk} events, then data: [DONE]"}
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": _json(request)},
                     "responses": {"200": {"description": "OK", "content": content}, **_ERRORS}}}


def _get(summary: str, response: str | None = None) -> dict:
    ok: dict = {"description": "OK"}
    if response:
        ok["content"] = _json(response)
    return {"get": {"summary": summary, "responses": {"200": ok}}}


def build_openapi_spec() -> dict:
    """OpenAPI 3.1 for every route of the frontend."""
    _, components = msgspec.json.schema_components(SCHEMA_TYPES, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "pyimpl OpenAI-compatible frontend", "version": "0.1.0"},
        "paths": {
            "/v1/chat/completions": _post("Chat completion (SSE when stream is true)", "ChatCompletionRequest",
                                          "ChatCompletion", "ChatCompletionChunk"),
            "/v1/completions": _post("Text completion (SSE when stream is true)", "CompletionRequest",
                                     "Completion", "Completion"),
            "/v1/embeddings": _post("Embeddings", "EmbeddingRequest", "EmbeddingList"),
            "/v1/models": _get("Models served by live workers, and their aliases", "ModelList"),
            "/health": _get("Health, served models and worker instances per model"),
            "/live": _get("Liveness"),
            "/metrics": _get("Prometheus metrics (dynamo_frontend_*)"),
            "/openapi.json": _get("This document"),
        },
        "components": {"schemas": components},
    }


OPENAPI_SPEC = build_openapi_spec()
