"""/v1/messages (Anthropic Messages) against a mock-engine worker, driven by the official `anthropic` client."""
from __future__ import annotations

import json

import httpx
import pytest

from .conftest import start_frontend, start_worker, wait_for_models

anthropic = pytest.importorskip("anthropic")

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
TOOL_CALL_TEXT = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    """One frontend with an API key, an echo (mock) worker with the hermes and think parsers, a slow mock worker."""
    frontend, url = start_frontend(serving_env, "--api-key", "sk-test")
    workers = [start_worker(serving_env, tiny_model, "--model-name", "tiny", "--engine", "mock",
                            "--tool-call-parser", "hermes", "--reasoning-parser", "think"),
               start_worker(serving_env, tiny_model, "--model-name", "tiny-slow", "--engine", "mock",
                            "--endpoint", "slow.backend.generate", "--mock-step-delay-s", "0.05")]
    try:
        wait_for_models(url, lambda names: {"tiny", "tiny-slow"} <= set(names),
                        headers={"Authorization": "Bearer sk-test"})
        yield url
    finally:
        for proc in [*workers, frontend]:
            proc.stop()


@pytest.fixture
def client(stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack, api_key="sk-test", max_retries=0, timeout=30)


def test_message_non_streaming(client):
    r = client.messages.create(model="tiny", max_tokens=5, system="Be brief.", metadata={"user_id": "u1"},
                               messages=[{"role": "user", "content": "hello there"}])
    assert r.type == "message" and r.role == "assistant" and r.id.startswith("msg_")
    assert r.model == "tiny"
    assert [b.type for b in r.content] == ["text"] and r.content[0].text
    assert r.stop_reason == "max_tokens" and r.stop_sequence is None
    assert r.usage.output_tokens == 5 and r.usage.input_tokens > 0


def test_message_ends_its_turn(client):
    # this client version no longer has sampling keywords; the API still takes them
    r = client.messages.create(model="tiny", max_tokens=500, extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 20},
                               messages=[{"role": "user", "content": [{"type": "text", "text": "short one"}]}])
    assert r.stop_reason == "end_turn"
    assert "short one" in r.content[0].text


def test_stream_events_in_anthropic_order(client, stack):
    with client.messages.stream(model="tiny", max_tokens=6,
                                messages=[{"role": "user", "content": "hello there"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert final.content[0].text == text and text
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 6 and final.usage.input_tokens > 0
    # on the wire (the client hides pings): `event:` names the JSON data's type, in Anthropic's order
    body = {"model": "tiny", "max_tokens": 6, "stream": True, "messages": [{"role": "user", "content": "hello there"}]}
    with httpx.stream("POST", f"{stack}/v1/messages", headers={"x-api-key": "sk-test"}, json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines[0::2]]
    datas = [json.loads(line.removeprefix("data: ")) for line in lines[1::2]]
    assert [d["type"] for d in datas] == names
    deltas = [k for k in names if k == "content_block_delta"]
    assert names == ["message_start", "content_block_start", "ping", *deltas, "content_block_stop",
                     "message_delta", "message_stop"] and deltas
    assert datas[-2]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert datas[-2]["usage"]["output_tokens"] == 6
    assert datas[0]["message"]["usage"]["input_tokens"] == datas[-2]["usage"]["input_tokens"] > 0


def test_tool_use_round_trip(client):
    messages = [{"role": "user", "content": TOOL_CALL_TEXT}]
    r = client.messages.create(model="tiny", max_tokens=500, tools=TOOLS, messages=messages)
    assert r.stop_reason == "tool_use"
    uses = [b for b in r.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"})]
    assert all(TOOL_CALL_TEXT not in b.text for b in r.content if b.type == "text")
    # streamed: the call comes as a tool_use block whose input arrives as input_json_delta
    with client.messages.stream(model="tiny", max_tokens=500, tools=TOOLS, messages=messages) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    assert final.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [("get_weather", {"city": "Paris"})]
    # the tool's result goes back in a user message; the model answers (the mock echoes the conversation)
    follow = messages + [{"role": "assistant", "content": [b.model_dump() for b in r.content]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                                       "content": "sunny, 21 C"}]}]
    r2 = client.messages.create(model="tiny", max_tokens=800, tools=TOOLS, tool_choice={"type": "none"},
                                messages=follow)
    assert r2.stop_reason in ("end_turn", "max_tokens")
    assert "sunny, 21 C" in "".join(b.text for b in r2.content if b.type == "text")


def test_stop_sequences(client):
    text = "alpha beta HALT gamma delta"
    r = client.messages.create(model="tiny", max_tokens=500, stop_sequences=["NEVERSEEN", "LT", "HALT"],
                               messages=[{"role": "user", "content": text}])
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == "HALT"
    assert r.content[0].text.endswith("alpha beta ") and "HALT" not in r.content[0].text
    with client.messages.stream(model="tiny", max_tokens=500, stop_sequences=["LT", "HALT"],
                                messages=[{"role": "user", "content": text}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == r.content[0].text
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "HALT"


def test_count_tokens(client):
    messages = [{"role": "user", "content": "hello there"}]
    counted = client.messages.count_tokens(model="tiny", messages=messages).input_tokens
    used = client.messages.create(model="tiny", max_tokens=1, messages=messages).usage.input_tokens
    assert counted == used > 0
    with_tools = client.messages.count_tokens(model="tiny", messages=messages, tools=TOOLS).input_tokens
    assert with_tools > counted
    forced = {"type": "tool", "name": "get_weather"}
    assert client.messages.count_tokens(model="tiny", messages=messages, tools=TOOLS,
                                        tool_choice=forced).input_tokens == client.messages.create(
        model="tiny", max_tokens=1, messages=messages, tools=TOOLS, tool_choice=forced).usage.input_tokens
    long = [{"role": "user", "content": "many words " * 2000}]   # over the model's context: counted all the same
    assert client.messages.count_tokens(model="tiny", messages=long).input_tokens > 2048


def test_errors_in_anthropic_shape(client, stack):
    with pytest.raises(anthropic.NotFoundError) as lost:
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert lost.value.body["type"] == "error" and lost.value.body["error"]["type"] == "not_found_error"
    r = httpx.post(f"{stack}/v1/messages", headers={"x-api-key": "sk-test"},
                   json={"model": "tiny", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as denied:
        anthropic.Anthropic(base_url=stack, api_key="wrong", max_retries=0).messages.create(
            model="tiny", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert denied.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="tiny", max_tokens=5, extra_body={"temperature": 1.5},
                               messages=[{"role": "user", "content": "x"}])
    assert "temperature" in bad.value.body["error"]["message"]
    # the OpenAI routes keep OpenAI's shape
    r = httpx.post(f"{stack}/v1/chat/completions", headers={"Authorization": "Bearer sk-test"},
                   json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and "type" in r.json()["error"] and "type" not in r.json()


def test_tool_use_block_input_is_valid_json_text(client):
    """The streamed input_json_delta pieces join into the JSON object the whole answer has."""
    with client.messages.stream(model="tiny", max_tokens=500, tools=TOOLS,
                                messages=[{"role": "user", "content": TOOL_CALL_TEXT}]) as stream:
        parts = [e.delta.partial_json for e in stream
                 if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert json.loads("".join(parts)) == {"city": "Paris"}


def test_reasoning_comes_as_a_thinking_block(client):
    messages = [{"role": "user", "content": "<think>pondering deeply</think>final answer"}]
    r = client.messages.create(model="tiny", max_tokens=500, messages=messages)
    assert [b.type for b in r.content] == ["thinking", "text"]
    assert "pondering deeply" in r.content[0].thinking
    assert "final answer" in r.content[1].text and "pondering" not in r.content[1].text
    with client.messages.stream(model="tiny", max_tokens=500, messages=messages) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in kinds and kinds[-1] == "text_delta"   # the echo's template text may come first
    assert [b.thinking for b in final.content if b.type == "thinking"] == [r.content[0].thinking]
    assert "".join(b.text for b in final.content if b.type == "text") == r.content[1].text


def test_parallel_tool_use_and_disabling_it(client):
    two = TOOL_CALL_TEXT + TOOL_CALL_TEXT.replace("Paris", "Rome")
    messages = [{"role": "user", "content": two}]
    r = client.messages.create(model="tiny", max_tokens=500, tools=TOOLS, messages=messages)
    assert [b.input for b in r.content if b.type == "tool_use"] == [{"city": "Paris"}, {"city": "Rome"}]
    single = {"type": "auto", "disable_parallel_tool_use": True}
    r = client.messages.create(model="tiny", max_tokens=500, tools=TOOLS, tool_choice=single, messages=messages)
    assert [b.input for b in r.content if b.type == "tool_use"] == [{"city": "Paris"}]
    assert r.stop_reason == "tool_use"
    with client.messages.stream(model="tiny", max_tokens=500, tools=TOOLS, tool_choice=single,
                                messages=messages) as stream:
        final = stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Paris"}]


async def test_client_disconnect_cancels_the_engine_request(stack, serving_env):
    from .test_http_openai import WorkerStats
    body = {"model": "tiny-slow", "max_tokens": 1500, "stream": True,
            "messages": [{"role": "user", "content": "count on " * 100}]}
    async with WorkerStats(serving_env, "slow.backend.stats") as stats:
        before = await stats.aborts()
        async with httpx.AsyncClient(base_url=stack, timeout=60, headers={"x-api-key": "sk-test"}) as http:
            async with http.stream("POST", "/v1/messages", json=body) as r:
                assert r.status_code == 200, await r.aread()
                async for line in r.aiter_lines():
                    if line == "event: content_block_delta":
                        break
        assert await stats.wait_for_aborts(before + 1) == before + 1
    metrics = httpx.get(f"{stack}/metrics").text
    assert any('endpoint="/v1/messages"' in line and 'status="cancelled"' in line for line in metrics.splitlines())
