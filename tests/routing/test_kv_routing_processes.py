"""KV routing across processes (file discovery, tcp request plane, zmq event plane): the HTTP frontend with
--router-mode kv keeps a prefix on one mock worker, reports nvext.worker_id and the KV metrics; a worker SIGKILLed
mid-run vanishes from a router's index once its discovery lease runs out, and no request is lost."""
from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.routing import RouterSettings
from pyimpl.runtime import DistributedRuntime
from tests.serving.conftest import start_frontend, start_worker, wait_kv_indexed

PREFIX = list(range(100, 196))                   # 6 blocks of 16


@pytest.fixture
def env(tmp_path) -> dict:
    from tests.serving.conftest import REPO
    env = dict(os.environ)
    env.update(DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp", DYN_FILE_KV=str(tmp_path / "kv"),
               DYN_DISCOVERY_TTL="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    env.pop("DYN_EVENT_PLANE", None)
    return env


def completion(base: str, prompt: list[int]) -> dict:
    r = httpx.post(f"{base}/v1/completions", json={"model": "tiny", "prompt": prompt, "max_tokens": 2,
                                                    "nvext": {"extra_fields": ["worker_id"]}}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_http_frontend_routes_by_kv_events(env, tiny_model):
    workers = [start_worker(env, tiny_model, "--model-name", "tiny", "--engine", "mock") for _ in range(2)]
    frontend, base = start_frontend(env, "--router-mode", "kv")
    try:
        httpx.get(f"{base}/v1/models", timeout=10)
        first = completion(base, PREFIX + [1, 2])["nvext"]["worker_id"]
        wait_kv_indexed(base, "tiny", [first], min_blocks=6)   # its stored events reach the frontend
        served = [completion(base, PREFIX + [3 + i])["nvext"]["worker_id"] for i in range(6)]
        assert served == [first] * 6               # the prefix stays where it is cached
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'dynamo_frontend_kv_hit_rate_count{model="tiny"} 7.0' in metrics
        assert "dynamo_frontend_cached_tokens_sum" in metrics
        streamed = httpx.post(f"{base}/v1/completions", json={
            "model": "tiny", "prompt": PREFIX, "max_tokens": 3, "stream": True,
            "nvext": {"extra_fields": ["worker_id"], "backend_instance_id": first}}, timeout=30)
        data = [line for line in streamed.text.splitlines() if line.startswith("data: {")]
        assert f'"worker_id":{first}' in data[-1].replace(" ", "")
    finally:
        frontend.stop()
        for worker in workers:
            worker.stop()


async def test_a_sigkilled_worker_vanishes_from_the_index(env, tiny_model, monkeypatch):
    for name in ("DYN_DISCOVERY_BACKEND", "DYN_REQUEST_PLANE", "DYN_FILE_KV", "DYN_DISCOVERY_TTL"):
        monkeypatch.setenv(name, env[name])
    workers = [start_worker(env, tiny_model, "--model-name", "tiny", "--engine", "mock") for _ in range(2)]
    rt = await DistributedRuntime.create()
    manager = ModelManager(rt, no_worker_wait_s=5.0, router=RouterSettings(mode="kv"))
    try:
        await manager.start()
        await manager.wait_for_model("tiny", timeout=30)
        entry = manager.models["tiny"]
        while len(entry.client.instance_ids()) < 2:
            await asyncio.sleep(0.05)
        kv = entry.router.kv
        bodies = await asyncio.gather(*(manager.completion({   # in flight together: one prefix per worker
            "model": "tiny", "prompt": [400 + i] * 64, "max_tokens": 2, "nvext": {"extra_fields": ["worker_id"]}})
            for i in range(2)))
        owners = {body["nvext"]["worker_id"] for body in bodies}
        for _ in range(200):
            if all(kv.indexer.num_blocks(w) for w in owners):
                break
            await asyncio.sleep(0.05)
        assert len(owners) == 2 and all(kv.indexer.num_blocks(w) == 4 for w in owners)
        workers[0].kill()       # mid-run: its blocks are indexed, its lease still held
        for _ in range(200):
            if len(entry.client.instance_ids()) == 1:
                break
            await asyncio.sleep(0.05)
        gone = set(owners) - set(entry.client.instance_ids())
        assert len(gone) == 1
        await asyncio.sleep(0.1)
        assert all(g not in kv.indexer.worker_ids() for g in gone)
        for i in range(2):      # nothing lost: both prefixes are served by the survivor
            await manager.completion({"model": "tiny", "prompt": [400 + i] * 64, "max_tokens": 2})
    finally:
        await manager.stop()
        await rt.shutdown()
        for worker in workers:
            worker.stop()
