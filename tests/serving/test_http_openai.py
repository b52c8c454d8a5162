"""The OpenAI frontend against mock-engine workers, all real processes, driven by the official `openai` client."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from .conftest import start_frontend, start_worker, wait_for_models

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
TOOL_CALL_TEXT = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    """One frontend, one echo (mock) worker with hermes + think parsers, one slow mock worker."""
    frontend, url = start_frontend(serving_env)
    workers = [start_worker(serving_env, tiny_model, "--model-name", "tiny", "--engine", "mock",
                            "--tool-call-parser", "hermes", "--reasoning-parser", "think"),
               start_worker(serving_env, tiny_model, "--model-name", "tiny-slow", "--engine", "mock",
                            "--endpoint", "slow.backend.generate", "--mock-step-delay-s", "0.05")]
    try:
        wait_for_models(url, lambda names: {"tiny", "tiny-slow"} <= set(names))
        yield url
    finally:
        for proc in [*workers, frontend]:
            proc.stop()


@pytest.fixture
def client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0, timeout=30)


def test_chat_non_streaming(client):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5 and r.usage.prompt_tokens > 0


def test_chat_streaming_role_first_and_usage(client):
    chunks = list(client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=6, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


def test_chat_n_and_logprobs(client):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3,
                                       n=2, logprobs=True, top_logprobs=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens == 6
    entries = r.choices[0].logprobs.content
    assert len(entries) == 3 and len(entries[0].top_logprobs) == 2


def test_completion_stop_string_across_tokens(client, tiny_model):
    from pyimpl.llm.text.preprocessor import Preprocessor
    pre = Preprocessor.from_model_dir(tiny_model)
    prompt, stop = "The quick brown fox jumps over the lazy dog", "x jum"
    pieces = [pre.decode([t]) for t in pre.tokenize(prompt)]
    assert not any(stop in p for p in pieces)  # the stop string spans several tokens
    expected = prompt[:prompt.index(stop)]
    r = client.completions.create(model="tiny", prompt=prompt, max_tokens=40, stop=[stop])
    assert r.choices[0].text == expected and r.choices[0].finish_reason == "stop"
    streamed = [c.choices[0].text for c in client.completions.create(
        model="tiny", prompt=prompt, max_tokens=40, stop=[stop], stream=True) if c.choices]
    assert "".join(streamed) == expected


def test_multibyte_characters_stream_intact(client):
    prompt = "日本語のテキスト 🎉🚀 Ünïcödé ✓"
    chunks = [c.choices[0].text for c in client.completions.create(
        model="tiny", prompt=prompt, max_tokens=200, stream=True) if c.choices]
    assert all("\ufffd" not in text for text in chunks)
    assert "".join(chunks) == prompt
    assert len([c for c in chunks if c]) > 1


def test_tool_calls_parsed(client):
    messages = [{"role": "user", "content": TOOL_CALL_TEXT}]
    r = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=500)
    calls = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    stream = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=500, stream=True)
    streamed = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    # issue 13: the first piece has the id and name, the arguments follow in pieces (before: one whole piece)
    assert [tc.function.name for tc in streamed if tc.function.name] == ["get_weather"]
    assert streamed[0].id and {tc.index for tc in streamed} == {0}
    assert json.loads("".join(tc.function.arguments or "" for tc in streamed)) == {"city": "Paris"}
    assert all("<tool_call>{\"name\": \"get_weather\"" not in (m or "") for m in [r.choices[0].message.content])


def test_reasoning_split(client):
    r = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "<think>pondering deeply</think>final answer"}],
        max_tokens=500)
    message = r.choices[0].message
    assert "pondering deeply" in message.model_extra["reasoning_content"]
    assert "final answer" in message.content and "pondering" not in message.content


def test_models_appear_and_disappear(stack, client, serving_env, tiny_model):
    args = ("--model-name", "ephemeral", "--engine", "mock", "--endpoint", "eph.backend.generate")
    first = start_worker(serving_env, tiny_model, *args)
    second = None
    try:
        wait_for_models(stack, lambda names: "ephemeral" in names)
        second = start_worker(serving_env, tiny_model, *args)
        wait_for_instances(stack, "ephemeral", 2)
        first.stop()  # one of two workers leaves: the model stays and keeps answering
        wait_for_instances(stack, "ephemeral", 1)
        for _ in range(4):
            assert client.completions.create(model="ephemeral", prompt="still here", max_tokens=2).choices
        assert "ephemeral" in [m.id for m in client.models.list()]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    wait_for_models(stack, lambda names: "ephemeral" not in names)


def wait_for_instances(base_url: str, model: str, count: int, timeout: float = 30.0) -> None:
    """Poll /health until the frontend routes `model` to `count` worker instances."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base_url}/health", timeout=30).json()["instances"].get(model) != count:
        assert time.monotonic() < deadline, f"{model} never had {count} instance(s)"
        time.sleep(0.05)


def test_invalid_request_400_names_field(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], temperature=7)
    assert err.value.status_code == 400 and err.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "robot", "content": "hi"}])
    assert err.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny", prompt="x", max_tokens=0)
    assert err.value.body["param"] == "max_tokens"


def test_unknown_model_404(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and err.value.body["code"] == "model_not_found"


async def test_no_worker_503(stack, serving_env, tiny_model):
    from pyimpl.llm.model_card import ModelCard, card_key
    from pyimpl.runtime import DistributedRuntime
    rt = await DistributedRuntime.create(discovery_backend="file", request_plane="tcp",
                                         file_kv_dir=serving_env["DYN_FILE_KV"])
    try:
        card = ModelCard(name="ghost", model_path=tiny_model, endpoint="ghost.backend.generate")
        await rt.discovery.put(card_key("ghost", rt.instance_id), card.to_dict())
        async with httpx.AsyncClient(base_url=stack, timeout=30) as http:
            for _ in range(300):   # 404 until the frontend has seen the card; then 503: known, but no live worker
                r = await http.post("/v1/chat/completions", json={"model": "ghost",
                                                                  "messages": [{"role": "user", "content": "hi"}]})
                if r.status_code != 404:
                    break
                await asyncio.sleep(0.05)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
            assert "ghost" not in [m["id"] for m in (await http.get("/v1/models")).json()["data"]]  # cannot serve
    finally:
        await rt.shutdown()


class WorkerStats:
    """Reads a worker's `stats` endpoint (engine figures, abort_count included) over the runtime."""

    def __init__(self, serving_env: dict, endpoint: str):
        self.env, self.endpoint = serving_env, endpoint

    async def __aenter__(self) -> "WorkerStats":
        from pyimpl.runtime import DistributedRuntime
        self.rt = await DistributedRuntime.create(discovery_backend="file", request_plane="tcp",
                                                  file_kv_dir=self.env["DYN_FILE_KV"])
        self.client = await self.rt.endpoint(self.endpoint).client()
        await self.client.wait_for_instances(30)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.rt.shutdown()

    async def aborts(self) -> int:
        stream = await self.client.generate({})
        return [item.data() async for item in stream][0]["abort_count"]

    async def wait_for_aborts(self, expected: int, timeout: float = 60.0) -> int:
        """Poll until abort_count reaches `expected` (the cancel travels frontend -> worker -> engine)."""
        deadline = asyncio.get_running_loop().time() + timeout
        aborts = await self.aborts()
        while aborts < expected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            aborts = await self.aborts()
        return aborts


async def stream_one_chunk_then_disconnect(base_url: str, body: dict) -> None:
    """Open a streaming request, read the first data event, and drop the connection."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        async with http.stream("POST", "/v1/completions", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    break


async def test_client_disconnect_cancels_engine_request(stack, serving_env):
    async with WorkerStats(serving_env, "slow.backend.stats") as stats:
        before = await stats.aborts()
        await stream_one_chunk_then_disconnect(stack, {"model": "tiny-slow", "prompt": "count forever",
                                                       "max_tokens": 2000, "ignore_eos": True, "stream": True})
        assert await stats.wait_for_aborts(before + 1) == before + 1


def test_health_live_metrics_openapi(stack, client):
    client.completions.create(model="tiny", prompt="metrics please", max_tokens=3)
    assert httpx.get(f"{stack}/live").status_code == 200
    health = httpx.get(f"{stack}/health").json()
    assert health["status"] == "healthy" and "tiny" in health["models"]
    metrics = httpx.get(f"{stack}/metrics").text
    for name in ("dynamo_frontend_requests_total", "dynamo_frontend_inflight_requests",
                 "dynamo_frontend_time_to_first_token_seconds", "dynamo_frontend_inter_token_latency_seconds",
                 "dynamo_frontend_request_duration_seconds", "dynamo_frontend_input_sequence_tokens",
                 "dynamo_frontend_output_sequence_tokens"):
        assert name in metrics
    assert 'endpoint="/v1/completions"' in metrics and 'status="success"' in metrics
    spec = httpx.get(f"{stack}/openapi.json").json()
    assert "/v1/chat/completions" in spec["paths"]


def test_error_after_streaming_began_is_an_sse_error_event(stack, serving_env, tiny_model):
    worker = start_worker(serving_env, tiny_model, "--model-name", "doomed", "--engine", "mock",
                          "--endpoint", "doomed.backend.generate", "--mock-step-delay-s", "0.05")
    try:
        wait_for_models(stack, lambda names: "doomed" in names)
        with httpx.stream("POST", f"{stack}/v1/completions", timeout=30, json={
                "model": "doomed", "prompt": "go", "max_tokens": 2000, "ignore_eos": True, "stream": True}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: {"):
                    worker.kill()
                    break
            rest = list(lines)
    finally:
        worker.kill()
    assert "event: error" in rest
    error = json.loads(next(line for line in rest if line.startswith("data: {\"error\""))[6:])
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert rest[-1] == "data: [DONE]" or rest[-2] == "data: [DONE]"


def test_worker_sigterm_drains_streams_in_flight(stack, serving_env, tiny_model):
    import signal
    worker = start_worker(serving_env, tiny_model, "--model-name", "draining", "--engine", "mock",
                          "--endpoint", "drain.backend.generate", "--mock-step-delay-s", "0.05")
    try:
        wait_for_models(stack, lambda names: "draining" in names)
        with httpx.stream("POST", f"{stack}/v1/completions", timeout=30, json={
                "model": "draining", "prompt": "go", "max_tokens": 20, "ignore_eos": True, "stream": True}) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: {"):
                    worker.popen.send_signal(signal.SIGTERM)  # mid-stream: the worker withdraws, then drains
                    break
            rest = [line for line in lines if line]
        assert worker.popen.wait(30) == 0
    finally:
        worker.stop()
    assert "event: error" not in rest and rest[-1] == "data: [DONE]"
    assert json.loads(rest[-2][6:])["choices"][0]["finish_reason"] == "length"
    wait_for_models(stack, lambda names: "draining" not in names)
