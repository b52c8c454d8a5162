"""Frontend options over real processes: API key (401), body limit (413), model aliases, SSE keep-alive."""
from __future__ import annotations

import json

import httpx
import openai
import pytest

from .conftest import start_frontend, start_worker, wait_for_models

API_KEY = "sekret"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model, tmp_path_factory):
    aliases = tmp_path_factory.mktemp("aliases") / "aliases.yaml"
    aliases.write_text("tiny-short:\n  model: tiny\n  params:\n    max_tokens: 3\n    temperature: 0\n")
    frontend, url = start_frontend(serving_env, "--api-key", API_KEY, "--max-body-bytes", "4096",
                                   "--keepalive-s", "0.2", "--model-aliases", str(aliases))
    workers = [start_worker(serving_env, tiny_model, "--model-name", "tiny", "--engine", "mock"),
               start_worker(serving_env, tiny_model, "--model-name", "tiny-slow", "--engine", "mock",
                            "--endpoint", "slow.backend.generate", "--mock-step-delay-s", "0.6")]
    try:
        wait_for_models(url, lambda names: {"tiny", "tiny-slow", "tiny-short"} <= set(names), headers=AUTH)
        yield url
    finally:
        for proc in [*workers, frontend]:
            proc.stop()


def test_api_key_required(stack):
    bad = openai.OpenAI(base_url=f"{stack}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert httpx.get(f"{stack}/v1/models").status_code == 401
    good = openai.OpenAI(base_url=f"{stack}/v1", api_key=API_KEY, max_retries=0)
    assert good.completions.create(model="tiny", prompt="hello", max_tokens=2).usage.completion_tokens == 2


def test_body_too_large_413(stack):
    r = httpx.post(f"{stack}/v1/completions", headers=AUTH,
                   json={"model": "tiny", "prompt": "x" * 10_000, "max_tokens": 2})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_alias_resolves_with_default_params(stack):
    client = openai.OpenAI(base_url=f"{stack}/v1", api_key=API_KEY, max_retries=0)
    r = client.completions.create(model="tiny-short", prompt="a fairly long prompt to echo back")
    assert r.usage.completion_tokens == 3 and r.model == "tiny"
    r = client.completions.create(model="tiny-short", prompt="a fairly long prompt to echo back", max_tokens=5)
    assert r.usage.completion_tokens == 5  # the user's value wins over the alias default


def test_keepalive_comments_on_idle_stream(stack):
    body = {"model": "tiny-slow", "prompt": "slow", "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{stack}/v1/completions", headers=AUTH, json=body, timeout=30) as r:
        lines = [line for line in r.iter_lines() if line]
    assert ": keep-alive" in lines
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert data[-1]["choices"][0]["finish_reason"] == "length"
    assert lines[-1] == "data: [DONE]"
