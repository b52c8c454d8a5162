"""The KV router's core, without transport: index, cost, approximate mode."""
import asyncio
import random

import msgspec
import pytest

from pyimpl.llm.engine.block_hash import local_block_hash, sequence_block_hashes
from pyimpl.llm.kv_router.hashing import tokens_hashes
from pyimpl.llm.kv_router.protocol import KvEventBatch, WireBlock, WireKvEvent
from pyimpl.llm.kv_router.router import KvRouter, KvRouterConfig

B = 4
WORKERS = [11, 22, 33, 44]


def prompt(seed: int, length: int = 40) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1, 30000) for _ in range(length)]


def stored(worker: int, tokens: list[int], event_id: int = 1) -> KvEventBatch:
    """The stored event a worker's engine publishes after prefilling `tokens` (engine hashes)."""
    seq = sequence_block_hashes(tokens, B)
    local = [local_block_hash(tokens[i * B:(i + 1) * B]) for i in range(len(seq))]
    return KvEventBatch(worker, B, [WireKvEvent("stored", event_id, None, [WireBlock(s, t) for s, t in zip(seq, local)])])


def test_router_hashes_match_the_engines():
    tokens = prompt(1, 37)
    assert tokens_hashes(tokens, B) == [local_block_hash(tokens[i * B:(i + 1) * B]) for i in range(9)]


def test_repeated_prefix_goes_to_the_worker_that_cached_it():
    router = KvRouter(KvRouterConfig(block_size=B), rng=random.Random(0))
    system = prompt(1, 32)
    router.apply_events(stored(33, system + prompt(2, 8)))
    assert router.find_matches(system + prompt(3, 8)) == {33: 8}
    for i in range(5):
        decision = router.route(f"r{i}", system + prompt(10 + i, 8), WORKERS)
        assert decision.worker_id == 33 and decision.overlap_blocks == 8 and decision.cached_tokens == 32
        router.finished(f"r{i}")


def test_load_spreads_distinct_prefixes():
    router = KvRouter(KvRouterConfig(block_size=B), rng=random.Random(0))
    chosen = [router.route(f"r{i}", prompt(100 + i), WORKERS).worker_id for i in range(8)]
    assert sorted(chosen[:4]) == sorted(WORKERS) and sorted(chosen[4:]) == sorted(WORKERS)
    for i in range(8):
        router.finished(f"r{i}")
    assert len(router.active) == 0


def test_a_prefix_in_flight_attracts_its_group_before_any_event():
    """Two requests sharing a long prefix, routed before the first one's KV events arrive, meet on one worker."""
    router = KvRouter(KvRouterConfig(block_size=B), rng=random.Random(0))
    system = prompt(5, 64)
    first = router.route("a", system + prompt(6, 4), WORKERS).worker_id
    router.prefill_done("a")
    assert router.route("b", system + prompt(7, 4), WORKERS).worker_id == first


def test_busy_worker_loses_to_an_idle_one_when_overlap_is_small():
    router = KvRouter(KvRouterConfig(block_size=B), rng=random.Random(0))
    tokens = prompt(8, 40)
    router.apply_events(stored(11, tokens[:4]))             # one block cached on 11
    for i in range(6):                                       # ... which is busy with other work
        router.route(f"busy{i}", prompt(200 + i, 64), [11])
    assert router.route("x", tokens, WORKERS).worker_id != 11


def test_overlap_weight_zero_ignores_the_cache():
    router = KvRouter(KvRouterConfig(block_size=B, overlap_score_weight=0.0), rng=random.Random(0))
    tokens = prompt(9, 40)
    router.apply_events(stored(11, tokens))
    router.route("busy", prompt(300, 8), [11])
    assert router.route("x", tokens, WORKERS).worker_id != 11


def test_temperature_samples_mostly_the_cheapest():
    router = KvRouter(KvRouterConfig(block_size=B, router_temperature=0.5), rng=random.Random(1))
    tokens = prompt(12, 64)
    router.apply_events(stored(22, tokens))
    picks = [router.route(f"r{i}", tokens, WORKERS).worker_id for i in range(200) if not router.finished(f"r{i}")]
    assert 110 < picks.count(22) < 190 and len(set(picks)) == 4   # softmax: p(22) = 1 / (1 + 3 e^-2) = 0.71


def test_removed_cleared_and_departed_workers_leave_the_index():
    router = KvRouter(KvRouterConfig(block_size=B))
    tokens = prompt(13, 40)
    router.apply_events(stored(11, tokens))
    router.apply_events(stored(22, tokens))
    seq = sequence_block_hashes(tokens, B)
    router.apply_events(KvEventBatch(11, B, [WireKvEvent("removed", 2, block_hashes=seq[5:])]))
    assert router.find_matches(tokens) == {11: 5, 22: 10}
    router.apply_events(KvEventBatch(11, B, [WireKvEvent("removed", 3, block_hashes=seq[:1])]))
    assert router.find_matches(tokens) == {22: 10}            # a gap at the start: nothing usable
    router.apply_events(KvEventBatch(22, B, [WireKvEvent("cleared", 4)]))
    assert router.find_matches(tokens) == {}
    router.apply_events(stored(22, tokens, 5))
    router.retain([11])
    assert router.find_matches(tokens) == {} and router.indexer.num_blocks(22) == 0


def test_a_stored_event_after_a_missed_one_is_reported():
    router = KvRouter(KvRouterConfig(block_size=B))
    orphan = WireKvEvent("stored", 9, parent_hash=12345, blocks=[WireBlock(1, 2)])
    assert router.apply_events(KvEventBatch(11, B, [orphan])) is False
    assert router.indexer.num_blocks(11) == 0


def test_a_batch_of_another_block_size_is_refused():
    router = KvRouter(KvRouterConfig(block_size=B))
    with pytest.raises(ValueError, match="kv-cache-block-size"):
        router.apply_events(KvEventBatch(11, 16, []))


def test_approximate_mode_predicts_from_its_own_decisions_until_the_ttl():
    now = [0.0]
    router = KvRouter(KvRouterConfig(block_size=B, use_kv_events=False, approx_ttl_s=10.0), clock=lambda: now[0],
                      rng=random.Random(0))
    system = prompt(14, 48)
    first = router.route("a", system + prompt(15, 4), WORKERS)
    router.finished("a")
    assert first.overlap_blocks == 0
    assert router.find_matches(system) == {first.worker_id: 12}
    now[0] = 5.0
    again = router.route("b", system + prompt(16, 4), WORKERS)
    router.finished("b")
    assert again.worker_id == first.worker_id and again.overlap_blocks == 12
    now[0] = 14.0                                              # the prefix was refreshed at t=5
    assert router.find_matches(system) == {first.worker_id: 12}
    now[0] = 15.5
    assert router.find_matches(system) == {}


def test_pinned_worker_is_taken_and_counted():
    router = KvRouter(KvRouterConfig(block_size=B))
    assert router.route("p", prompt(17), WORKERS, pinned=44).worker_id == 44
    assert router.active.blocks(44) == 10


def test_bad_settings_are_refused():
    for kwargs in ({"block_size": 0}, {"overlap_score_weight": -1}, {"router_temperature": -0.5}):
        with pytest.raises(ValueError):
            KvRouterConfig(**kwargs)


def test_approximate_mode_keeps_no_more_than_the_worker_caches():
    from pyimpl.llm.kv_router.protocol import LoadMetrics
    router = KvRouter(KvRouterConfig(block_size=B, use_kv_events=False), rng=random.Random(0))
    router.apply_load(LoadMetrics(11, active_blocks=0, total_blocks=12, num_running=0, num_waiting=0))
    old, new = prompt(20, 40), prompt(21, 32)
    router.route("old", old, [11])
    router.finished("old")
    router.route("new", new, [11])
    router.finished("new")
    assert router.find_matches(new) == {11: 8}
    assert router.find_matches(old) == {11: 4}        # the old prompt's deepest blocks went first


class StandInWorkers:
    """A runtime stand-in for the event-plane subscriber: one worker (11) whose snapshot endpoint answers
    `self.snapshot`, an event plane whose subscribers' callbacks the test calls itself."""

    def __init__(self, snapshot: KvEventBatch):
        self.snapshot, self.fetches, self.callbacks = snapshot, [], {}
        workers = self

        class Plane:
            async def subscribe(self, subject, callback):
                workers.callbacks[subject] = callback

                async def unsubscribe():
                    workers.callbacks.pop(subject, None)
                return unsubscribe

        class SnapshotClient:
            def instance_ids(self):
                return [11]

            async def direct(self, request, worker, annotated=True):
                workers.fetches.append(worker)

                async def answer():
                    yield msgspec.to_builtins(workers.snapshot)
                return answer()

        class Endpoint:
            async def client(self):
                return SnapshotClient()

        self.events = Plane()
        self.endpoint = lambda path: Endpoint()

    async def instance_changes(self):
        yield [11]
        await asyncio.Event().wait()

    def send(self, topic: str, message) -> None:
        from pyimpl.llm.kv_router.protocol import encode
        self.callbacks[f"ns.backend.{topic}"](f"ns.backend.{topic}", encode(message))


async def until_true(predicate, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    assert predicate()


async def test_subscriber_resyncs_on_a_gap_and_logs_a_block_size_mismatch_once(caplog):
    """The event-plane subscriber, with a stand-in runtime: a gap in a worker's event ids asks for its snapshot (at
    most once per RESYNC_INTERVAL_S: a C engine may number its events with gaps)."""
    from pyimpl.llm.kv_router.subscriber import KvEventSubscriber

    workers = StandInWorkers(stored(11, prompt(30, 8), event_id=5))
    router = KvRouter(KvRouterConfig(block_size=B))
    sub = await KvEventSubscriber(workers, "ns", "backend", router, workers).start()
    await asyncio.wait_for(sub.synced.wait(), 2)
    assert router.find_matches(prompt(30, 8)) == {11: 2}                 # caught up from the snapshot
    later = prompt(31, 8)
    workers.send("kv_events", stored(11, later, event_id=6))
    assert router.find_matches(later) == {11: 2}
    workers.snapshot = stored(11, prompt(32, 8), event_id=9)
    workers.send("kv_events", stored(11, prompt(33, 8), event_id=9))    # 7 and 8 were missed
    await until_true(lambda: router.find_matches(prompt(32, 8)))
    assert router.find_matches(prompt(32, 8)) == {11: 2} and router.find_matches(later) == {}
    workers.send("kv_events", stored(11, prompt(34, 8), event_id=20))   # ids that skip again soon
    await asyncio.sleep(0.05)
    assert workers.fetches == [11, 11] and router.find_matches(prompt(34, 8)) == {11: 2}   # applied, not re-fetched
    for _ in range(3):
        workers.send("kv_events", KvEventBatch(11, 64, []))
    assert sum("kv-cache-block-size" in r.message for r in caplog.records) == 1
    await sub.stop()


async def test_a_load_naming_an_unseen_event_resyncs_the_worker():
    """A subscriber still connecting when a fresh worker published its first events never sees them: the worker's
    next load message names its last event id, and the router re-syncs from the snapshot (not on the first such
    message, which may just have overtaken the events, but when they have still not arrived 0.2 s later)."""
    from pyimpl.llm.kv_router.protocol import LoadMetrics
    from pyimpl.llm.kv_router.subscriber import KvEventSubscriber

    workers = StandInWorkers(KvEventBatch(11, B, []))                 # nothing published yet
    router = KvRouter(KvRouterConfig(block_size=B))
    sub = await KvEventSubscriber(workers, "ns", "backend", router, workers).start()
    await asyncio.wait_for(sub.synced.wait(), 2)
    assert workers.fetches == [11]
    workers.send("kv_load", LoadMetrics(11, 0, 100, 0, 0, None))
    lost = stored(11, prompt(40, 8), event_id=1)
    workers.snapshot = KvEventBatch(11, B, lost.events, last_event_id=1)   # published while nobody listened
    workers.send("kv_load", LoadMetrics(11, 0, 100, 0, 0, 1))
    await asyncio.sleep(0.25)
    assert workers.fetches == [11]                                     # it may still be on its way
    workers.send("kv_load", LoadMetrics(11, 0, 100, 0, 0, 1))
    await until_true(lambda: router.find_matches(prompt(40, 8)) == {11: 2})
    assert workers.fetches == [11, 11]
    workers.send("kv_events", stored(11, prompt(41, 8), event_id=2))
    for _ in range(3):
        workers.send("kv_load", LoadMetrics(11, 0, 100, 0, 0, 2))     # in step: no more snapshots
        await asyncio.sleep(0.1)
    assert workers.fetches == [11, 11] and router.find_matches(prompt(41, 8)) == {11: 2}
    await sub.stop()


def test_index_and_active_sequences_agree_with_a_plain_model_under_random_events():
    """The flat, C-looped structures behind find_matches and ActiveSequences against plain Python models of what
    they mean: random stores (new chains and continuations), removals and departures of workers; random requests
    routed and finished."""
    from pyimpl.llm.kv_router.hashing import prefix_ids
    from pyimpl.llm.kv_router.indexer import RadixIndexer
    from pyimpl.llm.kv_router.scheduler import ActiveSequences

    rng = random.Random(7)
    alphabet = [rng.getrandbits(64) for _ in range(6)]            # few distinct blocks: prefixes are shared
    index, paths = RadixIndexer(B), {}                            # worker -> block id -> path of tokens hashes
    for step in range(3000):
        worker = rng.choice(WORKERS)
        own = paths.setdefault(worker, {})
        roll = rng.random()
        if roll < 0.5:
            parent = rng.choice([None, *own]) if own else None
            path = own[parent] if parent is not None else ()
            blocks = [(rng.getrandbits(64), rng.choice(alphabet)) for _ in range(rng.randint(1, 4))]
            assert index.store(worker, parent, blocks)
            for block_id, hashed in blocks:
                path = path + (hashed,)
                own[block_id] = path
        elif roll < 0.9 and own:
            gone = rng.sample(list(own), rng.randint(1, min(3, len(own))))
            index.remove(worker, gone)
            for block_id in gone:
                del own[block_id]
        elif roll > 0.995:
            index.remove_worker(worker)
            paths.pop(worker)
        query = [rng.choice(alphabet) for _ in range(rng.randint(1, 8))]
        expected = {}
        for w, blocks in paths.items():
            held = set(blocks.values())
            depth = 0
            while depth < len(query) and tuple(query[:depth + 1]) in held:
                depth += 1
            if depth:
                expected[w] = depth
        assert index.find_matches_prefixes(prefix_ids(query)) == expected, step

    active, requests = ActiveSequences(), {}
    for step in range(2000):
        if requests and rng.random() < 0.45:
            request_id = rng.choice(list(requests))
            active.free(request_id)
            del requests[request_id]
        else:
            request_id, worker = f"r{step}", rng.choice(WORKERS)
            hashes = prefix_ids([rng.choice(alphabet[:3]) for _ in range(rng.randint(0, 6))])
            active.add(request_id, worker, hashes, len(hashes) + 1, 10)
            requests[request_id] = (worker, hashes)
        probe = prefix_ids([rng.choice(alphabet[:3]) for _ in range(6)])
        for worker in WORKERS:
            held = {h for w, hashes in requests.values() if w == worker for h in hashes}
            mine = sum(1 for w, _ in requests.values() if w == worker)
            assert active.blocks(worker) == len(held) + mine, step
            shared = 0
            while shared < len(probe) and probe[shared] in held:
                shared += 1
            assert active.shared_prefix(worker, probe) == shared, step
