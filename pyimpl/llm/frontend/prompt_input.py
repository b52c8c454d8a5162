"""A request's prompt as token ids: system hints for response_format/tool_choice (and the `guided_decoding`
constraint that enforces them worker-side), a cache of recent conversations' templated ids, large prompts
tokenized off the event loop, token-id prompts checked."""
from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Iterable

import msgspec

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.text.preprocessor import PromptTooLongError

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor

PROMPT_CACHE_SIZE = 512
JSON_OBJECT_HINT = "Respond only with a single valid JSON object."
_encode_key = msgspec.msgpack.Encoder().encode


class ChatPromptCache:
    """Template + tokenize, remembering recent conversations (rendering costs more than the rest of a request)."""

    def __init__(self, size: int = PROMPT_CACHE_SIZE) -> None:
        self.size = size
        self._cache: OrderedDict[tuple, tuple[int, ...]] = OrderedDict()

    def token_ids(self, model_path: str, pre: Preprocessor, messages: list[dict], tools: list[dict] | None) -> list[int]:
        """The chat template applied to `messages` and tokenized; a template error is the client's 400."""
        try:
            key = (model_path, _encode_key(messages), _encode_key(tools))
        except (TypeError, OverflowError, msgspec.EncodeError):  # e.g. an int beyond 64 bits: no caching
            key = None
        cached = self._cache.get(key) if key is not None else None
        if cached is not None:
            self._cache.move_to_end(key)
            return list(cached)
        try:
            prompt_ids = pre.chat_token_ids(messages, tools=tools)
        except Exception as exc:  # template errors are the client's message structure
            raise InvalidRequestError(f"could not apply the chat template: {exc}", "messages") from exc
        if key is not None:
            self._cache[key] = tuple(prompt_ids)
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return prompt_ids


def format_hint(response_format: dict | None) -> str | None:
    """response_format json_object/json_schema as an instruction (both are also enforced: guided_decoding)."""
    if not response_format or response_format.get("type") not in ("json_object", "json_schema"):
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return JSON_OBJECT_HINT + (f" It must follow this JSON schema: {json.dumps(schema)}" if schema else "")


def tool_choice_hint(tool_choice: Any) -> str | None:
    """tool_choice "required" or a named function, as an instruction to the model (enforced: guided_decoding)."""
    if tool_choice == "required":
        return "You must call one of the provided tools."
    if isinstance(tool_choice, dict):
        return f"You must call the function {tool_choice['function']['name']}."
    return None


def guided_decoding(response_format: dict | None, tools: list[dict] | None, tool_choice: Any) -> dict | None:
    """The worker-side constraint (docs/INTERFACES.md `guided_decoding`) for what the hints above ask: a required
    or named tool_choice as tool calls in the model's format, else a json_schema / json_object response format,
    else (tool_choice auto with a `strict` tool) free text or calls whose arguments match the tools' schemas."""
    offered = [{"name": t["function"]["name"], "parameters": t["function"].get("parameters")} for t in tools or ()]
    if tools and (tool_choice == "required" or isinstance(tool_choice, dict)):
        name = tool_choice["function"]["name"] if isinstance(tool_choice, dict) else None
        return {"tool_call": {"tools": offered, "name": name}}
    kind = (response_format or {}).get("type")
    schema = ((response_format or {}).get("json_schema") or {}).get("schema")
    if kind == "json_schema" and isinstance(schema, dict):
        return {"json_schema": schema}
    if kind in ("json_object", "json_schema"):
        return {"json_object": True}
    if tools and tool_choice in (None, "auto") and any(t["function"].get("strict") for t in tools):
        return {"tool_call": {"tools": offered, "name": None, "auto": True}}
    return None


def text_size(messages: list[dict]) -> int:
    """Characters of the messages' text contents (what templating and tokenizing take time over)."""
    size = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            size += sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return size


async def tokenize_off_loop(tokenize: Any, *args: Any, limit: int, where: str, **kwargs: Any) -> list[int]:
    """A large prompt's token ids from a worker thread; over the model's context is the client's error."""
    try:
        return await asyncio.to_thread(tokenize, *args, limit=limit, **kwargs)
    except PromptTooLongError as exc:
        size = f"{exc.num_tokens} tokens" if exc.num_tokens is not None else f"far more than {limit} tokens"
        raise InvalidRequestError(f"the prompt has {size}, the model's context is {limit}", where) from None
    except Exception as exc:  # template errors are the client's message structure
        what = "apply the chat template" if where == "messages" else "tokenize the prompt"
        raise InvalidRequestError(f"could not {what}: {exc}", where) from exc


def check_vocabulary(token_ids: Iterable[int], vocab_size: int, param: str = "prompt") -> None:
    """Token ids a request names (a prompt, logit_bias keys) must be the model's tokens (an id past the vocabulary
    broke decoding: a 500); a 400 naming `param` otherwise."""
    bad = next((t for t in token_ids if t >= vocab_size), None)
    if bad is not None:
        raise InvalidRequestError(f"'{param}': token id {bad} is outside the vocabulary [0, {vocab_size})", param)


def load_preprocessor(model_path: str) -> Preprocessor:
    """Import (transformers is slow to import) and load in a worker thread, off the event loop."""
    from pyimpl.llm.text.preprocessor import Preprocessor
    return Preprocessor.from_model_dir(model_path)
