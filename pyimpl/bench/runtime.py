"""`python -m pyimpl.bench runtime --plane tcp|nats|inproc`: unary round-trip p50, single-stream
chunks/s (5,000 chunks of {"token_ids": [i]}) and chunks/s for 32 concurrent streams of 64 chunks.
Server and client run in separate processes (inproc: one process); nats starts its own nats-server."""
from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAMESPACE = "bench"
DEFAULT_DISCOVERY = {"inproc": "mem", "tcp": "file", "nats": "nats"}


async def unary(request, context):
    yield {"token_ids": [request["i"]]}


async def stream(request, context):
    for i in range(request["n"]):
        yield {"token_ids": [i]}


HANDLER_ENDED: dict[str, float] = {}     # request id -> wall time its handler ended (cancellation figure)
ENDED_EVENTS: dict[str, asyncio.Event] = {}


def _ended_event(request_id: str) -> asyncio.Event:
    return ENDED_EVENTS.setdefault(request_id, asyncio.Event())


async def ticker(request, context):
    """Yields every millisecond until cancelled; records when its handler ended."""
    try:
        while True:
            yield {"token_ids": [0]}
            await asyncio.sleep(0.001)
    finally:
        HANDLER_ENDED[context.id()] = time.time()
        _ended_event(context.id()).set()


async def ended_at(request, context):
    await asyncio.wait_for(_ended_event(request["id"]).wait(), 5)
    yield HANDLER_ENDED.pop(request["id"])


async def register(runtime) -> None:
    for name, handler in (("unary", unary), ("stream", stream), ("ticker", ticker), ("ended_at", ended_at)):
        await runtime.endpoint(f"{NAMESPACE}.server.{name}").register(handler)


async def serve_forever() -> None:
    """The server process: register the bench endpoints, print READY, serve until SIGTERM."""
    from pyimpl.runtime import dynamo_worker

    @dynamo_worker()
    async def worker(runtime):
        await register(runtime)
        print("READY", flush=True)
        await runtime.wait_for_shutdown()

    await worker()


async def measure(args) -> dict:
    from pyimpl.runtime import DistributedRuntime
    server = None
    if args.plane == "inproc":
        server = await DistributedRuntime.create()
        await register(server)
    runtime = await DistributedRuntime.create()
    unary_client = await runtime.endpoint(f"{NAMESPACE}.server.unary").client()
    stream_client = await runtime.endpoint(f"{NAMESPACE}.server.stream").client()
    await unary_client.wait_for_instances(30)
    await stream_client.wait_for_instances(30)

    async def one_unary(i: int) -> None:
        async for _ in await unary_client.generate({"i": i}):
            pass

    async def one_stream(n: int) -> int:
        count = 0
        async for _ in await stream_client.generate({"n": n}):
            count += 1
        return count

    for i in range(200):                       # warm up connections and code paths
        await one_unary(i)
    await one_stream(args.chunks)

    latencies = []
    for i in range(args.unary):
        start = time.perf_counter()
        await one_unary(i)
        latencies.append(time.perf_counter() - start)

    single = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        got = await one_stream(args.chunks)
        single.append(got / (time.perf_counter() - start))
        assert got == args.chunks

    concurrent = []
    for _ in range(args.rounds * 3):
        start = time.perf_counter()
        counts = await asyncio.gather(*(one_stream(args.stream_chunks) for _ in range(args.streams)))
        concurrent.append(sum(counts) / (time.perf_counter() - start))
        assert sum(counts) == args.streams * args.stream_chunks

    cancel_ms = await measure_cancellation(runtime)
    await runtime.shutdown()
    if server is not None:
        await server.shutdown()
    latencies.sort()
    return {
        "unary_p50_us": latencies[len(latencies) // 2] * 1e6,
        "unary_p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "single_stream_chunks_per_s": statistics.median(single),
        "concurrent_chunks_per_s": statistics.median(concurrent),
        "cancel_p50_ms": statistics.median(cancel_ms),
        "cancel_max_ms": max(cancel_ms),
    }


async def measure_cancellation(runtime, samples: int = 30) -> list[float]:
    """Milliseconds from a client closing a stream to the worker's handler ending (same machine clock)."""
    from pyimpl.runtime import Context
    ticker_client = await runtime.endpoint(f"{NAMESPACE}.server.ticker").client()
    probe = await runtime.endpoint(f"{NAMESPACE}.server.ended_at").client()
    await ticker_client.wait_for_instances(30)
    await probe.wait_for_instances(30)
    result = []
    for _ in range(samples):
        context = Context()
        ticks = await ticker_client.generate({}, context=context)
        await ticks.__anext__()
        closed_at = time.time()
        await ticks.aclose()
        [ended] = [a.data() async for a in await probe.generate({"id": context.id()})]
        result.append((ended - closed_at) * 1e3)
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_nats(store: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    port = _free_port()
    proc = subprocess.Popen([binary, "-js", "-sd", store, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("nats-server did not start")


def _run(coro):
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyimpl.bench runtime", description=__doc__)
    parser.add_argument("--plane", choices=["tcp", "nats", "inproc"], default="tcp")
    parser.add_argument("--discovery", choices=["mem", "file", "nats"], default=None)
    parser.add_argument("--unary", type=int, default=2000, help="unary requests timed")
    parser.add_argument("--chunks", type=int, default=5000, help="chunks in the single stream")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--stream-chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _run(serve_forever())
        return 0

    discovery = args.discovery or DEFAULT_DISCOVERY[args.plane]
    workdir = tempfile.mkdtemp(prefix="bench-runtime-")
    env = dict(os.environ, DYN_DISCOVERY_BACKEND=discovery, DYN_REQUEST_PLANE=args.plane,
               DYN_FILE_KV=os.path.join(workdir, "kv"), DYN_NATS_KV_BUCKET="bench_runtime",
               PYTHONUNBUFFERED="1")
    env.pop("DYN_SYSTEM_PORT", None)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [repo, env.get("PYTHONPATH", "")] if p)
    nats_proc = server = None
    try:
        if "nats" in (discovery, args.plane):
            nats_proc, env["NATS_SERVER"] = _start_nats(os.path.join(workdir, "js"))
        if args.plane != "inproc":
            server = subprocess.Popen([sys.executable, "-m", "pyimpl.bench.runtime", "--serve"], env=env,
                                      stdout=subprocess.PIPE, text=True)
            ready, _, _ = select.select([server.stdout], [], [], 60)
            if not ready or server.stdout.readline().strip() != "READY":
                raise RuntimeError("bench server did not start")
        os.environ.update({k: env[k] for k in ("DYN_DISCOVERY_BACKEND", "DYN_REQUEST_PLANE", "DYN_FILE_KV",
                                               "DYN_NATS_KV_BUCKET") + (("NATS_SERVER",) if nats_proc else ())})
        os.environ.pop("DYN_SYSTEM_PORT", None)
        result = _run(measure(args))
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        if nats_proc is not None:
            nats_proc.terminate()
            nats_proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    remote = args.plane != "inproc"
    target_stream = 23_000 if remote else 200_000
    target_concurrent = 33_000 if remote else 200_000
    rows = [
        ("unary round trip p50", f"{result['unary_p50_us']:.0f} us (p99 {result['unary_p99_us']:.0f})",
         "<= 360 us" if remote else "-", not remote or result["unary_p50_us"] <= 360),
        (f"single stream, {args.chunks} chunks", f"{result['single_stream_chunks_per_s']:,.0f} chunks/s",
         f">= {target_stream:,}", result["single_stream_chunks_per_s"] >= target_stream),
        (f"{args.streams} streams x {args.stream_chunks} chunks", f"{result['concurrent_chunks_per_s']:,.0f} chunks/s",
         f">= {target_concurrent:,}", result["concurrent_chunks_per_s"] >= target_concurrent),
    ]
    rows.append(("cancel -> handler ended p50", f"{result['cancel_p50_ms']:.2f} ms (max {result['cancel_max_ms']:.2f})",
                 "< 100 ms", result["cancel_max_ms"] < 100))
    print(f"runtime bench: plane={args.plane} discovery={discovery} "
          f"({'server and client in separate processes' if remote else 'one process'})")
    for name, value, target, met in rows:
        print(f"  {name:<28} {value:>28}   target {target:<12} {'ok' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
