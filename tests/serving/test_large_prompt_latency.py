"""A 4 MB prompt does not stall other clients (issue 11: tokenizing 2-4 MB on the event loop stalled every
stream for 5-9 s, /health took 8.8 s, and another client's stream died of the 5 s keepalive)."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from .conftest import frontend_with_worker

MAX_STALL_S = 0.1
STEP_S = 0.02


@pytest.fixture(scope="module")
def stack(serving_env, tiny_model):
    with frontend_with_worker(serving_env, tiny_model, "steady", "--engine", "mock",
                              "--mock-step-delay-s", str(STEP_S)) as url:
        yield url


async def _stream_gaps(http: httpx.AsyncClient, started: asyncio.Event) -> list[tuple[float, float]]:
    """(arrival time, gap since the previous chunk) for each chunk of a long stream."""
    body = {"model": "steady", "prompt": "tick", "max_tokens": 150, "ignore_eos": True, "stream": True}
    arrivals = []
    async with http.stream("POST", "/v1/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.perf_counter())
                if len(arrivals) == 5:
                    started.set()
    return [(t, t - prev) for prev, t in zip(arrivals, arrivals[1:])]


@pytest.mark.parametrize("path, make_body", [
    ("/v1/chat/completions", lambda text: {"model": "steady", "messages": [{"role": "user", "content": text}]}),
    ("/v1/completions", lambda text: {"model": "steady", "prompt": text}),
])
async def test_a_4mb_prompt_delays_other_streams_by_at_most_100ms(stack, path, make_body):
    text = "lorem ipsum dolor sit amet " * (4 * 1024 * 1024 // 27)        # 4 MB
    payload = json.dumps(make_body(text)).encode()
    async with httpx.AsyncClient(base_url=stack, timeout=60) as http:
        started = asyncio.Event()
        stream = asyncio.create_task(_stream_gaps(http, started))
        await started.wait()
        sent = time.perf_counter()
        big = await http.post(path, content=payload, headers={"content-type": "application/json"})
        answered = time.perf_counter()
        health_s = time.perf_counter()
        assert (await http.get("/health")).status_code == 200
        health_s = time.perf_counter() - health_s
        gaps = await stream
    assert big.status_code == 400 and "context" in big.json()["error"]["message"]   # far over the tiny context
    during = [gap for t, gap in gaps if sent <= t <= answered + MAX_STALL_S]
    assert during, "the big request was answered before the stream's next chunk: nothing measured"
    assert max(during) - STEP_S <= MAX_STALL_S, f"worst gap {max(during):.3f}s while the 4 MB prompt was handled"
    assert health_s < 1.0
