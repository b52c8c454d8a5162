"""A C engine (examples/c/engine.c) serves a model through the HTTP frontend like any worker: two engine
processes and a frontend with `--router-mode kv` on one file/tcp deployment. The engines publish their KV
events with Dynamo's C functions, so a repeated prefix goes back to the engine that cached it; an HTTP client
that disconnects reaches the engine's dynamo_responder_is_cancelled."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import serving_env, start_frontend, tiny_model, wait_for_models, wait_kv_indexed  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "build" / "examples" / "engine"
pytestmark = pytest.mark.skipif(not ENGINE.exists(), reason="the C examples are not built (scripts/setup.sh)")


class EngineProc:
    """An examples/c/engine process; its output lines are collected as they come."""

    def __init__(self, env: dict, model: str, *extra: str):
        self.popen = subprocess.Popen([str(ENGINE), model, "--name", "tiny", *extra], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("engine ready", 60)

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)

    def wait_for(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(marker in line for line in self.lines):
                return True
            if self.popen.poll() is not None and not any(marker in line for line in self.lines):
                break
            time.sleep(0.05)
        return any(marker in line for line in self.lines)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture(scope="module")
def c_deployment(serving_env, tiny_model):  # noqa: F811
    engines = []
    frontend = None
    try:
        engines = [EngineProc(serving_env, tiny_model, "--token-delay-ms", "5") for _ in range(2)]
        assert all(e.popen.poll() is None for e in engines), [e.lines for e in engines]
        frontend, url = start_frontend(serving_env, "--router-mode", "kv")
        wait_for_models(url, lambda names: "tiny" in names)
        time.sleep(1.0)  # the frontend's event-plane subscriber connects to both engines' publishers
        yield url, engines
    finally:
        if frontend is not None:
            frontend.stop()
        for engine in engines:
            engine.stop()


def chat(url: str, content: str, **extra) -> dict:
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": 4,
            "nvext": {"extra_fields": ["worker_id"]}, **extra}
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_c_engine_serves_http_and_kv_routing_sends_a_repeated_prefix_back(c_deployment):
    url, _ = c_deployment
    prefixes = [f"Conversation {i}: " + " ".join(f"fact-{i}-{k}" for k in range(40)) for i in range(3)]
    first = {}
    for i, prefix in enumerate(prefixes):
        reply = chat(url, prefix + " question 0")
        assert reply["choices"][0]["message"]["content"] and reply["choices"][0]["finish_reason"] == "length"
        first[i] = reply["nvext"]["worker_id"]
    wait_kv_indexed(url, "tiny", set(first.values()))  # the engines' stored events reach the router
    for round_ in range(1, 4):
        for i, prefix in enumerate(prefixes):
            assert chat(url, prefix + f" question {round_}")["nvext"]["worker_id"] == first[i], (i, round_)
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    hit = [line for line in metrics.splitlines() if line.startswith("dynamo_frontend_kv_hit_rate_sum")]
    assert hit and float(hit[0].split()[-1]) > 0, hit


def test_http_client_disconnect_reaches_the_c_engine_is_cancelled(c_deployment):
    url, engines = c_deployment
    body = {"model": "tiny", "messages": [{"role": "user", "content": "stream a long answer"}], "max_tokens": 2000,
            "stream": True}
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            chunks = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    json.loads(line[6:])
                    chunks += 1
                    if chunks == 5:
                        break  # the client goes away mid-stream
    assert any(e.wait_for("request cancelled by its client", 15) for e in engines), [e.lines for e in engines]
