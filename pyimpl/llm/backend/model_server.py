"""Serve a model over the runtime: the engine behind the worker wire format, plus its model card.

`serve_model` is what `python -m pyimpl.worker` and the C ABI's embedded mode call.
"""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from pyimpl.llm.model_card import ModelCard, card_key, read_model_config

log = logging.getLogger(__name__)


def _split_endpoint(endpoint: str) -> tuple[str, str, str]:
    parts = endpoint.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"endpoint must be 'namespace.component.endpoint', got {endpoint!r}")
    return parts[0], parts[1], parts[2]


def sampling_params_from_wire(request: dict, params_cls: type) -> Any:
    """Build the engine's SamplingParams from a wire request, dropping fields it does not know."""
    known = {f.name for f in dataclasses.fields(params_cls)}
    merged = dict(request.get("sampling_options") or {})
    merged.update(request.get("stop_conditions") or {})
    top = (request.get("output_options") or {}).get("logprobs")
    if top is not None:
        merged["logprobs"] = top
    return params_cls(**{k: v for k, v in merged.items() if k in known and v is not None})


class GuidedDecoding:
    """Builds per-request logits processors for `guided_decoding`; the tokenizer is loaded once, on first use."""

    def __init__(self, model_path: str, eos_token_ids: list[int]):
        self.model_path, self.eos_token_ids = model_path, list(eos_token_ids)
        self._tokenizer: Any = None

    async def processors(self, request: dict) -> list | None:
        """The processors `request["guided_decoding"]` asks for, or None."""
        if not (request.get("guided_decoding") or {}).get("json_object"):
            return None
        if self._tokenizer is None:
            self._tokenizer = await asyncio.to_thread(_load_tokenizer, self.model_path)
        from pyimpl.llm.backend.guided_json import json_object_processor
        return [json_object_processor(self._tokenizer, self.eos_token_ids)]


def _load_tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer
    from pyimpl.llm.engine.gguf_cache import resolve_model_dir
    from pyimpl.llm.backend.guided_json import token_texts
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(model_path), local_files_only=True)
    token_texts(tokenizer)  # warm the per-tokenizer cache off the event loop
    return tokenizer


class GenerateHandler:
    """The runtime handler: wire request in, wire response chunks out, one per engine step."""

    def __init__(self, engine: Any, params_cls: type, guided: GuidedDecoding | None = None):
        self.engine, self.params_cls, self.guided = engine, params_cls, guided

    async def __call__(self, request: dict, context: Any = None) -> AsyncIterator[dict]:
        params = sampling_params_from_wire(request, self.params_cls)
        if self.guided is not None and hasattr(params, "logits_processors"):  # the mock engine ignores it
            params.logits_processors = await self.guided.processors(request)
        request_id = context.id() if context is not None else f"req-{random.getrandbits(48):x}"
        stream = self.engine.generate(request["token_ids"], params, request_id)
        try:
            async for out in stream:
                chunk = {"token_ids": out.new_token_ids,
                         "finish_reason": out.finish_reason if out.finished else None}
                if out.logprobs is not None:
                    chunk["log_probs"] = out.logprobs
                    chunk["top_logprobs"] = [[[t, lp] for t, lp in top.items()] for top in out.top_logprobs or ()]
                yield chunk
                if context is not None and context.is_stopped():
                    break
        finally:
            await stream.aclose()  # an early exit aborts the request in the engine


class StatsHandler:
    """Answers one dict of engine figures (abort_count included) on the worker's `stats` endpoint."""

    def __init__(self, engine: Any):
        self.engine = engine

    async def __call__(self, request: Any, context: Any = None) -> AsyncIterator[dict]:
        stats = self.engine.stats()
        figures = dataclasses.asdict(stats) if dataclasses.is_dataclass(stats) else dict(stats)
        figures["abort_count"] = getattr(self.engine, "abort_count", figures.get("num_aborted", 0))
        yield figures


@dataclass
class ServedModel:
    """A model being served: its card, engine and serving tasks; `await stop()` withdraws it."""

    runtime: Any
    card: ModelCard
    engine: Any
    card_key: str
    instance_keys: list[str] = field(default_factory=list)
    stopped: bool = False

    withdrawn: bool = False

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
        await self.engine.shutdown()


def build_engine(model_path: str, engine: str, config: dict, model_type: str, **engine_kwargs) -> tuple[Any, type]:
    """The engine object and its SamplingParams class for `engine` in {"torch", "mock"}."""
    if model_type == "embedding":
        from pyimpl.llm.backend.embedding_engine import EmbeddingEngine
        return EmbeddingEngine(model_path), dict
    if engine == "mock":
        from pyimpl.llm.backend.mock_engine import MockEngine, MockSamplingParams
        return MockEngine(eos_token_ids=config["eos_token_ids"], max_model_len=config["context_length"],
                          vocab_size=config["vocab_size"], **engine_kwargs), MockSamplingParams
    if engine == "torch":
        from pyimpl.llm.engine import AsyncEngine, SamplingParams
        return AsyncEngine.from_pretrained(model_path, **engine_kwargs), SamplingParams
    raise ValueError(f"engine must be 'torch' or 'mock', got {engine!r}")


async def serve_model(rt: Any, model_path: str | Path, model_name: str | None = None,
                      endpoint: str = "dynamo.backend.generate", engine: str = "torch",
                      tool_call_parser: str | None = None, reasoning_parser: str | None = None,
                      model_type: str | None = None, **engine_kwargs) -> ServedModel:
    """Build the engine (or mock), serve it on `endpoint`, publish its card; returns a ServedModel."""
    model_path = str(Path(model_path).resolve())
    namespace, component, _ = _split_endpoint(endpoint)
    config = read_model_config(model_path)
    model_type = model_type or config["model_type"]
    core, params_cls = build_engine(model_path, engine, config, model_type, **engine_kwargs)
    gc.collect()
    gc.freeze()  # the loaded model's objects need no more collecting; full GCs would stall streams
    card = ModelCard(
        name=model_name or Path(model_path).name.removesuffix(".gguf"), model_path=model_path, endpoint=endpoint,
        model_type=model_type, context_length=getattr(core, "max_model_len", config["context_length"]),
        kv_block_size=getattr(core, "block_size", 16), tool_call_parser=tool_call_parser,
        reasoning_parser=reasoning_parser,
        eos_token_ids=list(getattr(core, "eos_token_ids", None) or config["eos_token_ids"]))
    guided = GuidedDecoding(model_path, card.eos_token_ids)
    handler = core.handler if model_type == "embedding" else GenerateHandler(core, params_cls, guided)
    endpoints = [rt.endpoint(endpoint), rt.endpoint(f"{namespace}.{component}.stats")]
    await endpoints[0].register(handler)
    await endpoints[1].register(StatsHandler(core))
    served = ServedModel(rt, card, core, card_key(card.name, rt.instance_id),
                         [ep.discovery_key(rt.instance_id) for ep in endpoints])
    await rt.discovery.put(served.card_key, card.to_dict())
    return served
