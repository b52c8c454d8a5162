"""ModelHost's load strategies (Load, Continue, DropAndLoad), in-flight requests finishing before their
model is dropped, failed loads, aliases and state listeners, with a loader that only records what it does."""
import asyncio
import random

import pytest

from pyimpl.llm.errors import EngineError, ModelNotFoundError
from pyimpl.llm.frontend.model_host import HostedModel, ModelHost, ModelState


class FakeLoader:
    """Loads take a moment; records the order of loads and stops and how many models were live at once."""

    def __init__(self, fail: set[str] = frozenset()):
        self.events: list[tuple[str, str]] = []
        self.live: set[str] = set()
        self.most_live = 0
        self.fail = set(fail)

    async def __call__(self, model: HostedModel):
        await asyncio.sleep(0.01)
        if model.name in self.fail:
            raise RuntimeError(f"no weights at {model.path}")
        self.events.append(("load", model.name))
        self.live.add(model.name)
        self.most_live = max(self.most_live, len(self.live))
        loader = self

        class Handle:
            async def stop(self):
                await asyncio.sleep(0.005)
                loader.events.append(("stop", model.name))
                loader.live.discard(model.name)
        return Handle()


MODELS = [HostedModel("a", "/m/a", aliases=("alpha",), params={"temperature": 0.2}), HostedModel("b", "/m/b"),
          HostedModel("c", "/m/c")]


def host_with(loader, max_loaded=1):
    host = ModelHost(MODELS, max_loaded, loader)
    states = []
    host.listeners.append(lambda name, state, message: states.append((name, state.value)))
    return host, states


async def test_load_continue_drop_and_load():
    loader = FakeLoader()
    host, states = host_with(loader)
    async with host.use("a"):
        pass
    async with host.use("alpha"):  # Continue, through an alias
        pass
    assert loader.events == [("load", "a")]
    async with host.use("b"):      # DropAndLoad
        assert loader.live == {"b"}
    assert loader.events == [("load", "a"), ("stop", "a"), ("load", "b")]
    assert states == [("a", "loading"), ("a", "loaded"), ("a", "unloading"), ("a", "unloaded"), ("b", "loading"),
                      ("b", "loaded")]
    assert [m["state"] for m in host.states()] == ["unloaded", "loaded", "unloaded"]
    await host.close()
    assert loader.live == set()


async def test_in_flight_requests_finish_before_their_model_is_dropped():
    loader = FakeLoader()
    host, _ = host_with(loader)
    held = await host.acquire("a")
    other = asyncio.create_task(host.acquire("b"))
    await asyncio.sleep(0.05)
    assert not other.done() and loader.events == [("load", "a")]  # b waits for a's request
    late_a = asyncio.create_task(host.acquire("a"))                # a is being dropped: a new request waits
    await asyncio.sleep(0.02)
    assert not late_a.done()
    host.release(held)
    assert (await other).name == "b"
    assert loader.events == [("load", "a"), ("stop", "a"), ("load", "b")]
    host.release(MODELS[1])
    assert (await late_a).name == "a"  # loaded again once b had no request
    assert loader.live == {"a"}


async def test_three_models_one_slot_under_concurrent_requests():
    loader = FakeLoader()
    host, _ = host_with(loader)
    rng = random.Random(7)
    served = []

    async def request(i):
        name = rng.choice("abc")
        async with host.use(name) as model:
            assert model.name in loader.live  # the model is loaded while the request runs
            await asyncio.sleep(rng.random() * 0.01)
            served.append((i, model.name))

    await asyncio.gather(*(request(i) for i in range(60)))
    assert sorted(i for i, _ in served) == list(range(60))  # nothing lost
    assert loader.most_live == 1                            # never more than max_loaded_models


async def test_least_recently_used_is_dropped():
    loader = FakeLoader()
    host, _ = host_with(loader, max_loaded=2)
    for name in ("a", "b", "a", "c"):
        async with host.use(name):
            pass
    assert loader.events == [("load", "a"), ("load", "b"), ("stop", "b"), ("load", "c")]


async def test_a_failed_load_answers_its_waiters_and_is_retried_later():
    loader = FakeLoader(fail={"c"})
    host, states = host_with(loader)
    results = await asyncio.gather(*(host.acquire("c") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, EngineError) and "no weights at /m/c" in str(r) for r in results)
    assert ("c", "failed") in states and host.states()[2]["error"] == "no weights at /m/c"
    loader.fail.clear()
    async with host.use("c"):
        assert loader.live == {"c"}


async def test_unknown_names_and_bad_configs():
    host, _ = host_with(FakeLoader())
    with pytest.raises(ModelNotFoundError):
        await host.acquire("zzz")
    with pytest.raises(ValueError):
        ModelHost(MODELS, 0, FakeLoader())
    with pytest.raises(ValueError):
        ModelHost(MODELS + [HostedModel("d", "/m/d", aliases=("alpha",))], 1, FakeLoader())
    assert host.resolve("alpha").name == "a"
    aliases = host.aliases()
    assert aliases["alpha"].apply({"model": "alpha", "n": 1}) == {"temperature": 0.2, "n": 1, "model": "a"}


async def test_a_failing_listener_does_not_wedge_the_host():
    loader = FakeLoader()
    host, _ = host_with(loader)
    host.listeners.insert(0, lambda *args: 1 / 0)
    async with host.use("b"):
        assert host.states()[1]["state"] == ModelState.LOADED.value
