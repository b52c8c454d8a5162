"""/v1/completions with `echo` and `logprobs` (issue 11), through real processes and the official `openai` client:
the prompt's tokens come first in `logprobs` (the first one's logprob and top_logprobs null), `text_offset` points
each token into the returned text, unary and streamed agree, `max_tokens: 0` scores the prompt alone; the torch
worker's prompt logprobs are the model's (a plain transformers forward of the same tiny model)."""
from __future__ import annotations

import openai
import pytest
import torch

from .conftest import start_frontend, start_worker, wait_for_models

PROMPT = "The quick brown fox, héllo wörld"


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    frontend, url = start_frontend(serving_env)
    workers = [start_worker(serving_env, tiny_model, "--model-name", "tiny", "--engine", "mock"),
               start_worker(serving_env, tiny_model, "--model-name", "tiny-torch", "--engine", "torch",
                            "--endpoint", "torch.backend.generate")]
    try:
        wait_for_models(url, lambda names: {"tiny", "tiny-torch"} <= set(names))
        yield url
    finally:
        for proc in [*workers, frontend]:
            proc.stop()


@pytest.fixture(scope="module")
def client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def prompt_ids(tiny_model) -> list[int]:
    from pyimpl.llm.text.preprocessor import Preprocessor
    return Preprocessor.from_model_dir(tiny_model).tokenize(PROMPT, True)


def check_offsets(text: str, lp) -> None:
    """What a client relies on: each token's text sits at its offset in the choice's text."""
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert lp.text_offset == sorted(lp.text_offset)
    for token, offset in zip(lp.tokens, lp.text_offset):
        assert text[offset:offset + len(token)] == token, (token, offset, text)


def test_unary_echo_with_logprobs(client, prompt_ids):
    r = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=4, echo=True, logprobs=2)
    choice, n = r.choices[0], len(prompt_ids)
    lp = choice.logprobs
    assert choice.text.startswith(PROMPT) and len(choice.text) > len(PROMPT)
    assert len(lp.tokens) == n + 4 and r.usage.completion_tokens == 4 and r.usage.prompt_tokens == n
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert lp.token_logprobs[1:n] == [-1.0 - (i % 4) / 4 for i in range(1, n)]    # the mock's prompt values
    assert lp.token_logprobs[n:] == [-0.5] * 4 and all(1 <= len(top) <= 2 for top in lp.top_logprobs[1:])
    assert lp.text_offset[n] == len(PROMPT)            # the generated text starts right after the prompt
    check_offsets(choice.text, lp)


def test_streamed_echo_with_logprobs_matches_unary(client):
    args = dict(model="tiny", prompt=PROMPT, max_tokens=5, echo=True, logprobs=1)
    whole = client.completions.create(**args).choices[0]
    text, fields = "", {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in client.completions.create(stream=True, **args):
        for c in chunk.choices:
            text += c.text
            for key in fields:
                fields[key] += getattr(c.logprobs, key) if c.logprobs else []
    assert text == whole.text
    assert fields == {key: getattr(whole.logprobs, key) for key in fields}


def test_token_id_prompt_is_echoed_decoded(client, prompt_ids):
    r = client.completions.create(model="tiny", prompt=prompt_ids, max_tokens=2, echo=True, logprobs=0)
    assert r.choices[0].text.startswith(PROMPT)
    assert len(r.choices[0].logprobs.tokens) == len(prompt_ids) + 2
    check_offsets(r.choices[0].text, r.choices[0].logprobs)


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_zero_scores_the_prompt_only(client, prompt_ids, stream):
    args = dict(model="tiny", prompt=PROMPT, max_tokens=0, echo=True, logprobs=1)
    if stream:
        chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **args))
        choices = [c for chunk in chunks for c in chunk.choices]
        text = "".join(c.text for c in choices)
        tokens = [t for c in choices if c.logprobs for t in c.logprobs.tokens]
        finish, usage = [c.finish_reason for c in choices if c.finish_reason], chunks[-1].usage
    else:
        r = client.completions.create(**args)
        text, tokens, finish, usage = (r.choices[0].text, r.choices[0].logprobs.tokens, [r.choices[0].finish_reason],
                                       r.usage)
        check_offsets(text, r.choices[0].logprobs)
    assert text == PROMPT and len(tokens) == len(prompt_ids)
    assert finish == ["length"] and usage.completion_tokens == 0


def test_max_tokens_zero_without_echo_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny", prompt=PROMPT, max_tokens=0)
    assert err.value.body["param"] == "max_tokens"


def test_torch_worker_prompt_logprobs_are_the_models(client, tiny_model, prompt_ids):
    from transformers import AutoModelForCausalLM
    r = client.completions.create(model="tiny-torch", prompt=PROMPT, max_tokens=0, echo=True, logprobs=3)
    lp = r.choices[0].logprobs
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    with torch.inference_mode():
        ref = torch.log_softmax(model(input_ids=torch.tensor([prompt_ids])).logits[0].float(), dim=-1)
    expected = [ref[q, prompt_ids[q + 1]].item() for q in range(len(prompt_ids) - 1)]
    assert lp.token_logprobs[0] is None
    assert lp.token_logprobs[1:] == pytest.approx(expected, abs=2e-2)   # the worker may run in bfloat16
    assert all(len(top) <= 3 for top in lp.top_logprobs[1:])
    check_offsets(r.choices[0].text, lp)
