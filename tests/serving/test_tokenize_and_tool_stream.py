"""Over HTTP with the openai client: a streamed tool call arrives as OpenAI sends it (id and name first, the
arguments in pieces) and rebuilds into the non-streamed answer's call; /tokenize and /detokenize (vLLM's shapes)."""
from __future__ import annotations

import json

import httpx
import openai
import pytest

from .conftest import frontend_with_worker

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
ARGS = {"city": "Paris", "note": "a long argument that the model writes over many tokens " * 4}
CALL = '<tool_call>{"name": "get_weather", "arguments": ' + json.dumps(ARGS) + '}</tool_call>'


@pytest.fixture(scope="module")
def url(serving_env, tiny_model):
    """A frontend and one echo (mock) worker whose hermes parser reads the echoed tool call."""
    with frontend_with_worker(serving_env, tiny_model, "tiny", "--engine", "mock",
                              "--tool-call-parser", "hermes") as base:
        yield base


def test_streamed_tool_call_rebuilds_into_the_whole_answer(url):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": CALL}]
    stream = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=500,
                                            stream=True)
    chunks = [c for c in stream if c.choices]
    pieces = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert pieces[0].id and pieces[0].type == "function" and pieces[0].function.name == "get_weather"
    assert all(p.id is None and p.function.name is None for p in pieces[1:])
    assert {p.index for p in pieces} == {0} and len(pieces) > 3   # the arguments came in pieces
    arguments = "".join(p.function.arguments or "" for p in pieces)
    assert json.loads(arguments) == ARGS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    whole = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=500)
    (call,) = whole.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", ARGS)
    assert whole.choices[0].finish_reason == "tool_calls"


def test_tokenize_a_prompt_and_detokenize_it_back(url):
    r = httpx.post(f"{url}/tokenize", json={"model": "tiny", "prompt": "Hello world"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["tokens"]) > 0 and body["max_model_len"] > 0
    back = httpx.post(f"{url}/detokenize", json={"model": "tiny", "tokens": body["tokens"]}, timeout=30).json()
    assert back["prompt"].endswith("Hello world")
    # no special tokens asked: exactly the text's tokens; token_strs on request; the model may be left out
    plain = httpx.post(f"{url}/tokenize", json={"prompt": "Hello world", "add_special_tokens": False,
                                                "return_token_strs": True}, timeout=30).json()
    assert len(plain["token_strs"]) == plain["count"]
    text = httpx.post(f"{url}/detokenize", json={"tokens": plain["tokens"]}, timeout=30).json()["prompt"]
    assert text == "Hello world"


def test_tokenize_messages_counts_the_chat_prompt(url):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = httpx.post(f"{url}/tokenize", json={"model": "tiny", "messages": messages}, timeout=30).json()
    bare = httpx.post(f"{url}/tokenize", json={"model": "tiny", "messages": messages,
                                              "add_generation_prompt": False}, timeout=30).json()
    assert r["count"] > bare["count"] > 0
    # the same count the chat endpoint bills as prompt tokens
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
    usage = client.chat.completions.create(model="tiny", messages=messages, max_tokens=1).usage
    assert usage.prompt_tokens == r["count"]


@pytest.mark.parametrize("path,body,status,param", [
    ("/tokenize", {"model": "tiny"}, 400, "prompt"),
    ("/tokenize", {"model": "tiny", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}, 400, "prompt"),
    ("/tokenize", {"model": "tiny", "prompt": 5}, 400, "prompt"),
    ("/tokenize", {"model": "nope", "prompt": "x"}, 404, "model"),
    ("/detokenize", {"model": "tiny", "tokens": [1 << 30]}, 400, "tokens"),
    ("/detokenize", {"model": "tiny", "tokens": [-1]}, 400, "tokens[0]"),
    ("/detokenize", {"model": "tiny"}, 400, "tokens"),
])
def test_tokenization_errors_use_the_json_envelope(url, path, body, status, param):
    r = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["param"] == param


def test_demo_model_streams_its_get_weather_call(serving_env):
    """The demo model (torch engine) calls get_weather: streamed, the call rebuilds from its pieces, and it is
    the call the non-streamed answer holds."""
    from pyimpl.models import demo_model_path
    from pyimpl.models.demo_corpus import WEATHER_TOOL
    with frontend_with_worker(serving_env, str(demo_model_path()), "demo", "--engine", "torch") as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
        messages = [{"role": "user", "content": "What is the weather in New York?"}]
        chunks = [c for c in client.chat.completions.create(model="demo", messages=messages, tools=[WEATHER_TOOL],
                                                            max_tokens=64, temperature=0, stream=True) if c.choices]
        pieces = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
        assert pieces[0].id and pieces[0].function.name == "get_weather" and len(pieces) > 1
        streamed = json.loads("".join(p.function.arguments or "" for p in pieces))
        assert streamed == {"city": "New York"}
        whole = client.chat.completions.create(model="demo", messages=messages, tools=[WEATHER_TOOL], max_tokens=64,
                                               temperature=0)
        (call,) = whole.choices[0].message.tool_calls
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", streamed)


@pytest.mark.parametrize("body,ok", [
    ({"model": "m", "prompt": "x"}, True),
    ({"prompt": "x", "add_special_tokens": False, "return_token_strs": True}, True),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "add_generation_prompt": False}, True),
    ({"model": "m"}, False),
    ({"model": "m", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}, False),
    ({"model": "m", "prompt": 3}, False),
])
def test_openapi_documents_the_tokenize_request_the_server_accepts(body, ok):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    from pyimpl.llm.frontend.http.openapi import OPENAPI_SPEC
    root = {"$ref": "#/components/schemas/TokenizeRequest", "components": OPENAPI_SPEC["components"]}
    assert jsonschema_rs.Draft202012Validator(root).is_valid(body) == ok
    assert OPENAPI_SPEC["paths"]["/tokenize"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/TokenizeResponse"}
