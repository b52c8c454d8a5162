"""Serve a model (torch engine, mock engine, or an embedding model) and publish its card until signalled."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.worker", description=__doc__)
    p.add_argument("--model", required=True, help="model folder (config, weights, tokenizer), a .gguf file or a folder holding one")
    p.add_argument("--model-name", default=None)
    p.add_argument("--endpoint", default="dynamo.backend.generate", help="namespace.component.endpoint")
    p.add_argument("--engine", choices=("torch", "mock"), default="torch")
    p.add_argument("--tool-call-parser", default=None)
    p.add_argument("--reasoning-parser", default=None)
    p.add_argument("--model-type", choices=("chat", "completions", "embedding"), default=None)
    p.add_argument("--mock-step-delay-s", type=float, default=0.0, help="mock engine: seconds per token")
    p.add_argument("--max-model-len", type=int, default=None,
                   help="torch engine: cap the context (e.g. a 32k-context GGUF on a small KV pool)")
    p.add_argument("--dtype", default=None, help="torch engine: bfloat16 | float32 | ... (default: the engine's)")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    from pyimpl.llm.backend.model_server import serve_model
    from pyimpl.runtime import DistributedRuntime

    try:
        import uvloop  # noqa: F401  (faster loop when present)
    except ImportError:
        pass
    rt = await DistributedRuntime.create()
    kwargs = {"step_delay_s": args.mock_step_delay_s} if args.engine == "mock" else {
        k: v for k, v in (("max_model_len", args.max_model_len), ("dtype", args.dtype)) if v is not None}
    served = await serve_model(rt, args.model, model_name=args.model_name, endpoint=args.endpoint,
                               engine=args.engine, tool_call_parser=args.tool_call_parser,
                               reasoning_parser=args.reasoning_parser, model_type=args.model_type, **kwargs)
    print(f"worker ready: model={served.card.name} endpoint={served.card.endpoint} "
          f"type={served.card.model_type}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await served.withdraw()   # no new requests
    await rt.shutdown()       # drains in-flight streams (up to the runtime's grace period)
    await served.stop()       # then the engine goes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        import uvloop
        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
