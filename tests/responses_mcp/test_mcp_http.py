"""MCP tools run by the server, over HTTP /v1/responses with the official `openai` client: a worker serving the
demo model (trained to call get_weather and answer from its result) and a frontend, real processes; the MCP
servers are the SDK's own (weather_mcp.py) on 127.0.0.1, over Streamable HTTP and (--mcp-config) stdio.
tool_choice "required" makes the model's first turn a call (constrained decoding), so every run calls."""
from __future__ import annotations

import json
import time

import openai
import pytest

from serving.conftest import serving_env, start_frontend, start_worker, wait_for_models  # noqa: F401
from serving.test_responses import check_event_order

from .conftest import mcp_server, stdio_server_entry

TIMEOUT_S = 3.0   # the frontend's --mcp-timeout-s: a hanging server costs this much
ASK = {"model": "demo", "input": "What is the weather in Oslo?", "tool_choice": "required", "temperature": 0}


def mcp_tool(url: str, **extra) -> dict:
    return {"type": "mcp", "server_label": "weather", "server_url": url, "require_approval": "never", **extra}


@pytest.fixture(scope="module")
def stack(serving_env, tmp_path_factory):  # noqa: F811
    """Worker, frontend (with an --mcp-config stdio server named "local"), and MCP servers that answer, fail,
    hang; yields (client, urls)."""
    from pyimpl.models import demo_model_path
    config = tmp_path_factory.mktemp("mcp") / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"local": stdio_server_entry()}}))
    with mcp_server("ok") as ok, mcp_server("error") as error, mcp_server("hang") as hang:
        worker = start_worker(serving_env, str(demo_model_path()), "--model-name", "demo")
        frontend, url = start_frontend(serving_env, "--mcp-config", str(config), "--mcp-timeout-s", str(TIMEOUT_S))
        try:
            wait_for_models(url, lambda names: "demo" in names)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
            yield client, {"ok": ok, "error": error, "hang": hang}
        finally:
            frontend.stop()
            worker.stop()


def items(response, kind: str) -> list:
    return [item for item in response.output if item.type == kind]


def test_an_mcp_call_end_to_end(stack):
    client, urls = stack
    r = client.responses.create(**ASK, tools=[mcp_tool(urls["ok"])])
    assert r.status == "completed", r
    assert [item.type for item in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    listed = items(r, "mcp_list_tools")[0]
    assert listed.server_label == "weather" and {t.name for t in listed.tools} == {"get_weather", "search"}
    call = items(r, "mcp_call")[0]
    assert (call.name, json.loads(call.arguments), call.error) == ("get_weather", {"city": "Oslo"}, None)
    assert json.loads(call.output) == {"city": "Oslo", "temperature": 21, "unit": "celsius", "condition": "sunny"}
    assert r.output_text   # the model answered from the result
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0   # both model turns counted
    # the conversation continues without listing again (the tools are in the stored conversation)
    again = client.responses.create(**ASK, tools=[mcp_tool(urls["ok"])], previous_response_id=r.id)
    assert [item.type for item in again.output] == ["mcp_call", "message"]


def test_streamed_mcp_events_in_openai_order(stack):
    client, urls = stack
    events = list(client.responses.create(**ASK, tools=[mcp_tool(urls["ok"], allowed_tools=["get_weather"])],
                                          stream=True))
    check_event_order(events)
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["mcp_list_tools", "mcp_call", "message"]
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert [t.name for t in items(final, "mcp_list_tools")[0].tools] == ["get_weather"]   # allowed_tools
    arguments = "".join(e.delta for e in events if e.type == "response.mcp_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Oslo"} and items(final, "mcp_call")[0].output
    assert client.responses.retrieve(final.id).output_text == final.output_text


@pytest.mark.parametrize("mode", ["error", "hang", "down"])
def test_a_failing_hanging_or_down_server_gives_an_error_item(stack, mode):
    client, urls = stack
    url = urls.get(mode, "http://127.0.0.1:9/mcp")   # port 9 (discard): nothing listens
    start = time.monotonic()
    events = list(client.responses.create(**ASK, tools=[mcp_tool(url)], stream=True))
    elapsed = time.monotonic() - start
    check_event_order(events)
    r = events[-1].response
    assert r.status == "completed" and r.output_text   # the model still answers
    if mode == "down":   # the tools could not be listed: an mcp_list_tools item with the error, no call
        assert "response.mcp_list_tools.failed" in [e.type for e in events]
        listed = items(r, "mcp_list_tools")[0]
        assert listed.error and listed.tools == [] and not items(r, "mcp_call")
        return
    call = items(r, "mcp_call")[0]
    assert call.status == "failed" and call.output is None
    assert "response.mcp_call.failed" in [e.type for e in events]
    error = call.error.model_dump() if hasattr(call.error, "model_dump") else call.error
    if mode == "error":
        assert error["type"] == "mcp_tool_execution_error"
    else:
        assert error["type"] == "mcp_protocol_error" and "did not answer" in error["message"]
        assert TIMEOUT_S <= elapsed < TIMEOUT_S + 20   # the timeout, not a hung request


def test_approval_request_then_response(stack):
    client, urls = stack
    tool = mcp_tool(urls["ok"], require_approval="always")
    events = list(client.responses.create(**ASK, tools=[tool], stream=True))
    check_event_order(events)
    first = events[-1].response
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.name, json.loads(request.arguments)) == ("get_weather", {"city": "Oslo"})
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    second = client.responses.create(model="demo", tools=[tool], previous_response_id=first.id, input=[answer])
    assert [item.type for item in second.output] == ["mcp_call", "message"], second
    call = second.output[0]
    assert call.approval_request_id == request.id and json.loads(call.output)["city"] == "Oslo"
    # refused: nothing runs, the model is told and answers
    refused = client.responses.create(model="demo", tools=[tool], previous_response_id=first.id,
                                      input=[{**answer, "approve": False}])
    assert not items(refused, "mcp_call") and refused.output_text
    with pytest.raises(openai.BadRequestError):   # an answer to no request
        client.responses.create(model="demo", tools=[tool], previous_response_id=first.id,
                                input=[{**answer, "approval_request_id": "mcpr_unknown"}])


def test_a_configured_stdio_server_by_label(stack):
    client, _ = stack
    r = client.responses.create(**ASK, tools=[{"type": "mcp", "server_label": "local", "require_approval": "never"}])
    call = items(r, "mcp_call")[0]
    assert call.server_label == "local" and json.loads(call.output)["condition"] == "sunny"
    with pytest.raises(openai.BadRequestError):   # neither configured nor given a URL
        client.responses.create(**ASK, tools=[{"type": "mcp", "server_label": "nowhere"}])
