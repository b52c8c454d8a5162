"""`python -m pyimpl.bench http`: the OpenAI frontend under closed-loop load, with a mock-engine worker.

Three processes, as in Dynamo's set-up: frontend, one `--engine mock` worker (discovery `file`, plane
`tcp`), and a load generator with N concurrent keep-alive clients speaking raw HTTP/1.1 (so the client
is not the bottleneck). (a) non-streaming chat, 20 output tokens: requests/s, p50/p99 latency;
(b) streaming chat, 200 output tokens with ignore_eos: chunks/s and p50 time to first token.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DYNAMO_REFERENCE = {"requests_per_s": 850.0, "chunks_per_s": 35000.0, "ttft_ms": 32.0}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench http", description=__doc__)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--unary-tokens", type=int, default=20)
    p.add_argument("--stream-tokens", type=int, default=200)
    p.add_argument("--model", default=None, help="model folder for the mock worker (default: the tiny model)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--load-only", default=None, help=argparse.SUPPRESS)  # internal: run the load generator
    return p.parse_args(argv)


# ---- load generator (runs in its own process) -------------------------------------------------

class RawHTTPClient:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read a content-length or chunked reply."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def post(self, path: str, body: bytes, on_data=None) -> int:
        """Send; call `on_data(bytes)` per received body piece; returns the HTTP status."""
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                if on_data is not None:
                    on_data(data)
        else:
            start = lower.index(b"content-length:") + 15
            length = int(lower[start:lower.index(b"\r\n", start)])
            data = await self.reader.readexactly(length)
            if on_data is not None:
                on_data(data)
        return status


async def _client_loop(client: RawHTTPClient, path: str, body: bytes, stream: bool, stop_at: float,
                       record_from: float, results: dict) -> None:
    while True:
        start = time.perf_counter()
        if start >= stop_at:
            return
        state = {"events": 0, "first": None}

        def on_data(data: bytes) -> None:
            n = data.count(b"data: {")
            if n and state["first"] is None and state["events"] + n >= 2:
                state["first"] = time.perf_counter()  # first event after the role chunk
            state["events"] += n

        status = await client.post(path, body, on_data if stream else None)
        end = time.perf_counter()
        if status != 200:
            results["errors"] += 1
            continue
        if start >= record_from:
            results["latencies"].append(end - start)
            if stream:
                results["chunks"] += max(0, state["events"] - 2)  # minus role and usage chunks
                if state["first"] is not None:
                    results["ttfts"].append(state["first"] - start)
            results["requests"] += 1


async def _phase(host: str, port: int, model: str, concurrency: int, warmup: float, duration: float,
                 tokens: int, stream: bool) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me a long story about a cat."}],
            "max_tokens": tokens, "ignore_eos": True, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    payload = json.dumps(body).encode()
    clients = [RawHTTPClient(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.connect() for c in clients))
    now = time.perf_counter()
    results = {"requests": 0, "errors": 0, "chunks": 0, "latencies": [], "ttfts": []}
    await asyncio.gather(*(_client_loop(c, "/v1/chat/completions", payload, stream, now + warmup + duration,
                                        now + warmup, results) for c in clients))
    for c in clients:
        c.writer.close()
    lat = sorted(results["latencies"]) or [float("nan")]
    ttft = sorted(results["ttfts"]) or [float("nan")]
    pct = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return {"requests_per_s": results["requests"] / duration, "errors": results["errors"],
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "chunks_per_s": results["chunks"] / duration, "ttft_p50_ms": pct(ttft, 0.5)}


def run_load(spec: dict) -> dict:
    """Both phases against a running frontend (called in the load-generator process)."""
    async def both() -> dict:
        a = await _phase(spec["host"], spec["port"], spec["model"], spec["concurrency"], spec["warmup"],
                         spec["duration"], spec["unary_tokens"], stream=False)
        b = await _phase(spec["host"], spec["port"], spec["model"], spec["concurrency"], spec["warmup"],
                         spec["duration"], spec["stream_tokens"], stream=True)
        return {"unary": a, "stream": b}
    try:
        import uvloop
        return uvloop.run(both())
    except ImportError:
        return asyncio.run(both())


# ---- orchestration -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], env: dict, marker: str, timeout: float = 120.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return proc
    proc.kill()
    raise RuntimeError(f"{args} did not start:\n{''.join(lines)}")


def _wait_for_model(port: int, model: str, timeout: float = 60.0) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as r:
            if any(m["id"] == model for m in json.load(r)["data"]):
                return
        time.sleep(0.1)
    raise RuntimeError(f"model {model} never appeared")


def _warm_up(port: int, model: str) -> None:
    """One request first, so the frontend has loaded the tokenizer before the clock starts."""
    import urllib.request
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.load_only:
        print(json.dumps(run_load(json.loads(args.load_only))), flush=True)
        return 0
    if args.model is None:
        from pyimpl.models import tiny_model_path
        args.model = str(tiny_model_path())
    repo = Path(__file__).resolve().parents[2]
    kv_dir = tempfile.mkdtemp(prefix="bench_http_kv_")
    env = dict(os.environ, DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp", DYN_FILE_KV=kv_dir,
               PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    port = _free_port()
    procs = []
    try:
        procs.append(_spawn(["-m", "pyimpl.worker", "--model", args.model, "--model-name", "bench",
                             "--engine", "mock"], env, "worker ready"))
        procs.append(_spawn(["-m", "pyimpl.frontend", "--http-port", str(port)], env, "frontend ready"))
        _wait_for_model(port, "bench")
        _warm_up(port, "bench")
        spec = {"host": "127.0.0.1", "port": port, "model": "bench", "concurrency": args.concurrency,
                "warmup": args.warmup, "duration": args.duration, "unary_tokens": args.unary_tokens,
                "stream_tokens": args.stream_tokens}
        out = subprocess.run([sys.executable, "-m", "pyimpl.bench", "http", "--load-only", json.dumps(spec)],
                             env=env, capture_output=True, text=True, check=True)
        results = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(kv_dir, ignore_errors=True)
    results["reference_dynamo"] = DYNAMO_REFERENCE
    if args.json:
        print(json.dumps(results))
        return 0
    a, b = results["unary"], results["stream"]
    print(f"http bench: frontend + 1 mock worker (file discovery, tcp plane), {args.concurrency} clients, "
          f"{args.duration:.0f}s per phase")
    print(f"(a) non-streaming chat, {args.unary_tokens} tokens: {a['requests_per_s']:.0f} req/s "
          f"(Dynamo ~{DYNAMO_REFERENCE['requests_per_s']:.0f}, ratio {a['requests_per_s'] / 850:.2f}), "
          f"p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, errors {a['errors']}")
    print(f"(b) streaming chat, {args.stream_tokens} tokens: {b['chunks_per_s']:.0f} chunks/s "
          f"(Dynamo ~{DYNAMO_REFERENCE['chunks_per_s']:.0f}, ratio {b['chunks_per_s'] / 35000:.2f}), "
          f"TTFT p50 {b['ttft_p50_ms']:.1f} ms (Dynamo ~32 ms), {b['requests_per_s']:.1f} req/s, "
          f"errors {b['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
