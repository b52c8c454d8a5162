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


def test_logit_bias_forces_and_bans_tokens(stack, tiny_model):
    """logit_bias reaches the engine (issue 11: it was silently ignored): +100 makes a token win every step,
    -100 bans it, even the token greedy decoding picks without a bias."""
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    hello = tokenizer.encode(" hello", add_special_tokens=False)[0]
    client = openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0, timeout=60)

    def complete(prompt, bias: dict, max_tokens: int = 6) -> str:
        return client.completions.create(model="tiny-torch", prompt=prompt, max_tokens=max_tokens, temperature=0,
                                         logit_bias=bias, extra_body={"ignore_eos": True}).choices[0].text

    assert complete([300, 301, 302], {str(hello): 100}) == tokenizer.decode([hello] * 6)
    banned = 0
    for start in range(300, 340):                      # prompts whose greedy first token is one whole token
        first = complete([start, start + 1], {}, 1)
        ids = tokenizer.encode(first, add_special_tokens=False)
        if len(ids) != 1 or tokenizer.decode(ids) != first:
            continue
        assert complete([start, start + 1], {str(ids[0]): -100}, 1) != first
        banned += 1
        if banned == 3:
            break
    assert banned == 3
    with pytest.raises(openai.BadRequestError) as err:       # token ids must be the model's
        complete([300], {"999999": 5})
    assert err.value.body["param"] == "logit_bias"
