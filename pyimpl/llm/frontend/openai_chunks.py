"""Post-processing of worker streams into OpenAI chunks (chat and text completions, n choices, usage)."""
from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, AsyncIterator

from pyimpl.llm.errors import NoWorkerError
from pyimpl.llm.model_card import ModelCard
from pyimpl.llm.frontend.completion_echo import echo_text
from pyimpl.llm.frontend.openai_stream import ChoicePostprocessor, usage
from pyimpl.llm.frontend.protocols import GenerationRequest
from pyimpl.llm.frontend.worker_streams import ChoiceStream, instance_lost, merge_streams

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor


async def openai_chunks(req: GenerationRequest, card: ModelCard, pre: Preprocessor, prompt_ids: list[int],
                        streams: list[ChoiceStream], texts: dict[int, str], *, token_ids: bool = False,
                        cancelled_finish: bool = False) -> AsyncIterator[dict]:
    """OpenAI chunks (chat.completion.chunk or text_completion) of a request's n worker streams: the role and echo
    chunks, one chunk per choice delta, each choice's own finish, the usage chunk; an abort is never a normal end.
    For an embedding host (the C ABI): token_ids puts in each choice the ids its delta came from (ids whose text
    is held back go with the next chunk of that choice, none is lost); cancelled_finish ends every unfinished
    choice with finish_reason "cancelled" when the serving side cuts the request short (an abort, a worker
    stream ending early, its instance lost), before the error."""
    posts = [ChoicePostprocessor(pre, req, card.tool_call_parser, card.reasoning_parser, texts,
                                 prompt_ids, card.eos_token_ids) for _ in range(req.n)]
    chat = req.kind == "chat"
    chunk_id = f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}"
    base = {"id": chunk_id, "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()), "model": req.model}
    if chat:
        yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None, "finish_reason": None} for i in range(req.n)]}
    if req.echo and not chat and not req.logprobs:   # with logprobs the prompt goes with each choice's first delta
        text = echo_text(pre, req.prompt, prompt_ids)
        yield {**base, "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": None}
                                   for i in range(req.n)]}
    items = merge_streams(streams) if req.n > 1 else streams[0].pairs()
    unfinished = set(range(req.n))
    pending: list[list[int]] = [[] for _ in range(req.n)]   # token ids not yet handed out, per choice
    lost: Exception | None = None
    try:
        try:
            async for index, data in items:
                if index not in unfinished:
                    continue
                aborted = data.get("finish_reason") == "abort"  # cut short by the serving side (worker shutdown)
                if aborted:
                    data = dict(data, finish_reason=None)   # its last tokens still count
                if token_ids:
                    pending[index].extend(data.get("token_ids") or ())
                delta, logprobs, reason = posts[index].on_chunk(data)
                if delta is not None or reason is not None or logprobs is not None:
                    if chat:
                        choice = {"index": index, "delta": delta or {},
                                  "logprobs": {"content": logprobs} if logprobs is not None else None,
                                  "finish_reason": reason}
                    else:
                        choice = {"index": index, "text": (delta or {}).get("text", ""), "logprobs": logprobs,
                                  "finish_reason": reason}
                    if token_ids:
                        choice["token_ids"], pending[index] = pending[index], []
                    yield {**base, "choices": [choice]}
                    if reason is not None:
                        unfinished.discard(index)
                if not unfinished or aborted:
                    break
        except Exception as exc:
            if not instance_lost(exc):
                raise
            lost = exc
        if unfinished:  # aborted, instance lost, or streams ended before every choice did: never a normal end
            if cancelled_finish:
                for i in sorted(unfinished):
                    yield {**base, "choices": [_cancelled_choice(chat, i, pending[i] if token_ids else None)]}
            if lost is not None:
                raise lost
            raise NoWorkerError(f"the worker serving '{req.model}' stopped before the response was complete")
    finally:
        await items.aclose()
    if req.include_usage:
        yield {**base, "choices": [], "usage": usage(len(prompt_ids), sum(p.num_tokens for p in posts))}


def _cancelled_choice(chat: bool, index: int, token_ids: list[int] | None) -> dict:
    """The last chunk's choice of a choice the serving side cut short."""
    choice: dict = ({"index": index, "delta": {}, "logprobs": None, "finish_reason": "cancelled"} if chat
                    else {"index": index, "text": "", "logprobs": None, "finish_reason": "cancelled"})
    if token_ids is not None:
        choice["token_ids"] = token_ids
    return choice
