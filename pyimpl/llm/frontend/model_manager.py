"""ModelManager: discovers model cards and turns OpenAI requests into worker calls and back.

Used by the HTTP frontend and the C ABI alike. Streams yield OpenAI chunk dicts; errors are the
typed ones of pyimpl.llm.errors, raised before the first chunk whenever possible.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from pyimpl.llm.frontend.aliases import ModelAlias
from pyimpl.llm.errors import InvalidRequestError, ModelNotFoundError, NoWorkerError
from pyimpl.llm.model_card import CARD_PREFIX, ModelCard, card_instance_id
from pyimpl.llm.frontend.openai_chunks import openai_chunks
from pyimpl.llm.frontend.openai_stream import aggregate_chat, aggregate_completion, embedding_response
from pyimpl.llm.text.preprocessor import LARGE_TEXT
from pyimpl.llm.frontend.prompt_input import (ChatPromptCache, check_vocabulary, format_hint, load_preprocessor, text_size,
                                     tokenize_off_loop, tool_choice_hint)
from pyimpl.llm.frontend.protocols import (GenerationRequest, parse_chat_request, parse_completion_request,
                                 parse_embedding_request, to_wire_request, with_usage)
from pyimpl.llm.frontend.migration import migration_limit_from_env, open_migrating
from pyimpl.llm.frontend.routing import ModelRouter, RouteListener, RouterSettings, with_nvext, with_worker_id
from pyimpl.llm.frontend.worker_streams import close_stream, single_stream

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


class ModelManager:
    """Watches `models/` cards in discovery and serves chat, completion and embedding requests."""

    def __init__(self, rt: DistributedRuntime, aliases: dict[str, ModelAlias] | None = None, no_worker_wait_s: float = 1.0,
                 migration_limit: int | None = None, on_migration: Callable[[str, str], None] | None = None,
                 router: RouterSettings | None = None, on_route: RouteListener | None = None):
        """migration_limit: times a request may move to another worker when its worker is lost (None:
        DYN_MIGRATION_LIMIT, else 3; 0 turns migration off); on_migration(model, migration_type) counts them.
        router: how instances are chosen (default round robin); on_route(model, decision) hears KV routing."""
        self.router_settings = router or RouterSettings()
        self.on_route = on_route
        self.rt = rt
        self.no_worker_wait_s = no_worker_wait_s
        self.migration_limit = migration_limit_from_env() if migration_limit is None else migration_limit
        if self.migration_limit < 0:
            raise ValueError(f"migration_limit must be >= 0, got {self.migration_limit}")
        self.on_migration = on_migration
        self.aliases = dict(aliases or {})
        self.models: dict[str, ServedModelEntry] = {}
        self._preprocessors: dict[str, Preprocessor] = {}
        self._preprocessor_locks: dict[str, asyncio.Lock] = {}
        self._token_texts: dict[str, dict[int, str]] = {}
        self._vocab_sizes: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._watch_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._prompt_cache = ChatPromptCache()
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

    def _resolve(self, body: Any) -> tuple[Any, ServedModelEntry | None]:
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str):  # not a name (e.g. {}): validation names the field
            return body, None
        alias = self.aliases.get(model)
        if alias is not None:
            body = alias.apply(body)
        return body, self.models.get(body["model"])

    def _entry_for(self, req_model: str, entry: ServedModelEntry | None, kind: str) -> ServedModelEntry:
        if entry is None:
            raise ModelNotFoundError(f"The model '{req_model}' does not exist")
        model_type = entry.card.model_type
        if (model_type == "embedding") != (kind == "embedding") or (model_type == "completions" and kind == "chat"):
            raise InvalidRequestError(f"The model '{req_model}' does not serve {kind} requests", "model")
        return entry

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

    # ---- generation ------------------------------------------------------------------------

    def chat_completion_stream(self, request: dict, *, token_ids: bool = False,
                               cancelled_finish: bool = False) -> AsyncIterator[dict]:
        """OpenAI chat.completion.chunk dicts for a chat request (validation errors on first iteration);
        token_ids / cancelled_finish: the embedding host's extra fields (see openai_chunks)."""
        return self._stream(request, "chat", token_ids=token_ids, cancelled_finish=cancelled_finish)

    def completion_stream(self, request: dict) -> AsyncIterator[dict]:
        """OpenAI text_completion chunk dicts for a completions request."""
        return self._stream(request, "completion")

    async def chat_completion(self, request: dict) -> dict:
        """A whole (non-streaming) chat.completion."""
        request = with_usage(request)
        chunks = [c async for c in self.chat_completion_stream(request)]
        return with_nvext(aggregate_chat(chunks), chunks)

    async def completion(self, request: dict) -> dict:
        """A whole (non-streaming) text_completion."""
        request = with_usage(request)
        chunks = [c async for c in self.completion_stream(request)]
        return with_nvext(aggregate_completion(chunks), chunks)

    async def prepare(self, request: dict, kind: str) -> tuple[GenerationRequest, ServedModelEntry, Preprocessor, list[int], int]:
        """Validate, resolve the model, tokenize; returns (req, entry, preprocessor, prompt ids, max_tokens)."""
        body, entry = self._resolve(request)
        req = parse_chat_request(body) if kind == "chat" else parse_completion_request(body)
        entry = self._entry_for(req.model, entry, kind)
        card = entry.card
        pre = await self.preprocessor(card)
        if kind == "chat":
            messages = req.messages
            hints = [hint for hint in (format_hint(req.response_format), tool_choice_hint(req.tool_choice)) if hint]
            if hints:
                messages = [{"role": "system", "content": " ".join(hints)}] + list(messages)
            if text_size(messages) < LARGE_TEXT:
                prompt_ids = self._prompt_cache.token_ids(card.model_path, pre, messages, req.tools)
            else:  # seconds of templating and tokenizing: off the loop, GIL released (other streams run)
                prompt_ids = await tokenize_off_loop(pre.chat_token_ids, messages, tools=req.tools,
                                             limit=card.context_length, where="messages")
        elif isinstance(req.prompt, str) and len(req.prompt) >= LARGE_TEXT:
            prompt_ids = await tokenize_off_loop(pre.tokenize, req.prompt, True, limit=card.context_length, where="prompt")
        else:
            # a text prompt gets the tokenizer's special tokens (BOS), as transformers and vLLM add them
            prompt_ids = pre.tokenize(req.prompt, True) if isinstance(req.prompt, str) else list(req.prompt)
            if not isinstance(req.prompt, str):
                check_vocabulary(prompt_ids, self._vocab_size(card, pre))
        if "logit_bias" in req.sampling:
            check_vocabulary(req.sampling["logit_bias"], self._vocab_size(card, pre), "logit_bias")
        room = card.context_length - len(prompt_ids)
        if room <= 0:
            raise InvalidRequestError(f"the prompt has {len(prompt_ids)} tokens, the model's context is "
                                      f"{card.context_length}", "messages" if kind == "chat" else "prompt")
        max_tokens = req.max_tokens or room
        if max_tokens > room:
            raise InvalidRequestError(f"max_tokens ({max_tokens}) + prompt ({len(prompt_ids)} tokens) exceed the "
                                      f"model's context of {card.context_length}", "max_tokens")
        if req.min_tokens > max_tokens:
            raise InvalidRequestError("'min_tokens' must not exceed 'max_tokens'", "min_tokens")
        return req, entry, pre, prompt_ids, max_tokens

    def _vocab_size(self, card: ModelCard, pre: Preprocessor) -> int:
        vocab = self._vocab_sizes.get(card.model_path)
        if vocab is None:  # len() of a tokenizer can build its whole vocabulary: once per model
            vocab = self._vocab_sizes[card.model_path] = len(pre.tokenizer)
        return vocab

    async def _open(self, entry: ServedModelEntry, wire: dict, exclude: frozenset = frozenset(),
                    pinned: int | None = None, served: list[int] | None = None) -> tuple[int, Any]:
        """(instance id, response stream) on an instance of `entry` not in `exclude` (`pinned`: that one only),
        chosen by the model's router; the id is appended to `served`; runtime errors as raised."""
        instance, stream = await entry.router.open(wire, exclude, self.no_worker_wait_s, pinned, among=entry.instances)
        if served is not None:
            served.append(instance)
        return instance, stream

    async def _open_migrating(self, entry: ServedModelEntry, wire: dict, pinned: int | None = None,
                              served: list[int] | None = None) -> Any:
        """A worker stream for `wire` that moves to another instance when its own is lost (migration)."""
        from pyimpl.runtime.errors import NoInstancesError
        listener = self.on_migration
        try:
            return await open_migrating(lambda w, exclude: self._open(entry, w, exclude, pinned, served), wire, self.migration_limit,
                                        None if listener is None else lambda kind: listener(entry.name, kind))
        except NoInstancesError as exc:
            raise NoWorkerError(f"no worker is serving '{entry.name}' right now") from exc

    async def _stream(self, request: dict, kind: str, **host_fields: bool) -> AsyncIterator[dict]:
        req, entry, pre, prompt_ids, max_tokens = await self.prepare(request, kind)
        streams: list[Any] = []
        served: list[int] = []
        try:  # however the consumer leaves, every worker stream is closed (which cancels it remotely)
            for i in range(req.n):
                streams.append(await self._open_migrating(entry, to_wire_request(req, prompt_ids, max_tokens,
                                                                                  seed_offset=i),
                                                    req.backend_instance_id, served))
            async for chunk in openai_chunks(req, entry.card, pre, prompt_ids, streams,
                                           self._token_texts.setdefault(entry.card.model_path, {}), **host_fields):
                yield with_worker_id(chunk, served) if "worker_id" in req.extra_fields else chunk
        finally:
            for stream in streams:
                await close_stream(stream)

    # ---- embeddings ------------------------------------------------------------------------

    async def embeddings(self, request: Any) -> dict:
        """The /v1/embeddings body for a request (texts are tokenized by the embedding worker)."""
        body, entry = self._resolve(request)
        typed = parse_embedding_request(body)
        entry = self._entry_for(typed.model, entry, "embedding")
        stream = await self._open_migrating(entry, {"input": typed.input})
        result = None
        async for _, result in single_stream(stream):   # runtime errors mapped as for generation (400/500/503)
            pass
        return embedding_response(typed, result)
