"""The model registry: which models discovery's cards announce, which of them can serve now, and their tokenizers.

ModelManager (the request path) builds on it; /v1/models and /health read it.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyimpl.llm.frontend.aliases import ModelAlias
from pyimpl.llm.frontend.prompt_input import load_preprocessor
from pyimpl.llm.frontend.routing import ModelRouter, RouteListener, RouterSettings
from pyimpl.llm.model_card import CARD_PREFIX, ModelCard, card_instance_id
from pyimpl.llm.text.parsers import check_parser_names

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor
    from pyimpl.runtime import Client, DistributedRuntime

log = logging.getLogger(__name__)


@dataclass
class ServedModelEntry:
    """One model name as seen in discovery: its cards (one per worker) and a client for its endpoint.

    Requests go only to the instances that published this model's card (`instances`): two models whose workers
    share an endpoint never get each other's requests."""

    name: str
    cards: dict[str, ModelCard] = field(default_factory=dict)
    router: ModelRouter | None = None    # chooses the instance of each request (--router-mode)
    client: Client | None = None
    instances: set[int] = field(default_factory=set)   # ids of the workers whose card is in `cards`
    ready: bool = False                                 # the frontend can serve it (its tokenizer is loaded)

    @property
    def card(self) -> ModelCard:
        return next(iter(self.cards.values()))

    def live_instances(self) -> list[int]:
        """The workers requests of this model go to now: they published its card and are live in the client."""
        return [i for i in self.client.instance_ids() if i in self.instances]

    def servable(self) -> bool:
        """Listed in /v1/models and counted by /health: ready, with at least one live worker."""
        return self.ready and bool(self.live_instances())


class ModelRegistry:
    """Watches `models/` cards in discovery: one ServedModelEntry per model name, its router and its tokenizer."""

    def __init__(self, rt: DistributedRuntime, aliases: dict[str, ModelAlias] | None = None,
                 router: RouterSettings | None = None, on_route: RouteListener | None = None):
        """router: how instances are chosen (default round robin); on_route(model, decision) hears KV routing."""
        self.rt = rt
        self.router_settings = router or RouterSettings()
        self.on_route = on_route
        self.aliases = dict(aliases or {})
        self.models: dict[str, ServedModelEntry] = {}
        self._preprocessors: dict[str, Preprocessor] = {}
        self._preprocessor_locks: dict[str, asyncio.Lock] = {}
        self._changed = asyncio.Event()
        self._watch_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.created = int(time.time())

    async def start(self) -> None:
        """Load the current cards, then follow changes in the background."""
        for key, value in (await self.rt.discovery.list(CARD_PREFIX)).items():
            await self._on_put(key, value)
        self._watch_task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching discovery."""
        tasks = [*self._background, *([self._watch_task] if self._watch_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watch_task = None
        await asyncio.gather(*(e.router.stop() for e in self.models.values() if e.router is not None),
                             return_exceptions=True)

    async def _watch(self) -> None:
        async for event in self.rt.discovery.watch(CARD_PREFIX):
            try:
                if event.kind == "put":
                    await self._on_put(event.key, event.value)
                else:
                    self._on_delete(event.key)
            except Exception:
                log.exception("bad model card event %s", event.key)

    async def _on_put(self, key: str, value: dict) -> None:
        card = ModelCard.from_dict(value)
        try:   # a parser this frontend does not know would fail every request of the model with a 500
            check_parser_names(card.tool_call_parser, card.reasoning_parser)
        except ValueError as exc:
            log.error("model card %s refused: %s", key, exc)
            return
        entry = self.models.get(card.name)
        if entry is None:
            entry = ServedModelEntry(card.name)
            entry.client = await self.rt.endpoint(card.endpoint).client()
            entry.router = await ModelRouter(self.rt, self.router_settings, card.name, card.endpoint,
                                             card.kv_block_size, entry.client, self.on_route).start()
            self.models[card.name] = entry
        entry.cards[key] = card
        entry.instances.add(card_instance_id(key))
        if card.model_type == "embedding" or card.model_path in self._preprocessors:
            entry.ready = True
        else:
            task = asyncio.create_task(self._preload_preprocessor(entry, card))
            self._background.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(self._background.discard)
        self._notify()

    async def _preload_preprocessor(self, entry: ServedModelEntry, card: ModelCard) -> None:
        """Load the model's tokenizer, then list the model: its first request must not wait seconds for it."""
        try:
            await self.preprocessor(card)
        except Exception:  # reported again, to the client, on first use
            log.warning("could not load the tokenizer of %s", card.model_path, exc_info=True)
            return
        entry.ready = True
        self._notify()

    def _on_delete(self, key: str) -> None:
        name = key[len(CARD_PREFIX):].rsplit("/", 1)[0]
        entry = self.models.get(name)
        if entry is not None:
            entry.cards.pop(key, None)
            entry.instances.discard(card_instance_id(key))
            if not entry.cards:
                del self.models[name]
                if entry.router is not None:
                    task = asyncio.create_task(entry.router.stop())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- model listing ---------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """Names of the models that can serve now (tokenizer loaded, a live worker), then aliases of them."""
        served = {name for name, entry in self.models.items() if entry.servable()}
        return sorted(served) + sorted(a for a, alias in self.aliases.items() if alias.model in served)

    def live_instances(self) -> dict[str, int]:
        """Live workers per known model: the ones its requests go to (what /health reports)."""
        return {name: len(entry.live_instances()) for name, entry in self.models.items()}

    def kv_indexed_blocks(self) -> dict[str, dict[int, int]]:
        """Per model routed by KV events: the blocks its router indexes for each worker (what /metrics reports)."""
        sizes = {}
        for name, entry in self.models.items():
            kv = entry.router.kv if entry.router is not None else None
            if kv is not None:
                sizes[name] = {worker: kv.indexer.num_blocks(worker) for worker in kv.indexer.worker_ids()}
        return sizes

    def list_models(self) -> dict:
        """The /v1/models body."""
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self.created,
                                            "owned_by": "pyimpl"} for name in self.model_names()]}

    async def wait_for_model(self, name: str | None = None, timeout: float | None = None) -> str:
        """Wait until `name` (or any model when None) can serve (model_names); returns the name."""
        async def wait() -> str:
            while True:
                changed = self._changed
                names = self.model_names()
                if names and (name is None or name in names):
                    return names[0] if name is None else name
                try:  # instances come and go in the clients too: look again now and then
                    await asyncio.wait_for(changed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
        return await asyncio.wait_for(wait(), timeout)

    async def wait_for_model_gone(self, name: str, timeout: float | None = None) -> None:
        """Wait until no worker serves `name` any more."""
        async def wait() -> None:
            while name in self.models:
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)

    async def preprocessor(self, card: ModelCard) -> Preprocessor:
        """The Preprocessor for a card's model folder, loaded once (off the event loop)."""
        pre = self._preprocessors.get(card.model_path)
        if pre is not None:
            return pre
        lock = self._preprocessor_locks.setdefault(card.model_path, asyncio.Lock())
        async with lock:
            if card.model_path not in self._preprocessors:
                self._preprocessors[card.model_path] = await asyncio.to_thread(load_preprocessor, card.model_path)
                # transformers leaves a large heap behind: keep it out of full collections, which
                # would otherwise stall every stream for hundreds of milliseconds.
                gc.collect()
                gc.freeze()
        return self._preprocessors[card.model_path]
