"""ModelManager: discovers model cards and turns OpenAI requests into worker calls and back.

Used by the HTTP frontend and the C ABI alike. Streams yield OpenAI chunk dicts; errors are the
typed ones of pyimpl.llm.errors, raised before the first chunk whenever possible.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import msgspec

from pyimpl.llm.aliases import ModelAlias
from pyimpl.llm.errors import EngineError, InvalidRequestError, ModelNotFoundError, NoWorkerError
from pyimpl.llm.model_card import CARD_PREFIX, ModelCard
from pyimpl.llm.openai_stream import (ChoicePostprocessor, aggregate_chat, aggregate_completion,
                                      encode_embedding, usage)
from pyimpl.llm.preprocessor import LARGE_TEXT, PromptTooLongError
from pyimpl.llm.protocols import (GenerationRequest, parse_chat_request, parse_completion_request,
                                 parse_embedding_request, to_wire_request, with_usage)

log = logging.getLogger(__name__)

PROMPT_CACHE_SIZE = 512
_encode_key = msgspec.msgpack.Encoder().encode
JSON_OBJECT_HINT = "Respond only with a single valid JSON object."


@dataclass
class ServedModelEntry:
    """One model name as seen in discovery: its cards (one per worker) and a client for its endpoint."""

    name: str
    cards: dict[str, ModelCard] = field(default_factory=dict)
    client: Any = None

    @property
    def card(self) -> ModelCard:
        return next(iter(self.cards.values()))


class ModelManager:
    """Watches `models/` cards in discovery and serves chat, completion and embedding requests."""

    def __init__(self, rt: Any, aliases: dict[str, ModelAlias] | None = None, no_worker_wait_s: float = 1.0):
        self.rt = rt
        self.no_worker_wait_s = no_worker_wait_s
        self.aliases = dict(aliases or {})
        self.models: dict[str, ServedModelEntry] = {}
        self._preprocessors: dict[str, Any] = {}
        self._preprocessor_locks: dict[str, asyncio.Lock] = {}
        self._token_texts: dict[str, dict[int, str]] = {}
        self._vocab_sizes: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._watch_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._prompt_cache: OrderedDict[tuple, tuple[int, ...]] = OrderedDict()
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
            self.models[card.name] = entry
        entry.cards[key] = card
        if card.model_type != "embedding" and card.model_path not in self._preprocessors:
            task = asyncio.create_task(self._preload_preprocessor(card))
            self._background.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(self._background.discard)
        self._notify()

    async def _preload_preprocessor(self, card: ModelCard) -> None:
        try:
            await self.preprocessor(card)
        except Exception:  # reported again, to the client, on first use
            log.warning("could not load the tokenizer of %s", card.model_path, exc_info=True)

    def _on_delete(self, key: str) -> None:
        name = key[len(CARD_PREFIX):].rsplit("/", 1)[0]
        entry = self.models.get(name)
        if entry is not None:
            entry.cards.pop(key, None)
            if not entry.cards:
                del self.models[name]
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- model listing ---------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """Served model names, then aliases whose target is served."""
        return sorted(self.models) + sorted(a for a, alias in self.aliases.items() if alias.model in self.models)

    def list_models(self) -> dict:
        """The /v1/models body."""
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self.created,
                                            "owned_by": "pyimpl"} for name in self.model_names()]}

    async def wait_for_model(self, name: str | None = None, timeout: float | None = None) -> str:
        """Wait until `name` (or any model when None) is served; returns the name."""
        async def wait() -> str:
            while True:
                changed = self._changed
                if name is None and self.models:
                    return next(iter(self.models))
                if name is not None and name in self.model_names():
                    return name
                await changed.wait()
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

    async def preprocessor(self, card: ModelCard) -> Any:
        """The Preprocessor for a card's model folder, loaded once (off the event loop)."""
        pre = self._preprocessors.get(card.model_path)
        if pre is not None:
            return pre
        lock = self._preprocessor_locks.setdefault(card.model_path, asyncio.Lock())
        async with lock:
            if card.model_path not in self._preprocessors:
                self._preprocessors[card.model_path] = await asyncio.to_thread(_load_preprocessor, card.model_path)
                # transformers leaves a large heap behind: keep it out of full collections, which
                # would otherwise stall every stream for hundreds of milliseconds.
                gc.collect()
                gc.freeze()
        return self._preprocessors[card.model_path]

    # ---- generation ------------------------------------------------------------------------

    def chat_completion_stream(self, request: dict) -> AsyncIterator[dict]:
        """OpenAI chat.completion.chunk dicts for a chat request (validation errors on first iteration)."""
        return self._stream(request, "chat")

    def completion_stream(self, request: dict) -> AsyncIterator[dict]:
        """OpenAI text_completion chunk dicts for a completions request."""
        return self._stream(request, "completion")

    async def chat_completion(self, request: dict) -> dict:
        """A whole (non-streaming) chat.completion."""
        request = with_usage(request)
        return aggregate_chat([c async for c in self.chat_completion_stream(request)])

    async def completion(self, request: dict) -> dict:
        """A whole (non-streaming) text_completion."""
        request = with_usage(request)
        return aggregate_completion([c async for c in self.completion_stream(request)])

    async def prepare(self, request: dict, kind: str) -> tuple[GenerationRequest, ServedModelEntry, Any, list[int], int]:
        """Validate, resolve the model, tokenize; returns (req, entry, preprocessor, prompt ids, max_tokens)."""
        body, entry = self._resolve(request)
        req = parse_chat_request(body) if kind == "chat" else parse_completion_request(body)
        entry = self._entry_for(req.model, entry, kind)
        card = entry.card
        pre = await self.preprocessor(card)
        if kind == "chat":
            messages = req.messages
            hints = [hint for hint in (_format_hint(req.response_format), _tool_choice_hint(req.tool_choice)) if hint]
            if hints:
                messages = [{"role": "system", "content": " ".join(hints)}] + list(messages)
            if _text_size(messages) < LARGE_TEXT:
                prompt_ids = self._chat_prompt_ids(card.model_path, pre, messages, req.tools)
            else:  # seconds of templating and tokenizing: off the loop, GIL released (other streams run)
                prompt_ids = await _off_loop(pre.chat_token_ids, messages, tools=req.tools,
                                             limit=card.context_length, where="messages")
        elif isinstance(req.prompt, str) and len(req.prompt) >= LARGE_TEXT:
            prompt_ids = await _off_loop(pre.tokenize, req.prompt, True, limit=card.context_length, where="prompt")
        else:
            # a text prompt gets the tokenizer's special tokens (BOS), as transformers and vLLM add them
            prompt_ids = pre.tokenize(req.prompt, True) if isinstance(req.prompt, str) else list(req.prompt)
            if not isinstance(req.prompt, str):
                vocab = self._vocab_sizes.get(card.model_path)
                if vocab is None:  # len() of a tokenizer can build its whole vocabulary: once per model
                    vocab = self._vocab_sizes[card.model_path] = len(pre.tokenizer)
                _check_vocabulary(prompt_ids, vocab)
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

    def _chat_prompt_ids(self, model_path: str, pre: Any, messages: list[dict], tools: list[dict] | None) -> list[int]:
        """Template + tokenize, remembering recent conversations (rendering costs more than the rest of a request)."""
        try:
            key = (model_path, _encode_key(messages), _encode_key(tools))
        except (TypeError, OverflowError, msgspec.EncodeError):  # e.g. an int beyond 64 bits: no caching
            key = None
        cached = self._prompt_cache.get(key) if key is not None else None
        if cached is not None:
            self._prompt_cache.move_to_end(key)
            return list(cached)
        try:
            prompt_ids = pre.chat_token_ids(messages, tools=tools)
        except Exception as exc:  # template errors are the client's message structure
            raise InvalidRequestError(f"could not apply the chat template: {exc}", "messages") from exc
        if key is not None:
            self._prompt_cache[key] = tuple(prompt_ids)
            if len(self._prompt_cache) > PROMPT_CACHE_SIZE:
                self._prompt_cache.popitem(last=False)
        return prompt_ids

    async def _open(self, entry: ServedModelEntry, wire: dict) -> Any:
        from pyimpl.runtime.errors import NoInstancesError
        client = entry.client
        try:
            if not client.instance_ids() and not await client.wait_for_instances(self.no_worker_wait_s):
                raise NoInstancesError(entry.name)
            return await client.generate(wire, annotated=False)
        except NoInstancesError as exc:
            raise NoWorkerError(f"no worker is serving '{entry.name}' right now") from exc

    async def _stream(self, request: dict, kind: str) -> AsyncIterator[dict]:
        req, entry, pre, prompt_ids, max_tokens = await self.prepare(request, kind)
        streams: list[Any] = []
        try:  # however the consumer leaves, every worker stream is closed (which cancels it remotely)
            for i in range(req.n):
                streams.append(await self._open(entry, to_wire_request(req, prompt_ids, max_tokens, seed_offset=i)))
            async for chunk in self._chunks(req, entry.card, pre, prompt_ids, streams):
                yield chunk
        finally:
            for stream in streams:
                await _close_stream(stream)

    async def _chunks(self, req: GenerationRequest, card: ModelCard, pre: Any, prompt_ids: list[int],
                      streams: list[Any]) -> AsyncIterator[dict]:
        texts = self._token_texts.setdefault(card.model_path, {})
        posts = [ChoicePostprocessor(pre, req, card.tool_call_parser, card.reasoning_parser, texts,
                                     prompt_ids, card.eos_token_ids) for _ in range(req.n)]
        chat = req.kind == "chat"
        chunk_id = f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}"
        base = {"id": chunk_id, "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": req.model}
        if chat:
            yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                        "logprobs": None, "finish_reason": None} for i in range(req.n)]}
        if req.echo and not chat:
            text = req.prompt if isinstance(req.prompt, str) else pre.decode(prompt_ids)
            yield {**base, "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": None}
                                       for i in range(req.n)]}
        items = _merge(streams) if req.n > 1 else _single(streams[0])
        unfinished = set(range(req.n))
        try:
            async for index, data in items:
                if index not in unfinished:
                    continue
                if data.get("finish_reason") == "abort":  # cut short by the serving side (worker shutdown):
                    raise NoWorkerError(f"the worker serving '{req.model}' stopped before the response "
                                        f"was complete")  # never a normal-looking end
                delta, logprobs, reason = posts[index].on_chunk(data)
                if delta is None and reason is None and logprobs is None:
                    continue
                if chat:
                    choice = {"index": index, "delta": delta or {},
                              "logprobs": {"content": logprobs} if logprobs is not None else None,
                              "finish_reason": reason}
                else:
                    choice = {"index": index, "text": (delta or {}).get("text", ""), "logprobs": logprobs,
                              "finish_reason": reason}
                yield {**base, "choices": [choice]}
                if reason is not None:
                    unfinished.discard(index)
                    if not unfinished:
                        break
        finally:
            await items.aclose()
        if req.include_usage:
            yield {**base, "choices": [], "usage": usage(len(prompt_ids), sum(p.num_tokens for p in posts))}

    # ---- embeddings ------------------------------------------------------------------------

    async def embeddings(self, request: Any) -> dict:
        """The /v1/embeddings body for a request (texts are tokenized by the embedding worker)."""
        body, entry = self._resolve(request)
        typed = parse_embedding_request(body)
        model, texts, encoding = typed.model, typed.input, typed.encoding_format or "float"
        entry = self._entry_for(model, entry, "embedding")
        stream = await self._open(entry, {"input": texts})
        result = None
        async for item in stream:
            result = _data(item)
        if not result or "embeddings" not in result:
            raise EngineError("the embedding worker returned nothing")
        data = [{"object": "embedding", "index": i, "embedding": encode_embedding(v, encoding)}
                for i, v in enumerate(result["embeddings"])]
        tokens = int(result.get("prompt_tokens", 0))
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _check_vocabulary(token_ids: list[int], vocab_size: int) -> None:
    """Token-id prompts must be the model's tokens (an id past the vocabulary broke decoding: a 500)."""
    bad = next((t for t in token_ids if t >= vocab_size), None)
    if bad is not None:
        raise InvalidRequestError(f"'prompt': token id {bad} is outside the vocabulary [0, {vocab_size})", "prompt")


def _format_hint(response_format: dict | None) -> str | None:
    """response_format json_object/json_schema as an instruction (json_object is also enforced worker-side)."""
    if not response_format or response_format.get("type") not in ("json_object", "json_schema"):
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return JSON_OBJECT_HINT + (f" It must follow this JSON schema: {json.dumps(schema)}" if schema else "")


def _tool_choice_hint(tool_choice: Any) -> str | None:
    """tool_choice "required" or a named function, as an instruction to the model."""
    if tool_choice == "required":
        return "You must call one of the provided tools."
    if isinstance(tool_choice, dict):
        return f"You must call the function {tool_choice['function']['name']}."
    return None


def _load_preprocessor(model_path: str) -> Any:
    """Import (transformers is slow to import) and load in a worker thread, off the event loop."""
    from pyimpl.llm.preprocessor import Preprocessor
    return Preprocessor.from_model_dir(model_path)


def _data(item: Any) -> Any:
    if isinstance(item, dict):
        return item
    if item.is_error():
        raise EngineError(str(item.data()))
    return item.data()


def _runtime_error(exc: Exception) -> Exception:
    from pyimpl.runtime.errors import DynamoError, NoInstancesError
    if isinstance(exc, NoInstancesError):
        return NoWorkerError(str(exc))
    if isinstance(exc, DynamoError):
        return EngineError(f"{type(exc).__name__}: {exc}")
    return exc


async def _single(stream: Any) -> AsyncIterator[tuple[int, dict]]:
    """One worker stream as (0, data) pairs; closing it cancels the request on the worker."""
    try:
        async for item in stream:
            yield 0, _data(item)
    except Exception as exc:
        mapped = _runtime_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
    finally:
        await _close_stream(stream)


async def _close_stream(stream: Any) -> None:
    """Close a runtime response stream; a stream still running is cancelled on the worker. Idempotent."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def _merge(streams: list[Any]) -> AsyncIterator[tuple[int, dict]]:
    """Several worker streams interleaved as (index, data) pairs, in arrival order."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index: int, stream: Any) -> None:
        try:
            async for pair in _single(stream):
                await queue.put((index, pair[1]))
            await queue.put((index, done))
        except BaseException as exc:
            await queue.put((index, exc))
            raise

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(tasks)
    try:
        while remaining:
            index, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _text_size(messages: list[dict]) -> int:
    """Characters of the messages' text contents (what templating and tokenizing take time over)."""
    size = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            size += sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return size


async def _off_loop(tokenize: Any, *args: Any, limit: int, where: str, **kwargs: Any) -> list[int]:
    """A large prompt's token ids from a worker thread; over the model's context is the client's error."""
    try:
        return await asyncio.to_thread(tokenize, *args, limit=limit, **kwargs)
    except PromptTooLongError as exc:
        size = f"{exc.num_tokens} tokens" if exc.num_tokens is not None else f"far more than {limit} tokens"
        raise InvalidRequestError(f"the prompt has {size}, the model's context is {limit}", where) from None
    except Exception as exc:  # template errors are the client's message structure
        what = "apply the chat template" if where == "messages" else "tokenize the prompt"
        raise InvalidRequestError(f"could not {what}: {exc}", where) from exc
