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
    env = dict(serving_env, DYN_DISCOVERY_TTL="2", DYN_GRACE_PERIOD="0.3")   # SIGTERM: 0.3 s to drain, then cut
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


async def streams_with_a_kill(base_url: str, worker: Proc, count: int = 8, sig: int = 9):
    """`count` concurrent streams; signal `worker` (SIGKILL) once every stream has 3 chunks; their results."""
    progress = [0] * count
    async with httpx.AsyncClient(timeout=30) as http:
        tasks = [asyncio.create_task(stream_completion(http, base_url, prompt_ids(i), MAX_TOKENS, progress, i))
                 for i in range(count)]
        deadline = time.monotonic() + 20
        while min(progress) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert min(progress) >= 3, progress
        os.kill(worker.popen.pid, sig)
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


def test_worker_shutdown_cutting_streams_migrates_them(deployment):
    """SIGTERM: the worker withdraws, drains for its grace period, then cuts what is left: those streams move."""
    url = deployment["url"]
    before = migrations(url).get("ongoing_request", 0)
    expected = asyncio.run(unbroken(url))
    results = asyncio.run(streams_with_a_kill(url, deployment["workers"][0], sig=15))
    assert [classify(r, e) for r, e in zip(results, expected)] == ["ok"] * 8, results
    assert migrations(url).get("ongoing_request", 0) - before == 4
    replace_killed_worker(deployment)


# ---- the stream wrapper alone (no processes): what is re-sent, when, and what is never migrated ----------------

class FakeStream:
    """A runtime response stream that yields `chunks`, then raises `error` (None: ends normally)."""

    def __init__(self, chunks: list[dict], error: BaseException | None = None):
        self.chunks, self.error, self.closed = list(chunks), error, False

    def __aiter__(self):
        return self

    async def __anext__(self) -> dict:
        if self.chunks:
            return self.chunks.pop(0)
        if self.error is not None:
            raise self.error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def tokens(*ids: int, finish: str | None = None) -> dict:
    return {"token_ids": list(ids), "finish_reason": finish}


class FakeInstances:
    """An opener over scripted streams, one per open; records each re-sent request and the excluded instances."""

    def __init__(self, *streams: FakeStream):
        self.streams, self.opened = list(streams), []

    async def __call__(self, wire: dict, exclude: frozenset):
        from pyimpl.runtime.errors import NoInstancesError
        if not self.streams:
            raise NoInstancesError("none left")
        self.opened.append((wire, exclude))
        return 100 + len(self.opened), self.streams.pop(0)


WIRE = {"token_ids": [1, 2, 3], "stop_conditions": {"max_tokens": 5, "min_tokens": 4}, "sampling_options": {}}


async def drain(stream) -> list[dict]:
    """The chunks of stream.pairs(); a failure is re-raised as the runtime's own error (pairs() maps it to the
    serving layer's typed error, keeping the runtime's as its cause: test_pairs_map_runtime_errors_once)."""
    try:
        return [chunk async for _, chunk in stream.pairs()]
    except Exception as exc:
        raise exc.__cause__ or exc


def run_migrating(instances: FakeInstances, limit: int = 3):
    from pyimpl.llm.frontend.migration import open_migrating
    kinds: list[str] = []

    async def go():
        return await drain(await open_migrating(instances, WIRE, limit, kinds.append))
    return asyncio.run(go()), kinds


def test_broken_stream_is_resent_with_its_tokens_and_smaller_limits():
    from pyimpl.runtime.errors import StreamIncompleteError
    first = FakeStream([tokens(7), tokens(8)], StreamIncompleteError("lost"))
    instances = FakeInstances(first, FakeStream([tokens(9), tokens(10), tokens(11, finish="length")]))
    chunks, kinds = run_migrating(instances)
    assert [t for c in chunks for t in c["token_ids"]] == [7, 8, 9, 10, 11]
    assert first.closed and kinds == ["ongoing_request"]
    wire, exclude = instances.opened[1]
    assert wire["token_ids"] == [1, 2, 3, 7, 8] and exclude == {101}
    assert wire["stop_conditions"] == {"max_tokens": 3, "min_tokens": 2}
    assert WIRE["token_ids"] == [1, 2, 3]            # the caller's request is not modified


def test_a_resent_request_does_not_ask_for_the_prompt_logprobs_again():
    from pyimpl.llm.frontend.migration import continuation
    wire = {**WIRE, "output_options": {"logprobs": 2, "prompt_logprobs": 2}}
    resent = continuation(wire, [7, 8])
    assert resent["output_options"] == {"logprobs": 2} and wire["output_options"]["prompt_logprobs"] == 2
    assert continuation(wire, []) is wire             # nothing arrived yet: the prompt's logprobs still to come


def test_break_before_the_first_token_is_a_new_request_migration():
    from pyimpl.runtime.errors import NoInstancesError
    instances = FakeInstances(FakeStream([], NoInstancesError("no responders")), FakeStream([tokens(5, finish="stop")]))
    chunks, kinds = run_migrating(instances)
    assert chunks == [tokens(5, finish="stop")] and kinds == ["new_request"]
    assert instances.opened[1][0] is WIRE


def test_limit_spent_or_nowhere_to_go_raises_the_original_loss():
    from pyimpl.runtime.errors import DisconnectedError, StreamIncompleteError
    lost = [FakeStream([tokens(1)], StreamIncompleteError(f"lost {i}")) for i in range(3)]
    with pytest.raises(StreamIncompleteError, match="lost 2"):
        run_migrating(FakeInstances(*lost), limit=2)
    with pytest.raises(DisconnectedError, match="reset"):
        run_migrating(FakeInstances(FakeStream([tokens(1)], DisconnectedError("reset"))))   # no other instance


def test_pairs_map_runtime_errors_once():
    """What the HTTP layer sees: a lost instance as EngineError (500) caused by the runtime's error (instance_lost
    tells it apart), no instances left as NoWorkerError (503); the stream is closed either way."""
    from pyimpl.llm.errors import EngineError, NoWorkerError
    from pyimpl.llm.frontend.migration import open_migrating
    from pyimpl.llm.frontend.worker_streams import instance_lost
    from pyimpl.runtime.errors import DisconnectedError, NoInstancesError

    async def pairs_of(*streams):
        stream = await open_migrating(FakeInstances(*streams), WIRE, 3)
        return [pair async for pair in stream.pairs(2)]
    lost = FakeStream([tokens(1)], DisconnectedError("reset"))
    with pytest.raises(EngineError) as caught:
        asyncio.run(pairs_of(lost))
    assert isinstance(caught.value.__cause__, DisconnectedError) and instance_lost(caught.value) and lost.closed
    with pytest.raises(NoWorkerError):
        asyncio.run(pairs_of(FakeStream([], NoInstancesError("no responders"))))
    assert asyncio.run(pairs_of(FakeStream([tokens(3, finish="stop")]))) == [(2, tokens(3, finish="stop"))]


def test_request_errors_are_never_migrated():
    from pyimpl.runtime.errors import RemoteHandlerError
    instances = FakeInstances(FakeStream([tokens(1)], RemoteHandlerError("KeyError: 'token_ids'")), FakeStream([]))
    with pytest.raises(RemoteHandlerError):
        run_migrating(instances)
    assert len(instances.opened) == 1


def test_a_shutdown_abort_continues_elsewhere_keeping_its_tokens():
    instances = FakeInstances(FakeStream([tokens(4), tokens(5, finish="abort")]),
                              FakeStream([tokens(6), tokens(7), tokens(8, finish="length")]))
    chunks, kinds = run_migrating(instances)
    assert [t for c in chunks for t in c["token_ids"]] == [4, 5, 6, 7, 8]
    assert [c["finish_reason"] for c in chunks] == [None, None, None, None, "length"]
    assert kinds == ["ongoing_request"]
    aborted = [tokens(4, finish="abort")]
    assert run_migrating(FakeInstances(FakeStream(aborted)), limit=0)[0] == aborted   # off: the abort passes


def test_all_tokens_arrived_but_not_the_end_finishes_without_a_resend():
    from pyimpl.runtime.errors import StreamIncompleteError
    instances = FakeInstances(FakeStream([tokens(1, 2), tokens(3, 4, 5)], StreamIncompleteError("lost")))
    chunks, _ = run_migrating(instances)
    assert chunks[-1] == tokens(finish="length") and len(instances.opened) == 1


def test_migration_limit_from_the_environment(monkeypatch):
    from pyimpl.llm.frontend.migration import DEFAULT_MIGRATION_LIMIT, migration_limit_from_env
    monkeypatch.delenv("DYN_MIGRATION_LIMIT", raising=False)
    assert migration_limit_from_env() == DEFAULT_MIGRATION_LIMIT == 3
    monkeypatch.setenv("DYN_MIGRATION_LIMIT", "0")
    assert migration_limit_from_env() == 0
    monkeypatch.setenv("DYN_MIGRATION_LIMIT", "-1")
    with pytest.raises(ValueError, match="DYN_MIGRATION_LIMIT"):
        migration_limit_from_env()


def test_constrained_output_is_not_continued_after_its_first_tokens():
    """A new worker would restart the JSON grammar on the appended tokens: a clear failure beats corrupt JSON."""
    from pyimpl.llm.frontend.migration import open_migrating
    from pyimpl.runtime.errors import StreamIncompleteError
    instances = FakeInstances(FakeStream([tokens(1)], StreamIncompleteError("lost")), FakeStream([tokens(2)]))

    async def go():
        wire = dict(WIRE, guided_decoding={"json_object": True})
        return await drain(await open_migrating(instances, wire, 3))
    with pytest.raises(StreamIncompleteError):
        asyncio.run(go())
    assert len(instances.opened) == 1


def test_an_interrupted_transport_resends_to_any_instance_after_a_pause():
    """After a NATS reconnect the instance may be fine: it is not excluded, and the re-send waits a moment."""
    from pyimpl.llm.frontend.migration import INTERRUPTED_BACKOFF_S
    from pyimpl.runtime.errors import StreamInterruptedError
    instances = FakeInstances(FakeStream([tokens(1)], StreamInterruptedError("reconnected")),
                              FakeStream([tokens(2, 3, 4, 5, finish="length")]))
    started = time.monotonic()
    chunks, kinds = run_migrating(instances)
    assert time.monotonic() - started >= INTERRUPTED_BACKOFF_S
    assert [t for c in chunks for t in c["token_ids"]] == [1, 2, 3, 4, 5] and kinds == ["ongoing_request"]
    assert instances.opened[1][1] == frozenset()
