"""examples/python/pipeline: frontend -> processor -> engine over NATS, each a process, real torch engine.
Restarting the processor leaves the frontend and the engine running and serving."""
from __future__ import annotations

import time

import httpx
import pytest

from .conftest import REPO, Proc, free_port

PIPELINE = REPO / "examples" / "python" / "pipeline"


def example(script: str, env: dict, marker: str, *args: str) -> Proc:
    return Proc([str(PIPELINE / script), *args], env, marker, timeout=90)


def wait_for_processors(url: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/health", timeout=10).json()["processors"] == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"frontend never saw {count} processor(s)")


def chat(url: str) -> dict:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": "tiny", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 6, "ignore_eos": True})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def pipeline_env(nats_server, serving_env):
    env = dict(serving_env, DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats", NATS_SERVER=nats_server,
               DYN_NATS_KV_BUCKET=f"pipeline{free_port()}", PYTHONUNBUFFERED="1")
    return env


def test_pipeline_survives_processor_restart(pipeline_env, tiny_model):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    engine = example("engine.py", pipeline_env, "engine ready", "--model-path", tiny_model)
    processor = frontend = None
    try:
        processor = example("processor.py", pipeline_env, "processor ready", "--model", tiny_model)
        frontend = example("frontend.py", pipeline_env, "frontend ready", "--port", str(port))
        wait_for_processors(url, 1)
        first = chat(url)
        assert first["usage"]["completion_tokens"] == 6 and first["choices"][0]["finish_reason"] == "length"

        processor.stop()
        wait_for_processors(url, 0)
        processor = example("processor.py", pipeline_env, "processor ready", "--model", tiny_model)
        wait_for_processors(url, 1)

        assert engine.popen.poll() is None and frontend.popen.poll() is None
        second = chat(url)
        assert second["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]  # greedy
    finally:
        for proc in (frontend, processor, engine):
            if proc is not None:
                proc.stop()


def test_frontend_learns_at_once_that_a_killed_processor_is_gone(pipeline_env, tiny_model):
    """SIGKILL leaves the processor's discovery key for a TTL (10 s); the frontend's client drops it on the first
    request that finds nobody there (issue 11: 251 NoInstancesError in the frontend log over one restart)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    engine = example("engine.py", pipeline_env, "engine ready", "--model-path", tiny_model)
    processor = frontend = None
    try:
        processor = example("processor.py", pipeline_env, "processor ready", "--model", tiny_model)
        frontend = example("frontend.py", pipeline_env, "frontend ready", "--port", str(port))
        wait_for_processors(url, 1)
        chat(url)

        processor.kill()
        killed = time.monotonic()
        lost = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
            "model": "tiny", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 6})
        assert lost.status_code == 500                          # the one request sent to the dead instance
        assert httpx.get(f"{url}/health", timeout=10).json()["processors"] == 0
        assert time.monotonic() - killed < 5.0                  # well before its key's 10 s TTL runs out

        processor = example("processor.py", pipeline_env, "processor ready", "--model", tiny_model)
        wait_for_processors(url, 1)
        assert chat(url)["usage"]["completion_tokens"] == 6
    finally:
        for proc in (frontend, processor, engine):
            if proc is not None:
                proc.stop()
