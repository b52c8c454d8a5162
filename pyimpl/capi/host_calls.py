"""The blocking host calls of the C ABI (dynamo_tokenize, dynamo_detokenize, dynamo_apply_chat_template,
dynamo_model_info*, dynamo_embeddings, dynamo_chat_completion_sync): each runs on the runtime's loop and
answers with bytes C hands to the host (capi/src/host_text.c)."""
from __future__ import annotations

import asyncio
import json
import weakref
from array import array
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import msgspec

from pyimpl.capi.session import RuntimeSession
from pyimpl.capi.status import ERR_INVALID_ARGUMENT, ERR_INVALID_HANDLE, ERR_NOT_FOUND, ERR_UNAVAILABLE, CapiError

OP_TOKENIZE, OP_DETOKENIZE, OP_CHAT_TEMPLATE, OP_MODEL_INFO, OP_EMBEDDINGS, OP_CHAT_SYNC = 1, 2, 3, 4, 5, 6
_encode = msgspec.json.Encoder().encode
# len() of a tokenizer can build its whole vocabulary (ms for 150k tokens): once per preprocessor
_VOCAB_SIZES: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


@dataclass
class Answer:
    """What one host call hands back: bytes for the host, plus the struct fields of a model info or
    the floats of embeddings (C builds those from them)."""

    data: bytes = b""
    info: dict | None = None
    embeddings: tuple[array, int, int, int, str] | None = None  # floats, count, dims, prompt tokens, model


class HostCalls:
    """Runs the host calls against the RuntimeSession of a C runtime handle."""

    def __init__(self, sessions: dict[int, RuntimeSession], call: Callable[[Awaitable[Any]], Any]):
        self.sessions, self.call = sessions, call  # call: run a coroutine on the loop, wait for it

    def run(self, runtime: int, op: int, model: str, arg: bytes, flag: bool) -> Answer:
        """The answer of operation `op` (an OP_* value); CapiError or the serving layer's errors on failure."""
        session = self.sessions.get(runtime)
        if session is None:
            raise CapiError(ERR_INVALID_HANDLE, "invalid runtime handle")
        handler = _HANDLERS.get(op)
        if handler is None:
            raise CapiError(ERR_INVALID_ARGUMENT, f"unknown host call {op}")
        try:
            return self.call(handler(session, model or None, arg, flag))
        except TimeoutError:
            raise CapiError(ERR_UNAVAILABLE, "the call did not complete in time") from None


def _manager(session: RuntimeSession) -> Any:
    if session.models is None:
        raise CapiError(ERR_NOT_FOUND, "this runtime serves no model (config serve_model=false)")
    return session.models


def _entry(session: RuntimeSession, model: str | None) -> Any:
    """The served model entry named `model` (None: the only one)."""
    models = _manager(session)
    if model is None:
        names = models.model_names()
        if not names:
            raise CapiError(ERR_NOT_FOUND, "this runtime serves no model yet")
        if len(names) > 1:
            raise CapiError(ERR_INVALID_ARGUMENT, f"this runtime serves {len(names)} models ({', '.join(names)}): "
                                                  "name one")
        model = names[0]
    entry = models.models.get(model)
    if entry is None:
        raise CapiError(ERR_NOT_FOUND, f"The model '{model}' does not exist")
    return entry


async def _preprocessor(session: RuntimeSession, model: str | None) -> Any:
    entry = _entry(session, model)
    return await _manager(session).preprocessor(entry.card)


def _json(arg: bytes, what: str) -> Any:
    try:
        return json.loads(arg)
    except ValueError as exc:
        raise CapiError(ERR_INVALID_ARGUMENT, f"{what} is not valid JSON: {exc}.") from None


async def _tokenize(session: RuntimeSession, model: str | None, arg: bytes, add_special: bool) -> Answer:
    from pyimpl.llm.text.preprocessor import LARGE_TEXT
    pre = await _preprocessor(session, model)
    text = arg.decode()
    if len(text) >= LARGE_TEXT:  # seconds for MiBs: off the loop (the batch encode releases the GIL)
        ids = await asyncio.to_thread(pre.tokenize, text, add_special)
    else:
        ids = pre.tokenize(text, add_special)
    return Answer(array("I", ids).tobytes())


async def _detokenize(session: RuntimeSession, model: str | None, arg: bytes, skip_special: bool) -> Answer:
    pre = await _preprocessor(session, model)
    ids = array("I")
    ids.frombytes(arg)
    vocab = _VOCAB_SIZES.get(pre)
    if vocab is None:
        vocab = _VOCAB_SIZES[pre] = len(pre.tokenizer)
    bad = next((i for i in ids if i >= vocab), None)
    if bad is not None:
        raise CapiError(ERR_INVALID_ARGUMENT, f"token id {bad} is outside the vocabulary ({vocab} tokens)")
    return Answer(pre.decode(ids.tolist(), skip_special_tokens=skip_special).encode(errors="replace"))


async def _chat_template(session: RuntimeSession, model: str | None, arg: bytes, add_prompt: bool) -> Answer:
    body = _json(arg, "messages_json")
    tools = None
    if isinstance(body, dict):
        model = model or (body.get("model") if isinstance(body.get("model"), str) else None)
        body, tools = body.get("messages"), body.get("tools")
    if not isinstance(body, list):
        raise CapiError(ERR_INVALID_ARGUMENT, "messages_json must be a JSON array of messages or a chat request "
                                              "with \"messages\"")
    pre = await _preprocessor(session, model)
    try:
        text = pre.render_chat(body, tools=tools, add_generation_prompt=add_prompt)
    except (ValueError, TypeError) as exc:
        raise CapiError(ERR_INVALID_ARGUMENT, str(exc)) from None
    return Answer(text.encode(errors="replace"))


async def _model_info(session: RuntimeSession, model: str | None, arg: bytes, flag: bool) -> Answer:
    from pyimpl.llm.model_facts import read_model_facts
    card = _entry(session, model).card
    facts = await asyncio.to_thread(read_model_facts, card.model_path)
    local = session.served is not None and session.served.card.name == card.name  # its engine runs here
    engine = session.stats()["engine"] if local and card.model_type != "embedding" else None
    info = {"name": card.name, "model_type": card.model_type, "context_length": card.context_length,
            "vocab_size": facts.vocab_size or None, "eos_token_ids": list(card.eos_token_ids),
            "architecture": facts.architecture, "dtype": facts.dtype,
            "kv_block_size": card.kv_block_size if card.model_type != "embedding" else None,
            "kv_total_blocks": (engine or {}).get("kv_blocks_total"), "has_chat_template": facts.has_chat_template,
            "model_path": card.model_path}
    return Answer(_encode(info), info=info)


async def _embeddings(session: RuntimeSession, model: str | None, arg: bytes, flag: bool) -> Answer:
    request = _json(arg, "request_json")
    request = {**request, "encoding_format": "float"}
    if "model" not in request:
        request["model"] = _entry(session, None).name
    body = await _manager(session).embeddings(request)
    vectors = [item["embedding"] for item in body["data"]]
    dims = len(vectors[0]) if vectors else 0
    floats = array("f")
    for vector in vectors:
        floats.extend(vector)
    tokens = int(body.get("usage", {}).get("prompt_tokens", 0))
    return Answer(embeddings=(floats, len(vectors), dims, tokens, str(body.get("model", ""))))


async def _chat_sync(session: RuntimeSession, model: str | None, arg: bytes, flag: bool) -> Answer:
    from pyimpl.llm.frontend.openai_stream import aggregate_chat
    from pyimpl.llm.frontend.protocols import with_usage
    request = _json(arg, "request_json")
    chunks = [chunk async for chunk in session.chat(with_usage(request))]
    return Answer(_encode(aggregate_chat(chunks)))


_HANDLERS: dict[int, Callable[[RuntimeSession, str | None, bytes, bool], Awaitable[Answer]]] = {
    OP_TOKENIZE: _tokenize, OP_DETOKENIZE: _detokenize, OP_CHAT_TEMPLATE: _chat_template,
    OP_MODEL_INFO: _model_info, OP_EMBEDDINGS: _embeddings, OP_CHAT_SYNC: _chat_sync,
}
