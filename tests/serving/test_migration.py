"""Request migration (issue 11): two workers in real processes, 8 streams, one worker SIGKILLed mid-stream.

With migration (the default limit) every stream completes with exactly the text of an unbroken run and
dynamo_frontend_model_migration_total counts the moved streams; with --migration-limit 0 the streams of the killed
worker fail with an error event, as before. Over tcp (file discovery) and over nats (discovery and plane)."""
from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest

from pyimpl.bench.chaos_client import classify, prompt_ids, stream_completion

from .conftest import Proc, start_frontend, wait_for_models

MAX_TOKENS = 60
STEP_S = "0.03"       # a stream lasts ~1.8 s: long enough to be cut in the middle


def start_worker(env: dict, model: str) -> Proc:
    return Proc(["-m", "pyimpl.bench.chaos_worker", "--model", model, "--model-name", "chaos",
                 "--step-delay-s", STEP_S], env, "worker ready")


@pytest.fixture(scope="module", params=["tcp", "nats"])
def deployment(request, serving_env, tiny_model):
    """Two chaos workers, a frontend with the default migration limit and one with --migration-limit 0."""
    env = dict(serving_env, DYN_DISCOVERY_TTL="2")
    if request.param == "nats":
        env.update(DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats",
                   NATS_SERVER=request.getfixturevalue("nats_server"), DYN_NATS_KV_BUCKET=f"mig{uuid.uuid4().hex[:8]}")
    env.pop("DYN_MIGRATION_LIMIT", None)
    workers = [start_worker(env, tiny_model) for _ in range(2)]
    (migrating, url), (plain, plain_url) = start_frontend(env), start_frontend(env, "--migration-limit", "0")
    state = {"env": env, "model": tiny_model, "workers": workers, "url": url, "plain_url": plain_url}
    try:
        for base in (url, plain_url):
            wait_for_models(base, lambda names: "chaos" in names)
        yield state
    finally:
        for proc in [*state["workers"], migrating, plain]:
            proc.stop()


async def streams_with_a_kill(base_url: str, worker: Proc, count: int = 8):
    """`count` concurrent streams; SIGKILL `worker` once every stream has 3 chunks; their results."""
    progress = [0] * count
    async with httpx.AsyncClient(timeout=30) as http:
        tasks = [asyncio.create_task(stream_completion(http, base_url, prompt_ids(i), MAX_TOKENS, progress, i))
                 for i in range(count)]
        deadline = time.monotonic() + 20
        while min(progress) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert min(progress) >= 3, progress
        os.kill(worker.popen.pid, 9)
        return await asyncio.gather(*tasks)


async def unbroken(base_url: str, count: int = 8) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as http:
        results = await asyncio.gather(*(stream_completion(http, base_url, prompt_ids(i), MAX_TOKENS)
                                         for i in range(count)))
    assert all(r.finished for r in results), results
    return [r.text for r in results]


def migrations(base_url: str) -> dict[str, float]:
    """dynamo_frontend_model_migration_total by migration_type."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("dynamo_frontend_model_migration_total{"):
            kind = line.split('migration_type="', 1)[1].split('"', 1)[0]
            counts[kind] = counts.get(kind, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def replace_killed_worker(state: dict) -> None:
    state["workers"][0].stop()
    state["workers"][0] = start_worker(state["env"], state["model"])
    time.sleep(3)      # the killed instance's discovery record expires (TTL 2 s): both live workers get traffic


def test_sigkill_mid_stream_every_stream_continues_exactly(deployment):
    url = deployment["url"]
    expected = asyncio.run(unbroken(url))
    assert len(set(expected)) == 8 and all(expected)
    results = asyncio.run(streams_with_a_kill(url, deployment["workers"][0]))
    verdicts = [classify(r, e) for r, e in zip(results, expected)]
    assert verdicts == ["ok"] * 8, [(v, r) for v, r in zip(verdicts, results) if v != "ok"]
    counted = migrations(url)
    assert counted.get("ongoing_request") == 4, counted   # round robin: half the streams were on the killed worker
    replace_killed_worker(deployment)


def test_migration_limit_zero_fails_the_broken_streams(deployment):
    url = deployment["plain_url"]
    expected = asyncio.run(unbroken(url))
    results = asyncio.run(streams_with_a_kill(url, deployment["workers"][0]))
    verdicts = [classify(r, e) for r, e in zip(results, expected)]
    assert sorted(verdicts) == ["failed"] * 4 + ["ok"] * 4, list(zip(verdicts, results))
    assert all(0 < r.chunks < MAX_TOKENS for r, v in zip(results, verdicts) if v == "failed")
    assert migrations(url) == {}
    replace_killed_worker(deployment)
