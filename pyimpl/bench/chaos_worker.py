"""A mock worker whose output is a function of the context alone, so a migrated request continues exactly.

The stock mock echoes the prompt from its first token, so a request re-sent with its generated tokens appended
would start over. This one copies like an induction head: the next token follows the first earlier occurrence of
the last token (none: the sequence's first token). For a prompt of distinct tokens that is the same cycling echo,
and prompt + any prefix of the output continues with the rest of it: the chaos benchmark and the migration tests
compare every stream with an unbroken run. `python -m pyimpl.bench.chaos_worker --model DIR [--step-delay-s S]`.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any, AsyncIterator

from pyimpl.llm.model_card import ModelCard, card_key


def next_token(seq: list[int], first: dict[int, int]) -> int:
    """The token after the first occurrence of seq[-1] (seq[0] when that occurrence is the last token)."""
    at = first[seq[-1]] + 1
    return seq[at] if at < len(seq) else seq[0]


def continue_sequence(prompt: list[int], count: int) -> list[int]:
    """The `count` tokens this worker generates after `prompt` (what a client of an unbroken run receives)."""
    seq, first = list(prompt), {}
    for i, t in enumerate(seq):
        first.setdefault(t, i)
    for _ in range(count):
        token = next_token(seq, first)
        first.setdefault(token, len(seq))
        seq.append(token)
    return seq[len(prompt):]


class CopyHandler:
    """Wire request in (docs/INTERFACES.md), one token per chunk out, `step_delay_s` apart."""

    def __init__(self, step_delay_s: float):
        self.step_delay_s = step_delay_s

    async def __call__(self, request: dict, context: Any = None) -> AsyncIterator[dict]:
        seq = list(request["token_ids"]) or [0]
        max_tokens = int((request.get("stop_conditions") or {}).get("max_tokens") or 16)
        first: dict[int, int] = {}
        for i, t in enumerate(seq):
            first.setdefault(t, i)
        for i in range(max_tokens):
            await asyncio.sleep(self.step_delay_s)
            token = next_token(seq, first)
            first.setdefault(token, len(seq))
            seq.append(token)
            yield {"token_ids": [token], "finish_reason": "length" if i == max_tokens - 1 else None}
            if context is not None and context.is_stopped():
                return


async def serve(args: argparse.Namespace) -> None:
    from pyimpl.runtime import DistributedRuntime
    rt = await DistributedRuntime.create()
    endpoint = rt.endpoint(args.endpoint)
    await endpoint.register(CopyHandler(args.step_delay_s))
    card = ModelCard(name=args.model_name, model_path=args.model, endpoint=args.endpoint, model_type="chat",
                     context_length=args.context_length)
    key = card_key(card.name, rt.instance_id)
    await rt.discovery.put(key, card.to_dict())
    print(f"worker ready: model={card.name} instance={rt.instance_id:x}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await rt.discovery.delete(key)
    await rt.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench.chaos_worker", description=__doc__)
    p.add_argument("--model", required=True, help="model folder whose tokenizer the frontend uses")
    p.add_argument("--model-name", default="chaos")
    p.add_argument("--endpoint", default="chaos.backend.generate")
    p.add_argument("--step-delay-s", type=float, default=0.01)
    p.add_argument("--context-length", type=int, default=4096)
    asyncio.run(serve(p.parse_args(sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
