"""Serve a model (torch engine, mock engine, or an embedding model) and publish its card until signalled."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

# Before torch loads (libgomp reads it once): OpenMP threads sleep at barriers instead of spinning, unless the user
# chose otherwise. On shared cores a spinning thread burns its partner's slice (pyimpl.bench sets the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(argv: list[str]) -> argparse.Namespace:
    from pyimpl.llm.text.parsers import REASONING_PARSERS, TOOL_CALL_PARSERS
    p = argparse.ArgumentParser(prog="python -m pyimpl.worker", description=__doc__)
    p.add_argument("--model", required=True, help="model folder (config, weights, tokenizer), a .gguf file or a folder holding one")
    p.add_argument("--model-name", default=None)
    p.add_argument("--endpoint", default="dynamo.backend.generate", help="namespace.component.endpoint")
    p.add_argument("--engine", choices=("torch", "mock"), default="torch")
    p.add_argument("--tool-call-parser", default=None, choices=sorted(TOOL_CALL_PARSERS),
                   help="how tool calls are read from the output (default: the one the model's chat template calls "
                        "for, e.g. hermes for <tool_call>; none if it shows no tool markers)")
    p.add_argument("--reasoning-parser", default=None, choices=sorted(REASONING_PARSERS),
                   help="split <think> reasoning into reasoning_content (default: none)")
    p.add_argument("--model-type", choices=("chat", "completions", "embedding"), default=None)
    p.add_argument("--mock-step-delay-s", type=float, default=0.0, help="mock engine: seconds per token")
    p.add_argument("--speedup-ratio", type=float, default=None,
                   help="mock engine: step times of Dynamo's mocker model (prefill grows with uncached tokens), "
                        "this many times faster; unset: no timing model (instant)")
    p.add_argument("--num-gpu-blocks", type=int, default=None, help="mock engine: KV cache blocks (default 16384)")
    p.add_argument("--block-size", type=int, default=None, help="mock engine: tokens per KV block (default 16)")
    p.add_argument("--no-kv-events", action="store_true",
                   help="publish no KV events (routers predict this worker's cache: approximate mode)")
    p.add_argument("--max-model-len", type=int, default=None,
                   help="torch engine: cap the context (e.g. a 32k-context GGUF on a small KV pool); "
                        "mock engine: the context it claims (any length)")
    p.add_argument("--dtype", default=None, help="torch engine: bfloat16 | float32 | ... (default: the engine's)")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="json: one JSON object per line (default: json if DYN_LOGGING_JSONL=1, else text)")
    args = p.parse_args(argv)
    mock_only = (args.speedup_ratio, args.num_gpu_blocks, args.block_size)
    if args.engine != "mock" and any(v is not None for v in mock_only):
        p.error("--speedup-ratio, --num-gpu-blocks and --block-size are options of --engine mock")
    if any(v is not None and v <= 0 for v in mock_only):
        p.error("--speedup-ratio, --num-gpu-blocks and --block-size must be positive")
    return args


async def run(args: argparse.Namespace) -> None:
    from pyimpl.llm.backend.model_server import serve_model
    from pyimpl.runtime import DistributedRuntime

    try:
        import uvloop  # noqa: F401  (faster loop when present)
    except ImportError:
        pass
    rt = await DistributedRuntime.create()
    mock_options = (("step_delay_s", args.mock_step_delay_s), ("speedup_ratio", args.speedup_ratio),
                    ("num_gpu_blocks", args.num_gpu_blocks), ("block_size", args.block_size),
                    ("max_model_len", args.max_model_len))
    torch_options = (("max_model_len", args.max_model_len), ("dtype", args.dtype))
    kwargs = {k: v for k, v in (mock_options if args.engine == "mock" else torch_options) if v is not None}
    served = await serve_model(rt, args.model, model_name=args.model_name, endpoint=args.endpoint,
                               engine=args.engine, tool_call_parser=args.tool_call_parser,
                               reasoning_parser=args.reasoning_parser, model_type=args.model_type,
                               kv_events=not args.no_kv_events, **kwargs)
    card = served.card
    logging.getLogger("pyimpl.worker").info(
        "serving %s on %s as instance %x", card.name, card.endpoint, rt.instance_id,
        extra={"model": card.name, "endpoint": card.endpoint, "model_type": card.model_type,
               "tool_call_parser": card.tool_call_parser, "reasoning_parser": card.reasoning_parser})
    print(f"worker ready: model={card.name} endpoint={card.endpoint} type={card.model_type}", flush=True)
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
    from pyimpl.runtime.logs import configure_logging
    configure_logging(args.log_level, args.log_format)
    try:
        import uvloop
        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
