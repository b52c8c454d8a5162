"""The frontend's OpenAPI 3.2 document (served at /openapi.json), generated from the msgspec types the
server validates requests with (pyimpl.llm.frontend.protocol_types) and answers in (pyimpl.llm.frontend.response_types).

Every route is one `Operation` in `OPERATIONS`: adding a route to the document is adding a line there.
Streamed answers are `text/event-stream` with an `itemSchema` per event: `data` is the chunk as JSON
(`contentSchema`), then `data: [DONE]`; a failure after the stream began is an `event: error` event.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union, get_args, get_origin

import msgspec

from pyimpl.llm.frontend import protocol_types as req
from pyimpl.llm.frontend import anthropic_types as anthropic
from pyimpl.llm.frontend import response_types as resp
from pyimpl.llm.responses import types as responses

_REF = "#/components/schemas/{name}"
ERROR_STATUSES = {
    400: "Invalid request: wrong JSON, a wrong type or value anywhere (`param` names the field), or what "
         "depends on the model: a prompt plus max_tokens over its context, token ids outside its vocabulary, "
         "a model that does not serve this kind of request, a sampling parameter no engine here implements "
         "(e.g. `best_of`, `suffix`), `stream_options` without `stream`",
    401: "Missing or wrong API key (only when the frontend runs with an API key)",
    404: "No served model or alias has this name (/v1/responses: or no stored response has this id)",
    413: "The body exceeds the frontend's limit",
    500: "The worker or engine failed while generating",
    503: "The model is known but no live worker serves it right now (`Retry-After` says when to try again)",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                               "schema": {"type": "integer", "minimum": 0}}}
GENERATION_ERRORS = (400, 401, 404, 413, 500, 503)


@dataclass(frozen=True)
class Operation:
    """One route of the document: its request type, answer type, streamed chunk type and error statuses."""

    path: str
    method: str
    summary: str
    request: type | None = None
    response: type | None = None
    stream_chunk: type | None = None
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"
    path_params: tuple[str, ...] = ()  # names of `{name}` segments of `path`, each a required string
    unavailable: type | None = None    # the 503 answer's body type when it is not the error envelope
    error_body: type | None = None     # the errors' body type when it is not OpenAI's envelope (/v1/messages)
    named_events: bool = False         # stream events carry `event: <type>` (the Responses API), no [DONE]


OPERATIONS = (
    Operation("/v1/chat/completions", "post", "Chat completion (server-sent events when `stream` is true)",
              req.ChatCompletionRequest, resp.ChatCompletion, resp.ChatCompletionChunk, GENERATION_ERRORS),
    Operation("/v1/completions", "post", "Text completion (server-sent events when `stream` is true)",
              req.CompletionRequest, resp.Completion, resp.Completion, GENERATION_ERRORS),
    Operation("/v1/embeddings", "post", "Embeddings of one text or a list of texts",
              req.EmbeddingRequest, resp.EmbeddingList, None, GENERATION_ERRORS),
    Operation("/v1/responses", "post", "Create a response (server-sent events, `event:` the type, when `stream` is "
              "true)", responses.ResponsesRequest, responses.ResponseObject, responses.ResponseStreamEvent,
              GENERATION_ERRORS, named_events=True),
    Operation("/v1/responses/{response_id}", "get", "A stored response", None, responses.ResponseObject,
              errors=(401, 404), path_params=("response_id",)),
    Operation("/v1/responses/{response_id}", "delete", "Delete a stored response", None, responses.DeletedResponse,
              errors=(401, 404), path_params=("response_id",)),
    Operation("/v1/messages", "post", "Anthropic Messages (server-sent events, `event:` the type, when `stream` is "
              "true); errors in Anthropic's shape", anthropic.AnthropicMessagesRequest, anthropic.AnthropicMessage,
              anthropic.AnthropicStreamEvent, GENERATION_ERRORS, named_events=True,
              error_body=anthropic.AnthropicErrorResponse),
    Operation("/v1/messages/count_tokens", "post", "Input tokens of an Anthropic Messages request (template and "
              "tools included)", anthropic.AnthropicCountTokensRequest, anthropic.AnthropicTokenCount,
              errors=(400, 401, 404, 413, 503), error_body=anthropic.AnthropicErrorResponse),
    Operation("/v1/models", "get", "Models that can serve now (tokenizer loaded, a live worker), then their aliases",
              None, resp.ModelList,
              errors=(401,)),
    Operation("/v1/models/{model}", "get", "One served model or alias", None, resp.Model, errors=(401, 404),
              path_params=("model",)),
    Operation("/tokenize", "post", "Token ids of a prompt, or of chat messages rendered with the model's template "
              "(vLLM's shape)", req.TokenizeRequest, resp.TokenizeResponse, errors=(400, 401, 404, 413, 503)),
    Operation("/detokenize", "post", "The text of token ids (vLLM's shape)", req.DetokenizeRequest,
              resp.DetokenizeResponse, errors=(400, 401, 404, 413, 503)),
    Operation("/version", "get", "The frontend's version", None, resp.Version),
    Operation("/health", "get", "Health: 200 once a model can serve, else 503; live worker instances per model",
              None, resp.Health, unavailable=resp.Health),
    Operation("/live", "get", "Liveness: the process is up", None, resp.Live),
    Operation("/metrics", "get", "Prometheus metrics (dynamo_frontend_*)", media_type="text/plain"),
    Operation("/openapi.json", "get", "This document"),
)


def _ref(kind: type) -> dict:
    if get_origin(kind) is Union:   # a union of types (Anthropic's stream events): any of their components
        return {"anyOf": [_ref(member) for member in get_args(kind)]}
    return {"$ref": _REF.format(name=kind.__name__)}


def _json_data(kind: type) -> dict:
    """An SSE `data` field that holds `kind` encoded as JSON."""
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(kind)}


def sse_item_schema(chunk: type) -> dict:
    """One event of a streamed answer: a chunk, the closing `[DONE]`, or an in-band error envelope."""
    return {"type": "object", "required": ["data"], "anyOf": [
        {"properties": {"event": {"const": "message"}, "data": {"anyOf": [{"const": "[DONE]"}, _json_data(chunk)]}}},
        {"properties": {"event": {"const": "error"}, "data": _json_data(resp.ErrorResponse)}},
    ]}


def named_event_schema(event: type) -> dict:
    """One event of a stream whose events are named by their type (`event:`), with no closing [DONE]."""
    return {"type": "object", "required": ["data"], "properties": {"event": {"type": "string"},
                                                                   "data": _json_data(event)}}


def _operation(op: Operation) -> dict:
    ok: dict = {"description": "OK"}
    if op.media_type == "application/json":
        ok["content"] = {"application/json": {"schema": _ref(op.response) if op.response else {"type": "object"}}}
    else:
        ok["content"] = {op.media_type: {"schema": {"type": "string"}}}
    if op.stream_chunk is not None:
        ok["content"]["text/event-stream"] = {"itemSchema": named_event_schema(op.stream_chunk) if op.named_events
                                              else sse_item_schema(op.stream_chunk)}
    responses = {"200": ok}
    error = _ref(op.error_body or resp.ErrorResponse)
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_STATUSES[status],
                                  "content": {"application/json": {"schema": error}}}
        if status == 503:
            responses["503"]["headers"] = RETRY_AFTER
    if op.unavailable is not None:
        responses["503"] = {"description": "Not ready: no model can serve yet",
                            "content": {"application/json": {"schema": _ref(op.unavailable)}}}
    op_id = op.path.strip("/").replace("/", "_").replace(".", "_").replace("{", "").replace("}", "")
    op_id = op_id if op.method in ("get", "post") else f"{op.method}_{op_id}"
    body: dict = {"summary": op.summary, "operationId": op_id, "responses": responses}
    if op.path_params:
        body["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                              for name in op.path_params]
    if op.request is not None:
        body["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.request)}}}
    return body


def build_openapi_spec() -> dict:
    """The whole document: every operation, and the component schemas of every type they name."""
    types = [t for op in OPERATIONS for t in (op.request, op.response, op.stream_chunk, op.error_body) if t is not None]
    _, components = msgspec.json.schema_components(list(dict.fromkeys([*types, resp.ErrorResponse])),
                                                   ref_template=_REF)
    for name, rules in req.CROSS_FIELD_SCHEMA.items():
        component = components[name]
        for key, value in rules.items():
            component[key] = {**component.get(key, {}), **value} if key == "properties" else value
    paths: dict = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.2.0",
        "info": {"title": "pyimpl OpenAI-compatible frontend", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": components},
    }


OPENAPI_SPEC = build_openapi_spec()
