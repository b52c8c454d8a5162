"""The client side of the chaos benchmark and the migration tests: streamed completions of distinct-token
prompts, and each stream's verdict against an unbroken run of the same prompt."""
from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

MODEL = "chaos"


@dataclass
class StreamResult:
    """What one streamed completion gave its client."""

    text: str = ""
    chunks: int = 0
    finished: bool = False      # a finish_reason arrived and then [DONE]
    error: str | None = None    # HTTP status or SSE error event


def prompt_ids(i: int, length: int = 24) -> list[int]:
    """Distinct token ids (ordinary vocabulary of the tiny model) for prompt number i."""
    start = 300 + (i * 37) % 1200
    return list(range(start, start + length))


async def stream_completion(http: httpx.AsyncClient, base_url: str, prompt: list[int], max_tokens: int,
                            progress: list[int] | None = None, slot: int = 0) -> StreamResult:
    """One streaming /v1/completions request; progress[slot] counts its chunks as they arrive."""
    result, done, reason = StreamResult(), False, None
    body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "stream": True}
    try:
        async with http.stream("POST", f"{base_url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code}"
                return result
            event = None
            async for line in response.aiter_lines():
                if not line:
                    event = None              # an SSE event ends at its blank line
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                    if event == "error":
                        result.error = result.error or data
                    elif data == "[DONE]":
                        done = True
                    else:
                        choice = json.loads(data)["choices"][0]
                        result.text += choice.get("text") or ""
                        reason = choice.get("finish_reason") or reason
                        result.chunks += 1
                        if progress is not None:
                            progress[slot] += 1
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.finished = done and reason is not None and result.error is None
    return result


def classify(result: StreamResult, expected: str) -> str:
    if result.error is not None:
        return "failed"
    if not result.finished:
        return "incomplete"
    return "ok" if result.text == expected else "wrong"
