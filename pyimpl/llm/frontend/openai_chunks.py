"""Post-processing of worker streams into OpenAI chunks (chat and text completions, n choices, usage)."""
from __future__ import annotations

import secrets
import time
from typing import Any, AsyncIterator

from pyimpl.llm.errors import NoWorkerError
from pyimpl.llm.model_card import ModelCard
from pyimpl.llm.frontend.openai_stream import ChoicePostprocessor, usage
from pyimpl.llm.frontend.protocols import GenerationRequest
from pyimpl.llm.frontend.worker_streams import merge_streams, single_stream


async def openai_chunks(req: GenerationRequest, card: ModelCard, pre: Any, prompt_ids: list[int],
                        streams: list[Any], texts: dict[int, str]) -> AsyncIterator[dict]:
    """OpenAI chunks (chat.completion.chunk or text_completion) of a request's n worker streams: the role and echo
    chunks, one chunk per choice delta, each choice's own finish, the usage chunk; an abort is never a normal end."""
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
    items = merge_streams(streams) if req.n > 1 else single_stream(streams[0])
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
