"""The contract findings of issue 15, each a regression test against a real frontend + mock worker:
no input reaches a 500, and real answers (streamed ones event by event) conform to /openapi.json."""
from __future__ import annotations

import httpx
import pytest

from .conftest import start_frontend, start_worker, wait_for_models

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    frontend, url = start_frontend(serving_env)
    worker = start_worker(serving_env, tiny_model, "--model-name", "tiny", "--engine", "mock")
    try:
        wait_for_models(url, lambda names: "tiny" in names)
        yield url
    finally:
        worker.stop()
        frontend.stop()


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {**CHAT, "model": {}}, "model"),
    ("/v1/completions", {"model": {}, "prompt": "x"}, "model"),
    ("/v1/embeddings", {"model": {}, "input": ""}, "model"),
    ("/v1/embeddings", {"model": ["tiny"], "input": "x"}, "model"),
    ("/v1/chat/completions", {**CHAT, "messages": {}}, "messages"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": {}}]}, "messages[0].content"),
    ("/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ("/v1/chat/completions", {**CHAT, "tools": [{"type": "function", "function": {"name": 3}}]},
     "tools[0].function.name"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": {"function": []}}, "tool_choice.function"),
    ("/v1/completions", {"model": "tiny", "prompt": [[1], "a"]}, "prompt"),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "stop": {}}, "stop"),
    ("/v1/completions", {"model": "tiny", "prompt": [2580578457702, 7654]}, "prompt[0]"),  # 500 OverflowError once
    ("/v1/completions", {"model": "tiny", "prompt": [2_000_000_000, 7]}, "prompt"),  # past the model's vocabulary
    ("/v1/completions", {"model": "tiny", "prompt": "x", "stop_token_ids": [1 << 70]}, "stop_token_ids[0]"),  # 500 too
    ("/v1/embeddings", {"model": "tiny", "input": [1]}, "input[0]"),
    ("/v1/embeddings", {"model": "tiny", "input": "x", "encoding_format": "hex"}, "encoding_format"),
])
def test_wrong_json_types_are_a_400_naming_the_field(stack, path, body, param):
    r = httpx.post(f"{stack}{path}", json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]


def test_ints_beyond_64_bits_in_ignored_fields_are_served(stack):
    """An unknown message key holding a huge int once broke the prompt cache key (500 OverflowError)."""
    body = {**CHAT, "messages": [{"role": "user", "content": "hi", "x": 1 << 70}], "extra": -(1 << 70)}
    assert httpx.post(f"{stack}/v1/chat/completions", json=body, timeout=30).status_code == 200


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}),
    ("/v1/chat/completions", {**CHAT, "logprobs": True, "top_logprobs": 2, "n": 2}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": 3, "stream": True, "logprobs": 1}),
    ("/v1/completions", {"model": "tiny", "prompt": [1, 2], "max_tokens": 3, "echo": True}),
    ("/v1/chat/completions", {**CHAT, "model": "nope"}),
    ("/v1/chat/completions", {**CHAT, "temperature": 9}),
])
def test_answers_conform_to_the_document(stack, path, body):
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_url(f"{stack}/openapi.json")
    case = schema[path]["POST"].Case(body=body, media_type="application/json")
    response = case.call(base_url=stack)
    case.validate_response(response)  # status documented, body or every SSE event conforms, content type


def test_one_model_by_id_and_the_version_conform_to_the_document(stack):
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_url(f"{stack}/openapi.json")
    for name, status in (("tiny", 200), ("nope", 404)):
        case = schema["/v1/models/{model}"]["GET"].Case(path_parameters={"model": name})
        response = case.call(base_url=stack)
        assert response.status_code == status, response.text
        case.validate_response(response)
    assert httpx.get(f"{stack}/v1/models/tiny", timeout=30).json()["id"] == "tiny"
    assert httpx.get(f"{stack}/v1/models/nope", timeout=30).json()["error"]["code"] == "model_not_found"
    case = schema["/version"]["GET"].Case()
    response = case.call(base_url=stack)
    case.validate_response(response)
    assert response.json()["version"]


def test_any_model_name_and_unknown_routes_answer_the_error_envelope(stack):
    """A model name holding a newline fell through to Starlette's text/plain 404 (schemathesis, seed 658741098)."""
    for url in (f"{stack}/v1/models/%C2%A5%0A%C3%B4", f"{stack}/v1/nothing-here"):
        r = httpx.get(url, timeout=30)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
