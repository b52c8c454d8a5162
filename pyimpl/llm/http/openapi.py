"""The frontend's OpenAPI description, served at /openapi.json."""
from __future__ import annotations


def _post(summary: str, schema: str) -> dict:
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
        "responses": {"200": {"description": "OK (JSON, or text/event-stream when stream is true)"},
                      "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                      "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
                      "503": {"$ref": "#/components/responses/Error"}}}}


def _get(summary: str) -> dict:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}


_SAMPLING = {name: {"type": kind} for name, kind in (
    ("temperature", "number"), ("top_p", "number"), ("top_k", "integer"), ("min_p", "number"),
    ("repetition_penalty", "number"), ("presence_penalty", "number"), ("frequency_penalty", "number"),
    ("seed", "integer"), ("max_tokens", "integer"), ("max_completion_tokens", "integer"), ("n", "integer"),
    ("ignore_eos", "boolean"), ("stream", "boolean"), ("min_tokens", "integer"))}
_SAMPLING.update({"stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                  "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}}})

OPENAPI_SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "pyimpl OpenAI-compatible frontend", "version": "0.1.0"},
    "paths": {
        "/v1/chat/completions": _post("Chat completion (streaming with stream=true)", "ChatCompletionRequest"),
        "/v1/completions": _post("Text completion", "CompletionRequest"),
        "/v1/embeddings": _post("Embeddings", "EmbeddingRequest"),
        "/v1/models": _get("Models served by live workers, and their aliases"),
        "/health": _get("Health and served models"),
        "/live": _get("Liveness"),
        "/metrics": _get("Prometheus metrics"),
        "/openapi.json": _get("This document"),
    },
    "components": {
        "schemas": {
            "ChatCompletionRequest": {"type": "object", "required": ["model", "messages"], "properties": {
                "model": {"type": "string"}, "messages": {"type": "array", "items": {"type": "object"}},
                "tools": {"type": "array"}, "tool_choice": {}, "response_format": {"type": "object"},
                "logprobs": {"type": "boolean"}, "top_logprobs": {"type": "integer"}, **_SAMPLING}},
            "CompletionRequest": {"type": "object", "required": ["model", "prompt"], "properties": {
                "model": {"type": "string"}, "prompt": {}, "logprobs": {"type": "integer"},
                "echo": {"type": "boolean"}, **_SAMPLING}},
            "EmbeddingRequest": {"type": "object", "required": ["model", "input"], "properties": {
                "model": {"type": "string"}, "input": {}, "encoding_format": {"enum": ["float", "base64"]}}},
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"}, "type": {"type": "string"}, "param": {}, "code": {}}}}},
        },
        "responses": {"Error": {"description": "OpenAI error envelope", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}},
    },
}
