"""Run the OpenAI HTTP frontend: discovers models from cards and serves them over HTTP (uvicorn + uvloop)."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

import uvicorn

from pyimpl.runtime.logs import configure_logging

from pyimpl.llm.frontend.http.app import DEFAULT_KEEPALIVE_S, DEFAULT_MAX_BODY_BYTES, OpenAIFrontend
from pyimpl.llm.frontend.routing import ROUTER_MODES, RouterSettings


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.frontend", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1/*")
    p.add_argument("--model-aliases", default=None, help="JSON or YAML alias file")
    p.add_argument("--models", default=None, metavar="FILE",
                   help='serve these models in this process, loaded on demand (a single-process desktop server): '
                        'JSON or YAML {"models": [{"name", "path", "aliases", "params"}], "max_loaded_models": N}; '
                        "a request for a model not loaded loads it, unloading the least recently used one first "
                        "when N are loaded")
    p.add_argument("--engine", choices=("torch", "mock"), default="torch", help="--models: the engine of each model")
    p.add_argument("--responses-store", default=None, metavar="PATH",
                   help="keep /v1/responses (previous_response_id, GET, DELETE) in this SQLite file, so they survive "
                        "a restart (default: in memory, the newest 10000 up to 256 MiB)")
    p.add_argument("--mcp-config", default=None, metavar="FILE",
                   help='MCP servers /v1/responses requests may use by server_label (an mcp tool without '
                        'server_url): JSON {"mcpServers": {name: {"command", "args", "env"} | {"url", "headers"}}} '
                        "(stdio or Streamable HTTP)")
    p.add_argument("--mcp-timeout-s", type=_non_negative_float, default=30.0,
                   help="bound on connecting to an MCP server, listing its tools and each tool call; past it the "
                        "call is an error item, never a hung response")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--keepalive-s", type=float, default=DEFAULT_KEEPALIVE_S)
    p.add_argument("--shutdown-grace-s", type=float, default=5.0, help="max wait for open streams on SIGTERM")
    p.add_argument("--log-level", default="warning", help="info adds an access line per request")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="json: one JSON object per line (default: json if DYN_LOGGING_JSONL=1, else text)")
    p.add_argument("--migration-limit", type=_non_negative_int, default=None,
                   help="times a request moves to another worker when its worker is lost mid-request, continuing "
                        "after the tokens already sent (0: off). Default: DYN_MIGRATION_LIMIT, else 3: a request "
                        "survives a crash or rolling restart of its worker for the cost of a re-prefill, while a "
                        "request that itself crashes workers takes down at most 4 before it fails")
    routing = p.add_argument_group("routing", "how each request's worker is chosen (Dynamo's router flags)")
    routing.add_argument("--router-mode", choices=ROUTER_MODES, default=os.environ.get("DYN_ROUTER_MODE") or
                         "round-robin", help="round-robin (default), random, or kv: the worker that already caches "
                         "the longest prefix of the prompt, weighed against its load (default: DYN_ROUTER_MODE)")
    routing.add_argument("--kv-overlap-score-weight", type=_non_negative_float, default=1.0,
                         help="kv: weight of the prefill saved by a cached prefix against the worker's load (0: "
                              "load only; higher: better TTFT, worse inter-token latency)")
    routing.add_argument("--router-temperature", type=_non_negative_float, default=0.0,
                         help="kv: 0 picks the cheapest worker; above 0 samples a softmax over the costs")
    routing.add_argument("--no-kv-events", dest="kv_events", action="store_false",
                         help="kv: predict the workers' caches from the router's own decisions (entries live 120 s) "
                              "instead of following the KV events they publish")
    routing.add_argument("--kv-cache-block-size", type=_positive_int, default=None,
                         help="kv: tokens per KV block, as the workers use (default: the model card's)")
    return p.parse_args(argv)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def router_settings(args: argparse.Namespace) -> RouterSettings:
    """The routing flags as the ModelManager takes them."""
    return RouterSettings(mode=args.router_mode, overlap_score_weight=args.kv_overlap_score_weight,
                          router_temperature=args.router_temperature, use_kv_events=args.kv_events,
                          kv_cache_block_size=args.kv_cache_block_size)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_app(args: argparse.Namespace):
    """The Starlette app whose lifespan owns the runtime and the ModelManager."""
    from pyimpl.llm.frontend.aliases import load_aliases
    from pyimpl.llm.frontend.model_host import load_models_file
    from pyimpl.llm.frontend.model_manager import ModelManager
    from pyimpl.runtime import DistributedRuntime

    aliases = load_aliases(args.model_aliases) if args.model_aliases else {}
    hosted = load_models_file(args.models) if args.models else None  # a bad file fails here, before serving
    from pyimpl.llm.responses import McpServers, load_config, open_store
    mcp = McpServers(load_config(args.mcp_config) if args.mcp_config else None, timeout_s=args.mcp_timeout_s)
    frontend = OpenAIFrontend(api_key=args.api_key, max_body_bytes=args.max_body_bytes,
                              keepalive_s=args.keepalive_s, responses_store=open_store(args.responses_store))
    frontend.responses.service.mcp = mcp   # the MCP servers of /v1/responses' mcp tools

    @contextlib.asynccontextmanager
    async def lifespan(app):
        rt = await DistributedRuntime.create()
        manager_args = dict(aliases=aliases, migration_limit=args.migration_limit,
                            on_migration=frontend.metrics.count_migration, router=router_settings(args),
                            on_route=frontend.metrics.observe_route)
        if hosted is not None:
            from pyimpl.capi.heap import collect_destroyed  # an unloaded model's frozen heap back to the system
            from pyimpl.llm.frontend.hosting_manager import HostingModelManager
            manager = HostingModelManager(rt, *hosted, engine=args.engine, after_unload=collect_destroyed,
                                          **manager_args)
        else:
            manager = ModelManager(rt, **manager_args)
        await manager.start()
        frontend.manager = manager
        try:
            yield
        finally:
            await mcp.aclose()
            await manager.stop()
            await rt.shutdown()

    return frontend.app(lifespan=lifespan)


class FrontendServer(uvicorn.Server):
    """Announces readiness once the socket is listening (the tests and the bench wait for that line)."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"frontend ready on http://{self.config.host}:{self.config.port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_level, args.log_format)
    config = uvicorn.Config(build_app(args), host=args.host, port=args.http_port, loop="uvloop", http="httptools",
                            lifespan="on", log_level=args.log_level, access_log=False, log_config=None,
                            timeout_graceful_shutdown=args.shutdown_grace_s)
    FrontendServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
