"""The frontend with a real torch-engine worker (tiny random model): generation and disconnect -> engine abort."""
from __future__ import annotations

import openai
import pytest

from .conftest import start_frontend, start_worker, wait_for_models
from .test_http_openai import WorkerStats, stream_one_chunk_then_disconnect


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    frontend, url = start_frontend(serving_env)
    worker = start_worker(serving_env, tiny_model, "--model-name", "tiny-torch", "--engine", "torch",
                          "--endpoint", "torch.backend.generate")
    try:
        wait_for_models(url, lambda names: "tiny-torch" in names)
        yield url
    finally:
        worker.stop()
        frontend.stop()


def test_chat_with_real_engine(stack):
    client = openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": "Hello there"}]
    whole = client.chat.completions.create(model="tiny-torch", messages=messages, max_tokens=8, temperature=0,
                                           extra_body={"ignore_eos": True})
    assert whole.usage.completion_tokens == 8 and whole.choices[0].finish_reason == "length"
    chunks = list(client.chat.completions.create(model="tiny-torch", messages=messages, max_tokens=8, temperature=0,
                                                 stream=True, extra_body={"ignore_eos": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content  # greedy: same text streamed or not


async def test_disconnect_aborts_in_engine(stack, serving_env):
    async with WorkerStats(serving_env, "torch.backend.stats") as stats:
        before = await stats.aborts()
        await stream_one_chunk_then_disconnect(stack, {"model": "tiny-torch", "prompt": "go on", "max_tokens": 1500,
                                                       "ignore_eos": True, "stream": True})
        assert await stats.wait_for_aborts(before + 1) == before + 1
