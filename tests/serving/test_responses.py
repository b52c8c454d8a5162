"""/v1/responses against a mock (echo) worker with hermes + think parsers, all real processes, driven by the
official `openai` client: whole and streamed responses (OpenAI's event order, strictly increasing sequence
numbers), previous_response_id (also across a frontend restart with the SQLite store), GET and DELETE, a function
tool call round trip, max_output_tokens -> incomplete. The echo worker answers with its prompt, so what reached
the model is visible in the answer."""
from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from .conftest import start_frontend, start_worker, wait_for_models

TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


class Stack:
    """A worker and a frontend keeping responses in a SQLite file; the frontend can be restarted."""

    def __init__(self, env: dict, model: str, store: str):
        self.env, self.model, self.store = env, model, store
        self.worker = start_worker(env, model, "--model-name", "tiny", "--engine", "mock",
                                   "--tool-call-parser", "hermes", "--reasoning-parser", "think")
        self.frontend = None
        self.restart_frontend()

    def restart_frontend(self) -> None:
        if self.frontend is not None:
            self.frontend.stop()
        self.frontend, self.url = start_frontend(self.env, "--responses-store", self.store)
        wait_for_models(self.url, lambda names: "tiny" in names)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=30)

    def stop(self) -> None:
        for proc in (self.frontend, self.worker):
            proc.stop()


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model, tmp_path_factory):
    stack = Stack(serving_env, tiny_model, str(tmp_path_factory.mktemp("responses") / "responses.db"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def client(stack) -> openai.OpenAI:
    return stack.client()


# MCP items (tests/responses_mcp): the events between an item's output_item.added and output_item.done
MCP_INNER = {
    "mcp_list_tools": [["response.mcp_list_tools.in_progress", f"response.mcp_list_tools.{end}"]
                       for end in ("completed", "failed")],
    "mcp_call": [["response.mcp_call.in_progress", "response.mcp_call_arguments.delta",
                  "response.mcp_call_arguments.done", f"response.mcp_call.{end}"] for end in ("completed", "failed")],
    "mcp_approval_request": [[]],
}


def check_event_order(events: list) -> None:
    """OpenAI's order: created, in_progress, then each item opened, filled and closed before the next, then one
    terminal event; sequence numbers 0, 1, 2, ..."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in TERMINAL and not TERMINAL & set(types[:-1])
    i, body = 2, types[2:-1]
    while body:
        assert body[0] == "response.output_item.added", types
        kind = events[i].item.type
        end = body.index("response.output_item.done")
        inner = body[1:end]
        assert events[i + end].item.id == events[i].item.id
        if kind in MCP_INNER:
            assert inner in MCP_INNER[kind], (kind, inner)
        elif kind == "function_call":
            assert set(inner[:-1]) <= {"response.function_call_arguments.delta"}
            assert inner[-1] == "response.function_call_arguments.done"
        else:
            prefix = "response.output_text" if kind == "message" else "response.reasoning_text"
            assert inner[0] == "response.content_part.added" and inner[-1] == "response.content_part.done"
            assert set(inner[1:-2]) == {f"{prefix}.delta"} and inner[-2] == f"{prefix}.done"
        i, body = i + end + 1, body[end + 1:]


def test_whole_response_and_usage(client):
    r = client.responses.create(model="tiny", input="hello there", instructions="Answer kindly")
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed"
    assert "hello there" in r.output_text and "Answer kindly" in r.output_text
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    usage = r.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0


def test_streamed_events_in_order(client):
    events = list(client.responses.create(model="tiny", input="hi <think>pondering</think> done", stream=True))
    check_event_order(events)
    kinds = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert "reasoning" in kinds and "message" in kinds
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.status == "completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text and "done" in text
    assert [o.content[0].text for o in final.output if o.type == "reasoning"] == ["pondering"]
    assert 0 < final.usage.output_tokens_details.reasoning_tokens < final.usage.output_tokens
    assert client.responses.retrieve(final.id).output_text == text   # stored as streamed


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(model="tiny", input="my name is Ada", instructions="SECRET-RULES",
                                    max_output_tokens=1)
    second = client.responses.create(model="tiny", input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert "my name is Ada" in second.output_text and "what is my name?" in second.output_text
    assert "SECRET-RULES" not in second.output_text   # instructions are not carried over


def test_conversation_survives_a_frontend_restart(stack):
    first = stack.client().responses.create(model="tiny", input="remember the word PELICAN")
    stack.restart_frontend()
    client = stack.client()
    assert client.responses.retrieve(first.id).output_text == first.output_text
    second = client.responses.create(model="tiny", input="which word?", previous_response_id=first.id)
    assert "PELICAN" in second.output_text


def test_get_and_delete(client):
    r = client.responses.create(model="tiny", input="keep me", max_output_tokens=3)
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text and got.status == r.status
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="tiny", input="more", previous_response_id=r.id)
    unstored = client.responses.create(model="tiny", input="forget me", store=False, max_output_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_function_call_round_trip(client):
    r = client.responses.create(model="tiny", input=CALL, tools=TOOLS)
    calls = [o for o in r.output if o.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].call_id and calls[0].status == "completed"
    events = list(client.responses.create(model="tiny", input=CALL, tools=TOOLS, stream=True))
    check_event_order(events)
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(e.arguments) for e in done] == [{"city": "Paris"}]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == done[0].arguments
    answer = client.responses.create(model="tiny", previous_response_id=r.id, tools=TOOLS, input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21C"}])
    assert answer.status == "completed" and "Sunny, 21C" in answer.output_text   # the result reached the model
    # without the store: the output items handed back as input, then the call's output
    handed = client.responses.create(model="tiny", store=False, tools=TOOLS, input=[
        *[item.model_dump(exclude_none=True) for item in r.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Fog, 9C"}])
    assert handed.status == "completed" and "Fog, 9C" in handed.output_text
    # and written by hand
    direct = client.responses.create(model="tiny", store=False, tools=TOOLS, input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "Snow, -3C"}])
    assert "Snow, -3C" in direct.output_text   # the echo parses the replayed call again: it reached the model too
    assert [json.loads(o.arguments) for o in direct.output if o.type == "function_call"] == [{"city": "Oslo"}]


def test_max_tool_calls_and_parallel_tool_calls(client):
    two = CALL + CALL.replace("Paris", "Rome")
    calls = lambda r: [o for o in r.output if o.type == "function_call"]  # noqa: E731
    assert len(calls(client.responses.create(model="tiny", input=two, tools=TOOLS))) == 2
    assert len(calls(client.responses.create(model="tiny", input=two, tools=TOOLS, max_tool_calls=1))) == 1
    assert len(calls(client.responses.create(model="tiny", input=two, tools=TOOLS, parallel_tool_calls=False))) == 1


def test_max_output_tokens_is_incomplete(client):
    r = client.responses.create(model="tiny", input="a long enough prompt to be cut", max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 3 and r.output[0].status == "incomplete"
    events = list(client.responses.create(model="tiny", input="another prompt to be cut", max_output_tokens=3,
                                          stream=True))
    check_event_order(events)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_errors_are_clear(client):
    with pytest.raises(openai.BadRequestError, match="not configured"):   # MCP: tests/responses_mcp/test_mcp_http.py
        client.responses.create(model="tiny", input="hi", tools=[{"type": "mcp", "server_label": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.BadRequestError, match="input"):
        client.responses.create(model="tiny", input=[{"type": "message", "role": "user",
                                                      "content": [{"type": "input_image", "image_url": "x"}]}])
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")


def test_metrics_count_responses(stack, client):
    client.responses.create(model="tiny", input="count me", max_output_tokens=2)
    list(client.responses.create(model="tiny", input="count me too", max_output_tokens=2, stream=True))
    text = httpx.get(f"{stack.url}/metrics", timeout=10).text
    for kind in ("unary", "stream"):
        assert (f'dynamo_frontend_requests_total{{endpoint="/v1/responses",model="tiny",request_type="{kind}",'
                f'status="success"}}') in text
    assert 'dynamo_frontend_inflight_requests{model="tiny"} 0.0' in text


def test_a_client_that_leaves_mid_stream_ends_the_request(stack):
    slow = start_worker(stack.env, stack.model, "--model-name", "tiny-slow", "--engine", "mock",
                        "--endpoint", "slow.backend.generate", "--mock-step-delay-s", "0.05")
    try:
        wait_for_models(stack.url, lambda names: "tiny-slow" in names)
        body = {"model": "tiny-slow", "input": "a slow answer", "stream": True, "max_output_tokens": 2000}
        with httpx.stream("POST", f"{stack.url}/v1/responses", json=body, timeout=30) as reply:
            for n, _ in enumerate(reply.iter_lines()):
                if n > 12:
                    break
        cancelled = ('dynamo_frontend_requests_total{endpoint="/v1/responses",model="tiny-slow",'
                     'request_type="stream",status="cancelled"} 1.0')
        deadline = time.monotonic() + 10
        while cancelled not in (text := httpx.get(f"{stack.url}/metrics", timeout=10).text):
            assert time.monotonic() < deadline, "the request never ended"
            time.sleep(0.1)
        assert 'dynamo_frontend_inflight_requests{model="tiny-slow"} 0.0' in text
    finally:
        slow.stop()
