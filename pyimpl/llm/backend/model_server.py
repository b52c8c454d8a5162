"""Serve a model over the runtime: the engine behind the worker wire format, plus its model card.

`serve_model` is what `python -m pyimpl.worker` and the C ABI's embedded mode call. Engines are reached only
through engine_api's Protocols; the model folder's facts come from model_facts (one reader for all).
"""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from pyimpl.llm.backend.guided import GrammarLogitsProcessor, GuidedTokenizer, grammar_for
from pyimpl.llm.backend.engine_api import EmbedEngine, GenerateEngine, Handler, ServingEngine, WireContext
from pyimpl.llm.backend.kv_publisher import KvPublisher, start_kv_publisher
from pyimpl.llm.errors import EngineRequestError
from pyimpl.llm.model_card import ModelCard, card_key
from pyimpl.llm.text.parsers import check_parser_names, tool_call_parser_for_template
from pyimpl.llm.model_facts import ModelFacts, read_model_facts

if TYPE_CHECKING:
    from pyimpl.runtime import DistributedRuntime

log = logging.getLogger(__name__)
ENGINES = ("torch", "mock")


def _split_endpoint(endpoint: str) -> tuple[str, str, str]:
    parts = endpoint.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"endpoint must be 'namespace.component.endpoint', got {endpoint!r}")
    return parts[0], parts[1], parts[2]


class GuidedDecoding:
    """Builds per-request grammar processors (backend/guided, llguidance) for `guided_decoding`: json_object,
    json_schema, and required/named tool calls in the format of the model's `tool_call_parser` (after a reasoning
    block where its `reasoning_parser` has one). The tokenizer is loaded once, on first use, off the event loop."""

    def __init__(self, model_path: str, eos_token_ids: list[int], vocab_size: int,
                 tool_call_parser: str | None = None, reasoning_parser: str | None = None):
        self.model_path, self.eos_token_ids, self.vocab_size = model_path, list(eos_token_ids), vocab_size
        self.tool_call_parser, self.reasoning_parser = tool_call_parser, reasoning_parser
        self._tokenizer: GuidedTokenizer | None = None

    async def processors(self, request: dict) -> list | None:
        """The processors `request["guided_decoding"]` asks for, or None; a constraint that cannot be enforced
        (an invalid schema, a tool-call format without a grammar) is the client's EngineRequestError."""
        guided = request.get("guided_decoding")
        if not guided:
            return None
        if self._tokenizer is None:
            self._tokenizer = await asyncio.to_thread(self._load_tokenizer)
        processor = await asyncio.to_thread(self._processor, self._tokenizer, guided)
        return [processor] if processor is not None else None

    def _processor(self, tokenizer: GuidedTokenizer, guided: dict) -> GrammarLogitsProcessor | None:
        """None where `guided` only asks for what this model cannot enforce quietly (strict tools under auto)."""
        where = "tool_choice" if guided.get("tool_call") else "response_format"
        try:
            grammar = grammar_for(guided, self.tool_call_parser, tokenizer.added_tokens, self.reasoning_parser)
            if grammar is None:
                return None
            matcher = tokenizer.matcher(grammar)
        except ValueError as exc:
            raise EngineRequestError(f"'{where}' cannot be enforced: {exc}", where) from None
        return GrammarLogitsProcessor(matcher, self.vocab_size, self.eos_token_ids)

    def _load_tokenizer(self) -> GuidedTokenizer:
        from transformers import AutoTokenizer
        from pyimpl.llm.engine.gguf_cache import resolve_model_dir
        hf = AutoTokenizer.from_pretrained(resolve_model_dir(self.model_path), local_files_only=True)
        return GuidedTokenizer(hf, self.vocab_size, self.eos_token_ids)


class GenerateHandler:
    """The runtime handler: wire request in, wire response chunks out, one per engine step.

    `make_params` defaults to the engine's own; `guided` (the torch engine only: it has the logits-processor
    hook) enforces `guided_decoding`, other engines ignore it."""

    def __init__(self, engine: GenerateEngine, make_params: Callable[[dict], Any] | None = None,
                 guided: GuidedDecoding | None = None):
        self.engine, self.guided = engine, guided
        self.make_params = make_params or engine.make_params

    async def __call__(self, request: dict, context: WireContext | None = None) -> AsyncIterator[dict]:
        token_ids = request.get("token_ids")
        if not isinstance(token_ids, list):
            raise EngineRequestError("token_ids must be a list of token ids", "token_ids")
        params = self.make_params(request)
        if self.guided is not None:
            params.logits_processors = await self.guided.processors(request)
        request_id = context.id() if context is not None else f"req-{random.getrandbits(48):x}"
        stream = self.engine.generate(token_ids, params, request_id)
        try:
            async for out in stream:
                chunk: dict[str, Any] = {"token_ids": out.new_token_ids,
                                         "finish_reason": out.finish_reason if out.finished else None}
                if out.logprobs is not None:
                    chunk["log_probs"] = out.logprobs
                    chunk["top_logprobs"] = [[[t, lp] for t, lp in top.items()] for top in out.top_logprobs or ()]
                if out.prompt_logprobs is not None:   # output_options.prompt_logprobs, with the first output
                    chunk["prompt_logprobs"] = out.prompt_logprobs
                    chunk["prompt_top_logprobs"] = [None if top is None else [[t, lp] for t, lp in top.items()]
                                                    for top in out.prompt_top_logprobs or ()]
                yield chunk
                if context is not None and context.is_stopped():
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # an early exit aborts the request in the engine


def engine_figures(engine: ServingEngine) -> dict:
    """An engine's stats as one dict, `abort_count` included (the `stats` endpoint and the C ABI's stats)."""
    figures = dataclasses.asdict(engine.stats())  # type: ignore[call-overload]
    figures["abort_count"] = engine.abort_count
    return figures


class StatsHandler:
    """Answers engine_figures on the worker's `stats` endpoint."""

    def __init__(self, engine: ServingEngine):
        self.engine = engine

    async def __call__(self, request: Any, context: WireContext | None = None) -> AsyncIterator[dict]:
        yield engine_figures(self.engine)


@dataclass(frozen=True)
class BuiltEngine:
    """What build_engine made: the engine and the handler serving it on the generate endpoint."""

    engine: ServingEngine
    handler: Handler


def build_engine(model_path: str, engine: str, facts: ModelFacts, model_type: str,
                 tool_call_parser: str | None = None, reasoning_parser: str | None = None,
                 **engine_kwargs) -> BuiltEngine:
    """The engine for `engine` in ENGINES (or the embedding engine for an embedding model) and its handler;
    guided decoding makes required/named tool calls in `tool_call_parser`'s format, after `reasoning_parser`'s
    reasoning block."""
    if model_type == "embedding":
        from pyimpl.llm.backend.embedding_engine import EmbeddingEngine
        embedder: EmbedEngine = EmbeddingEngine(model_path, facts=facts)
        return BuiltEngine(embedder, embedder.handler)
    if engine == "mock":
        from pyimpl.llm.backend.mock_engine import MockEngine
        options = {"max_model_len": facts.context_length, **engine_kwargs}    # a bench may stretch the context
        mock = MockEngine(eos_token_ids=facts.eos_token_ids, vocab_size=facts.vocab_size, **options)
        return BuiltEngine(mock, GenerateHandler(mock))
    if engine == "torch":
        from pyimpl.llm.engine import AsyncEngine
        torch_engine = AsyncEngine.from_pretrained(model_path, **engine_kwargs)
        guided = GuidedDecoding(model_path, torch_engine.eos_token_ids, torch_engine.vocab_size, tool_call_parser,
                                reasoning_parser)
        return BuiltEngine(torch_engine, GenerateHandler(torch_engine, guided=guided))
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


@dataclass
class ServedModel:
    """A model being served: its card, engine and serving tasks; `await stop()` withdraws it."""

    runtime: DistributedRuntime
    card: ModelCard
    engine: ServingEngine
    card_key: str
    instance_keys: list[str] = field(default_factory=list)
    stopped: bool = False
    withdrawn: bool = False
    kv_publisher: KvPublisher | None = None

    def stats(self) -> dict:
        """The engine's figures (engine_figures)."""
        return engine_figures(self.engine)

    async def withdraw(self) -> None:
        """Remove the card and the endpoint instances from discovery: no new requests arrive. Idempotent."""
        if self.withdrawn:
            return
        self.withdrawn = True
        for key in [self.card_key, *self.instance_keys]:
            try:
                await self.runtime.discovery.delete(key)
            except Exception:  # the runtime may already be gone
                log.debug("discovery delete of %s failed", key, exc_info=True)

    async def stop(self) -> None:
        """Withdraw, then shut the engine down (in-flight requests end); idempotent."""
        if self.stopped:
            return
        self.stopped = True
        await self.withdraw()
        if self.kv_publisher is not None:
            await self.kv_publisher.close()
        await self.engine.shutdown()


async def serve_model(rt: DistributedRuntime, model_path: str | Path, model_name: str | None = None,
                      endpoint: str = "dynamo.backend.generate", engine: str = "torch",
                      tool_call_parser: str | None = None, reasoning_parser: str | None = None,
                      model_type: str | None = None, kv_events: bool = True, **engine_kwargs) -> ServedModel:
    """Build the engine (or mock), serve it on `endpoint`, publish its card; returns a ServedModel.
    A generate engine's load, and its KV events unless `kv_events` is False, go on the event plane
    (backend/kv_publisher.py) for KV-aware routing."""
    model_path = str(Path(model_path).resolve())
    namespace, component, _ = _split_endpoint(endpoint)
    check_parser_names(tool_call_parser, reasoning_parser)   # an unknown name fails here, not on every request
    facts = read_model_facts(model_path)
    tool_call_parser = tool_call_parser or tool_call_parser_for_template(facts.chat_template)
    model_type = model_type or facts.model_type
    # seconds of weight loading off the event loop: the loop's other streams go on meanwhile (a process
    # hosting several models loads one while another serves)
    built = await asyncio.to_thread(build_engine, model_path, engine, facts, model_type, tool_call_parser,
                                    reasoning_parser, **engine_kwargs)
    core = built.engine
    gc.collect()
    gc.freeze()  # the loaded model's objects need no more collecting; full GCs would stall streams
    card = ModelCard(
        name=model_name or Path(model_path).name.removesuffix(".gguf"), model_path=model_path, endpoint=endpoint,
        model_type=model_type, context_length=core.max_model_len, kv_block_size=core.block_size,
        tool_call_parser=tool_call_parser, reasoning_parser=reasoning_parser,
        eos_token_ids=list(core.eos_token_ids))
    endpoints = [rt.endpoint(endpoint), rt.endpoint(f"{namespace}.{component}.stats")]
    await endpoints[0].register(built.handler)
    await endpoints[1].register(StatsHandler(core))
    served = ServedModel(rt, card, core, card_key(card.name, rt.instance_id),
                         [ep.discovery_key(rt.instance_id) for ep in endpoints])
    if isinstance(core, GenerateEngine):
        served.kv_publisher, keys = await start_kv_publisher(rt, core, namespace, component, kv_events)
        served.instance_keys.extend(keys)
    await rt.discovery.put(served.card_key, card.to_dict())
    return served
