"""Preprocessing for a model folder: its tokenizer, its own chat template, tokenization and EOS ids.

Loads offline with transformers' AutoTokenizer; renders OpenAI-style messages (tools, tool calls
and tool results passed through) with `apply_chat_template`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from jinja2 import TemplateError
from transformers import AutoTokenizer

from .detokenizer import Detokenizer, detokenizer_for

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
LARGE_TEXT = 1 << 16  # chars from which tokenizing releases the GIL (callers run it off their event loop)


SAFETY = 4  # a text longer than limit * longest token * SAFETY cannot fit (normalizers shrink text by < 4x)


class PromptTooLongError(ValueError):
    """The text has more tokens than the caller's limit (counted before any list of ids is built;
    num_tokens None: so long that it was not even tokenized)."""

    def __init__(self, num_tokens: int | None, limit: int):
        super().__init__(f"the prompt has {num_tokens} tokens, more than {limit}" if num_tokens is not None
                         else f"the prompt is far longer than {limit} tokens")
        self.num_tokens, self.limit = num_tokens, limit


class Preprocessor:
    """Turns chat messages into prompt text and token ids, and makes detokenizers, for one model folder."""

    def __init__(self, tokenizer: Any, eos_token_ids: Sequence[int], model_dir: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.model_dir = model_dir
        self._eos_token_ids = list(eos_token_ids)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # tokenizer.json's own padding/truncation (sentence-transformers folders pad
            backend.no_padding()  # and cut at 128) would pad or cut the ids tokenize() returns
            backend.no_truncation()

    @classmethod
    def from_model_dir(cls, path: str | Path) -> "Preprocessor":
        """Load the tokenizer and chat template found in `path` (no network access).

        `path` may also be a .gguf file or a folder holding one: its converted folder is used (gguf_cache)."""
        from pyimpl.llm.model_facts import read_model_facts

        facts = read_model_facts(path)  # ValueError when the path does not exist
        if not Path(facts.folder).is_dir():
            raise ValueError(f"model folder not found: {path}")
        tokenizer = AutoTokenizer.from_pretrained(facts.folder, local_files_only=True)
        return cls(tokenizer, facts.eos_token_ids, facts.folder)

    @property
    def eos_token_ids(self) -> list[int]:
        """Token ids that end generation (model_facts' rule: generation_config.json, config.json, the tokenizer)."""
        return list(self._eos_token_ids)

    @property
    def has_chat_template(self) -> bool:
        """True when the model folder ships a chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render_chat(self, messages: Sequence[dict], tools: Sequence[dict] | None = None,
                    add_generation_prompt: bool = True, **template_kwargs: Any) -> str:
        """Render OpenAI-style messages (and tools) into the prompt text with the folder's template."""
        if not self.has_chat_template:
            raise ValueError("this model has no chat template; use completions instead of chat")
        try:
            return self.tokenizer.apply_chat_template(
                normalize_messages(messages), tools=normalize_tools(tools), tokenize=False,
                add_generation_prompt=add_generation_prompt, **template_kwargs)
        except TemplateError as e:   # e.g. the template's raise_exception("roles must alternate")
            raise ValueError(f"the chat template rejected these messages: {e}") from e

    def tokenize(self, text: str, add_special_tokens: bool = False, limit: int | None = None) -> list[int]:
        """Token ids of `text`; the chat template already adds BOS and the like, hence the default.
        More than `limit` tokens raises PromptTooLongError before the ids become a Python list."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:   # no Python overhead, no over-length warning (the caller checks length)
            if len(text) < LARGE_TEXT:
                encoding = backend.encode(text, add_special_tokens=add_special_tokens)
            else:  # encode holds the GIL for its whole run (seconds for MiBs); the batch calls release it
                if limit is not None and len(text) > limit * self._longest_token(backend) * SAFETY:
                    raise PromptTooLongError(None, limit)
                batch = getattr(backend, "encode_batch_fast", backend.encode_batch)  # no offsets: faster
                encoding = batch([text], add_special_tokens=add_special_tokens)[0]
            if limit is not None and len(encoding) > limit:
                raise PromptTooLongError(len(encoding), limit)
            return encoding.ids
        ids = list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens, verbose=False))
        if limit is not None and len(ids) > limit:
            raise PromptTooLongError(len(ids), limit)
        return ids

    def _longest_token(self, backend: Any) -> int:
        """Characters of the vocabulary's longest token (added tokens included), computed once."""
        longest = getattr(self, "_longest", None)
        if longest is None:
            longest = self._longest = max(map(len, backend.get_vocab(with_added_tokens=True)), default=1)
        return longest

    def chat_token_ids(self, messages: Sequence[dict], tools: Sequence[dict] | None = None,
                       limit: int | None = None, **template_kwargs: Any) -> list[int]:
        """Prompt token ids for a chat request, with the generation prompt appended (see tokenize's limit)."""
        return self.tokenize(self.render_chat(messages, tools=tools, **template_kwargs), limit=limit)

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Whole-sequence decode (non-streaming responses, tests)."""
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens,
                                     clean_up_tokenization_spaces=False)

    def detokenizer(self, skip_special_tokens: bool = True,
                    prompt_token_ids: Sequence[int] = ()) -> Detokenizer:
        """A fresh incremental detokenizer for one response stream."""
        return detokenizer_for(self.tokenizer, skip_special_tokens, prompt_token_ids)


def normalize_messages(messages: Sequence[dict]) -> list[dict]:
    """Validate OpenAI chat messages and shape them for HF templates; ValueError names the bad message.

    Text content parts are joined into one string; tool call arguments given as JSON strings are
    decoded into objects, which is what chat templates expect.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list")
    return [_normalize_message(i, m) for i, m in enumerate(messages)]


def normalize_tools(tools: Sequence[dict] | None) -> list[dict] | None:
    """Check OpenAI tool definitions (`{"type": "function", "function": {"name": ...}}`); None when empty."""
    if not tools:
        return None
    if not isinstance(tools, (list, tuple)):
        raise ValueError("tools must be a list")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function" \
                or not isinstance(function.get("name"), str):
            raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ..., 'parameters': ...}}}}")
    return list(tools)


def _normalize_message(index: int, message: Any) -> dict:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise ValueError(f"{where} must be an object")
    role = message.get("role")
    if role is None:
        raise ValueError(f"{where} is missing 'role'")
    if role not in ROLES:
        raise ValueError(f"{where} has unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}")
    out = dict(message)
    tool_calls = message.get("tool_calls")
    if "content" not in message and not (role == "assistant" and tool_calls):
        raise ValueError(f"{where} is missing 'content'")
    out["content"] = _content_text(where, message.get("content"), allow_none=role == "assistant")
    if tool_calls:
        if role != "assistant" or not isinstance(tool_calls, list):
            raise ValueError(f"{where}.tool_calls must be a list on an assistant message")
        out["tool_calls"] = [_normalize_tool_call(f"{where}.tool_calls[{j}]", c) for j, c in enumerate(tool_calls)]
    if role == "tool" and "tool_call_id" in message and not isinstance(message["tool_call_id"], str):
        raise ValueError(f"{where}.tool_call_id must be a string")
    return out


def _content_text(where: str, content: Any, allow_none: bool) -> str:
    if content is None and allow_none:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"{where}.content[{j}] must be a text part {{'type': 'text', 'text': ...}}")
            parts.append(part["text"])
        return "".join(parts)
    raise ValueError(f"{where}.content must be a string or a list of text parts")


def _normalize_tool_call(where: str, call: Any) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError(f"{where} must have function.name")
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ValueError(f"{where}.function.arguments is not valid JSON") from None
    return {**call, "type": call.get("type", "function"), "function": {**function, "arguments": arguments}}
