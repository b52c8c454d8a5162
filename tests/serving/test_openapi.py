"""/openapi.json: generated from the types the server validates with, covering every route it serves."""
from __future__ import annotations

import re

import pytest

from pyimpl.llm.frontend.http.app import OpenAIFrontend
from pyimpl.llm.frontend.http.openapi import OPENAPI_SPEC, OPERATIONS
from pyimpl.llm.frontend.protocol_types import CHAT_ROLES
from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.protocols import parse_chat_request, parse_completion_request

SCHEMAS = OPENAPI_SPEC["components"]["schemas"]


def test_every_served_route_is_documented():
    served = {(re.sub(r":\w+}", "}", route.path), method.lower())  # "{model:path}" is "{model}" in the document
              for route in OpenAIFrontend().routes() for method in route.methods if method != "HEAD"}
    documented = {(path, method) for path, item in OPENAPI_SPEC["paths"].items() for method in item}
    assert served == documented
    assert len({(op.path, op.method) for op in OPERATIONS}) == len(OPERATIONS)   # GET and DELETE may share a path
    op_ids = [item["operationId"] for item in OPENAPI_SPEC["paths"].values() for item in item.values()]
    assert len(set(op_ids)) == len(op_ids)


def test_generation_routes_document_every_status_with_the_error_envelope():
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        responses = OPENAPI_SPEC["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "400", "401", "404", "413", "500", "503"}
        for status in ("400", "404", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}


def test_streamed_events_carry_the_chunk_as_json_data():
    """Each SSE event's `data` is the chunk (not the event envelope), then [DONE]; errors are `event: error`."""
    item = OPENAPI_SPEC["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"][
        "text/event-stream"]["itemSchema"]
    message, error = item["anyOf"]
    done, chunk = message["properties"]["data"]["anyOf"]
    assert done == {"const": "[DONE]"}
    assert chunk["contentMediaType"] == "application/json"
    assert chunk["contentSchema"] == {"$ref": "#/components/schemas/ChatCompletionChunk"}
    assert error["properties"]["event"] == {"const": "error"}
    assert OPENAPI_SPEC["openapi"].startswith("3.2")


def test_request_constraints_are_the_enforced_ones():
    chat = SCHEMAS["ChatCompletionRequest"]
    assert "model" in chat["required"] and "messages" in chat["required"]
    assert chat["properties"]["n"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 16}
    assert chat["properties"]["top_p"]["anyOf"][0]["exclusiveMinimum"] == 0.0
    roles = sorted(SCHEMAS["ChatCompletionRequest"]["properties"]["messages"]["items"]["discriminator"]["mapping"])
    assert roles == sorted(CHAT_ROLES)
    for role in CHAT_ROLES:  # every documented role is accepted
        parse_chat_request({"model": "m", "messages": [{"role": role, "content": "x"}]})


def test_the_document_loads_in_schemathesis():
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(OPENAPI_SPEC)
    assert {result.ok().path for result in schema.get_all_operations()} == set(OPENAPI_SPEC["paths"])


def _accepted_by_document(component: str, body: dict) -> bool:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # comes with schemathesis
    root = {"$ref": f"#/components/schemas/{component}", "components": OPENAPI_SPEC["components"]}
    return jsonschema_rs.Draft202012Validator(root).is_valid(body)


def _accepted_by_server(parse, body: dict) -> bool:
    try:
        parse(body)
    except InvalidRequestError:
        return False
    return True


USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize("component,parse,body", [
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [{"role": "assistant"}]}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{}]}]}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "tool_choice": "auto"}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "tool_choice": "none"}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "tool_choice": "auto",
                                                   "tools": [TOOL]}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "top_logprobs": 2}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "top_logprobs": 0}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "top_logprobs": 2,
                                                   "logprobs": True}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "seed": 1 << 64}),
    ("ChatCompletionRequest", parse_chat_request, {"model": "m", "messages": [USER], "top_p": 0}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": ["a", "b"]}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": [[1], [2]]}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": [[1, 2]]}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": ["a"]}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": [1, "a"]}),
    ("CompletionRequest", parse_completion_request, {"model": "m", "prompt": [3, 4]}),
])
def test_the_document_accepts_exactly_what_the_server_accepts(component, parse, body):
    """The rules spanning fields are stated in the document too (no 'schema validation mismatch')."""
    assert _accepted_by_document(component, body) == _accepted_by_server(parse, body)
