"""ModelManager: turns OpenAI requests into worker calls and back, on the models its ModelRegistry knows.

Used by the HTTP frontend and the C ABI alike. Streams yield OpenAI chunk dicts; errors are the
typed ones of pyimpl.llm.errors, raised before the first chunk whenever possible.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from pyimpl.llm.frontend.aliases import ModelAlias
from pyimpl.llm.errors import InvalidRequestError, ModelNotFoundError, NoWorkerError
from pyimpl.llm.model_card import ModelCard
from pyimpl.llm.frontend.model_registry import ModelRegistry, ServedModelEntry
from pyimpl.llm.frontend.openai_chunks import openai_chunks
from pyimpl.llm.frontend.openai_stream import aggregate_chat, aggregate_completion, embedding_response
from pyimpl.llm.text.preprocessor import LARGE_TEXT
from pyimpl.llm.frontend.prompt_input import (ChatPromptCache, check_vocabulary, format_hint, text_size,
                                     tokenize_off_loop, tool_choice_hint)
from pyimpl.llm.frontend.protocols import (GenerationRequest, parse_chat_request, parse_completion_request,
                                 parse_embedding_request, to_wire_request, with_usage)
from pyimpl.llm.frontend.migration import MigratingStream, migration_limit_from_env, open_migrating
from pyimpl.llm.frontend.routing import RouteListener, RouterSettings, with_nvext, with_worker_id
from pyimpl.llm.frontend.worker_streams import close_stream

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor
    from pyimpl.runtime import DistributedRuntime

__all__ = ["ModelManager", "ServedModelEntry"]

log = logging.getLogger(__name__)


class ModelManager(ModelRegistry):
    """Serves chat, completion and embedding requests on the models the registry knows."""

    def __init__(self, rt: DistributedRuntime, aliases: dict[str, ModelAlias] | None = None, no_worker_wait_s: float = 1.0,
                 migration_limit: int | None = None, on_migration: Callable[[str, str], None] | None = None,
                 router: RouterSettings | None = None, on_route: RouteListener | None = None):
        """migration_limit: times a request may move to another worker when its worker is lost (None:
        DYN_MIGRATION_LIMIT, else 3; 0 turns migration off); on_migration(model, migration_type) counts them.
        router: how instances are chosen (default round robin); on_route(model, decision) hears KV routing."""
        super().__init__(rt, aliases, router, on_route)
        self.no_worker_wait_s = no_worker_wait_s
        self.migration_limit = migration_limit_from_env() if migration_limit is None else migration_limit
        if self.migration_limit < 0:
            raise ValueError(f"migration_limit must be >= 0, got {self.migration_limit}")
        self.on_migration = on_migration
        self._token_texts: dict[str, dict[int, str]] = {}
        self._vocab_sizes: dict[str, int] = {}
        self._prompt_cache = ChatPromptCache()

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
                              served: list[int] | None = None) -> MigratingStream:
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
        streams: list[MigratingStream] = []
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
        async for _, result in stream.pairs():   # runtime errors mapped as for generation (400/500/503)
            pass
        return embedding_response(typed, result)
