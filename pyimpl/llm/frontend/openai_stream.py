"""Postprocessing of one choice's token stream into OpenAI deltas, and aggregation of whole responses.

Per chunk: incremental detokenize -> stop strings -> reasoning split -> tool-call parse. Plain dicts
throughout; this is the per-token hot path.
"""
from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Callable

from pyimpl.llm.errors import EngineError, InvalidRequestError
from pyimpl.llm.frontend.completion_echo import PromptLogprobs, echo_text
from pyimpl.llm.frontend.protocol_types import EmbeddingRequest
from pyimpl.llm.frontend.protocols import GenerationRequest

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor

SPECIAL_TAG_PARSERS = ("mistral", "llama3_json")


def _token_text(tokenizer: Any, token_id: int, cache: dict[int, str]) -> str:
    text = cache.get(token_id)
    if text is None:
        text = cache[token_id] = tokenizer.decode([token_id], skip_special_tokens=False)
    return text


class ChoicePostprocessor:
    """Turns one choice's wire chunks into (delta, logprobs, finish_reason) in OpenAI terms."""

    def __init__(self, pre: Preprocessor, req: GenerationRequest, tool_call_parser: str | None,
                 reasoning_parser: str | None, token_text_cache: dict[int, str],
                 prompt_token_ids: list[int] = (), eos_token_ids: list[int] = ()):
        tools_active = bool(tool_call_parser and req.kind == "chat" and req.tools)
        # Tool tags that are special tokens ([TOOL_CALLS], <|python_tag|>) must survive decoding.
        skip_special = req.skip_special_tokens and not (tools_active and tool_call_parser in SPECIAL_TAG_PARSERS)
        self.det = pre.detokenizer(skip_special_tokens=skip_special, prompt_token_ids=prompt_token_ids)
        self.eos_token_ids = frozenset(eos_token_ids)
        self.stopper = None
        if req.stop:
            from pyimpl.llm.text.stop_strings import StopStringMatcher
            self.stopper = StopStringMatcher(req.stop, include_stop_str_in_output=req.include_stop_str_in_output)
        self.reasoning = self.tools = None
        if reasoning_parser and req.kind == "chat":
            from pyimpl.llm.text.parsers import get_reasoning_parser
            self.reasoning = get_reasoning_parser(reasoning_parser)()
        if tools_active:
            from pyimpl.llm.text.parsers import get_tool_call_parser
            self.tools = get_tool_call_parser(tool_call_parser)()
        self.chat = req.kind == "chat"
        self.want_logprobs = req.logprobs
        self.tokenizer = pre.tokenizer if req.logprobs else None
        self.token_text_cache = token_text_cache
        self.num_tokens = 0
        self.num_tool_calls = 0
        self.text_offset = 0    # completions logprobs: where the next token's text starts in the choice's text
        self.echo_only = req.echo_only      # completions max_tokens 0: the worker's one token is dropped
        self.echo: PromptLogprobs | None = None     # completions echo + logprobs: the prompt goes first
        if req.echo and req.logprobs and not self.chat:
            self.echo = PromptLogprobs(pre, echo_text(pre, req.prompt, list(prompt_token_ids)), list(prompt_token_ids),
                                       req.skip_special_tokens, self._token_text)
            self.text_offset = len(self.echo.text)

    def on_chunk(self, chunk: dict) -> tuple[dict | None, Any, str | None]:
        """One wire chunk in; the delta to send (or None), its logprobs, and the finish reason if done."""
        token_ids = chunk["token_ids"]
        reason = chunk.get("finish_reason")
        if reason == "error":
            raise EngineError(chunk.get("error") or "the engine failed")
        echoed = self.echo.take(chunk) if self.echo is not None else None
        if self.echo_only:
            token_ids, reason = [], "length" if reason is not None else None
            chunk = {"token_ids": []}
        self.num_tokens += len(token_ids)
        if reason is not None:
            text = self.det.add([t for t in token_ids if t not in self.eos_token_ids]) + self.det.flush()
        else:
            text = self.det.add(token_ids) if token_ids else ""
        if self.stopper is not None:
            text, hit = self.stopper.feed(text)
            if hit:
                reason = "stop"
            elif reason is not None:
                text += self.stopper.flush()
        logprobs = self._logprobs(token_ids, chunk) if self.want_logprobs and "log_probs" in chunk else None
        if echoed is not None:
            text, logprobs = echoed[0] + text, _joined(echoed[1], logprobs)
        if not self.chat:
            return ({"text": text} if text or reason or logprobs else None), logprobs, reason
        return self._chat_delta(text, reason is not None), logprobs, self._finish_reason(reason)

    def _chat_delta(self, text: str, final: bool) -> dict | None:
        delta: dict = {}
        reasoning = ""
        if self.reasoning is not None:
            parsed = self.reasoning.feed(text) if text else None
            text, reasoning = (parsed.content, parsed.reasoning_content) if parsed else ("", "")
            if final:
                end = self.reasoning.finish()
                text, reasoning = text + end.content, reasoning + end.reasoning_content
        pieces = []
        if self.tools is not None:
            parsed = self.tools.feed(text) if text else None
            text, pieces = (parsed.content, list(parsed.tool_call_deltas)) if parsed else ("", [])
            if final:
                end = self.tools.finish()
                text, pieces = text + end.content, pieces + list(end.tool_call_deltas)
        if reasoning:
            delta["reasoning_content"] = reasoning
        if text:
            delta["content"] = text
        if pieces:
            delta["tool_calls"] = [_tool_call_piece(p) for p in pieces]
            self.num_tool_calls = max(self.num_tool_calls, pieces[-1].index + 1)
        return delta or None

    def _finish_reason(self, reason: str | None) -> str | None:
        if reason == "stop" and self.num_tool_calls:
            return "tool_calls"
        if reason == "abort":
            return "stop"
        return reason

    def _logprobs(self, token_ids: list[int], chunk: dict) -> Any:
        lps = chunk.get("log_probs") or []
        tops = chunk.get("top_logprobs") or [[] for _ in lps]
        text_of = self._token_text
        if self.chat:
            return [{"token": text_of(t), "logprob": lp, "bytes": list(text_of(t).encode()),
                     "top_logprobs": [{"token": text_of(tt), "logprob": tl, "bytes": list(text_of(tt).encode())}
                                      for tt, tl in top]}
                    for t, lp, top in zip(token_ids, lps, tops)]
        tokens = [text_of(t) for t in token_ids]
        offsets = []
        for token in tokens:
            offsets.append(self.text_offset)
            self.text_offset += len(token)
        return {"tokens": tokens, "token_logprobs": list(lps), "text_offset": offsets,
                "top_logprobs": [{text_of(tt): tl for tt, tl in top} for top in tops]}


    def _token_text(self, token_id: int) -> str:
        return _token_text(self.tokenizer, token_id, self.token_text_cache)


def _joined(first: dict, then: dict | None) -> dict:
    """Completions logprobs of the echoed prompt followed by those of the generated tokens."""
    return first if then is None else {key: first[key] + then[key] for key in first}


def _tool_call_piece(piece: Any) -> dict:
    """A streamed tool call piece as OpenAI sends it: the first of a call has id, type and name."""
    if piece.id is None:
        return {"index": piece.index, "function": {"arguments": piece.arguments}}
    return {"index": piece.index, "id": piece.id, "type": "function",
            "function": {"name": piece.name, "arguments": piece.arguments}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    """OpenAI usage object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _fold(chunks: list[dict], new_choice: Callable[[int], dict], add: Callable[[dict, dict], None]) -> dict:
    """The whole response's skeleton from streamed chunks: `add(choice, part)` folds each chunk's part of a
    choice into the choice (made by `new_choice(index)`); the usage chunk and finish reasons are taken here."""
    choices: dict[int, dict] = {}
    whole = {"id": chunks[0]["id"], "object": "", "created": chunks[0]["created"], "model": chunks[0]["model"],
             "choices": choices, "usage": None}
    for chunk in chunks:
        if "usage" in chunk and chunk["usage"]:
            whole["usage"] = chunk["usage"]
        for c in chunk["choices"]:
            index = c["index"]
            if index in choices:
                choice = choices[index]
            else:
                choice = choices[index] = {**new_choice(index), "logprobs": None, "finish_reason": None}
            add(choice, c)
            if "finish_reason" in c and c["finish_reason"]:
                choice["finish_reason"] = c["finish_reason"]
    return whole


def _add_chat(choice: dict, c: dict) -> None:
    delta = c["delta"]
    content = delta.get("content")
    if content:
        choice["content"].append(content)
    if "reasoning_content" in delta and delta["reasoning_content"]:   # `in` first: most deltas are content only
        choice["reasoning"].append(delta["reasoning_content"])
    for piece in ("tool_calls" in delta and delta["tool_calls"]) or ():   # a call's pieces join by index
        call = choice["tool_calls"].get(piece["index"])
        if call is None:
            choice["tool_calls"][piece["index"]] = {"id": piece.get("id"), "type": "function",
                                                    "function": dict(piece["function"])}
        else:
            call["function"]["arguments"] += piece["function"]["arguments"]
    if "logprobs" in c and c["logprobs"]:
        choice["logprobs"] = choice["logprobs"] or {"content": []}
        choice["logprobs"]["content"].extend(c["logprobs"]["content"])


def aggregate_chat(chunks: list[dict]) -> dict:
    """A non-streaming chat.completion built from the chunks of a streamed one."""
    whole = _fold(chunks, lambda i: {"index": i, "content": [], "reasoning": [], "tool_calls": {}}, _add_chat)
    out = []
    for index, c in sorted(whole["choices"].items()):
        message: dict = {"role": "assistant", "content": "".join(c["content"]) or None}
        if c["reasoning"]:
            message["reasoning_content"] = "".join(c["reasoning"])
        if c["tool_calls"]:
            message["tool_calls"] = [call for _, call in sorted(c["tool_calls"].items())]
        elif message["content"] is None:
            message["content"] = ""
        out.append({"index": index, "message": message, "logprobs": c["logprobs"],
                    "finish_reason": c["finish_reason"]})
    return {**whole, "object": "chat.completion", "choices": out}


def _add_text(choice: dict, c: dict) -> None:
    choice["text"].append(c["text"])
    if c.get("logprobs"):
        lp = choice["logprobs"] = choice["logprobs"] or {"tokens": [], "token_logprobs": [], "text_offset": [],
                                                         "top_logprobs": []}
        for key in ("tokens", "token_logprobs", "text_offset", "top_logprobs"):
            lp[key].extend(c["logprobs"][key])


def aggregate_completion(chunks: list[dict]) -> dict:
    """A non-streaming text_completion built from streamed chunks."""
    whole = _fold(chunks, lambda i: {"index": i, "text": []}, _add_text)
    out = [dict(c, text="".join(c["text"])) for _, c in sorted(whole["choices"].items())]
    return {**whole, "object": "text_completion", "choices": out}


def encode_embedding(vector: list[float], encoding_format: str) -> Any:
    """A float list, or base64 of little-endian float32 as OpenAI sends for encoding_format=base64."""
    if encoding_format == "base64":
        import array
        packed = array.array("f", vector)
        return base64.b64encode(packed.tobytes()).decode()
    return vector


def embedding_response(req: EmbeddingRequest, result: dict | None) -> dict:
    """The /v1/embeddings body from the embedding worker's answer; `dimensions` other than the model's own size
    is a 400 (these models are not trained for truncated embeddings, so none is made up)."""
    if not result or "embeddings" not in result:
        raise EngineError("the embedding worker returned nothing")
    vectors = result["embeddings"]
    size = len(vectors[0]) if vectors else 0
    if req.dimensions is not None and req.dimensions != size:
        raise InvalidRequestError(f"'dimensions': model '{req.model}' makes {size}-dimensional embeddings and "
                                  f"cannot shorten them; leave 'dimensions' out or set it to {size}", "dimensions")
    encoding = req.encoding_format or "float"
    data = [{"object": "embedding", "index": i, "embedding": encode_embedding(v, encoding)}
            for i, v in enumerate(vectors)]
    tokens = int(result.get("prompt_tokens", 0))
    return {"object": "list", "data": data, "model": req.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
