"""`python -m pyimpl.bench chaos`: streaming HTTP load while workers are SIGKILLed and restarted, and while the NATS
server restarts; counts what clients lose, with request migration on and off.

Workers are pyimpl.bench.chaos_worker (a mock whose output depends on the context only), so every stream is compared
with an unbroken run of the same prompt: a stream is `ok` (finished, identical text), `failed` (an HTTP error or an
SSE error event: the client was told), `incomplete` (ended without finish or [DONE], nobody told) or `wrong` (a gap,
a duplicate or disorder).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from pyimpl.bench.chaos_client import MODEL, StreamResult, classify, prompt_ids, stream_completion
from pyimpl.bench.http import _free_port
STREAM_DEADLINE_S = 30.0     # a stream still open after this is counted as hung (and incomplete)


class Deployment:
    """A frontend and N chaos workers on one discovery/plane; processes log to files (never a full pipe)."""

    def __init__(self, model_dir: str, workers: int, env: dict, migration_limit: int, step_delay_s: float):
        self.model_dir, self.env, self.step_delay_s = model_dir, env, step_delay_s
        self.logs = tempfile.mkdtemp(prefix="chaos-logs-")
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.frontend = self._spawn(["-m", "pyimpl.frontend", "--http-port", str(self.port),
                                     "--migration-limit", str(migration_limit)], "frontend ready")
        self.workers = [self.start_worker() for _ in range(workers)]

    def _spawn(self, args: list[str], marker: str, timeout: float = 120.0) -> subprocess.Popen:
        log = Path(self.logs) / f"{len(os.listdir(self.logs))}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in log.read_text():
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
        raise RuntimeError(f"{args} did not start:\n{log.read_text()}")

    def start_worker(self) -> subprocess.Popen:
        return self._spawn(["-m", "pyimpl.bench.chaos_worker", "--model", self.model_dir, "--model-name", MODEL,
                            "--step-delay-s", str(self.step_delay_s)], "worker ready")

    def kill_random_worker(self, rng: random.Random) -> None:
        """SIGKILL one worker and start a replacement (which takes traffic once it has registered)."""
        i = rng.randrange(len(self.workers))
        self.workers[i].kill()
        self.workers[i].wait()
        self.workers[i] = self.start_worker()

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def close(self) -> None:
        for proc in [*self.workers, self.frontend]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.frontend]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.logs, ignore_errors=True)


async def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = [m["id"] for m in (await http.get(f"{base_url}/v1/models")).json()["data"]]
            if MODEL in names and (await stream_completion(http, base_url, prompt_ids(0), 2)).finished:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError("the chaos model never became servable")


async def expected_texts(base_url: str, prompts: list[list[int]], max_tokens: int) -> list[str]:
    """Each prompt's text from an unbroken run (nothing is killed yet)."""
    async with httpx.AsyncClient(timeout=60) as http:
        results = await asyncio.gather(*(stream_completion(http, base_url, p, max_tokens) for p in prompts))
    assert all(r.finished for r in results), results
    return [r.text for r in results]


async def load(base_url: str, prompts: list[list[int]], expected: list[str], max_tokens: int, concurrency: int,
               disturb, seed: int) -> dict:
    """`concurrency` clients stream completions back to back while `disturb()` (a coroutine) runs; then a tally."""
    tally: Counter = Counter()
    errors: Counter = Counter()
    stop = asyncio.Event()
    rng = random.Random(seed)
    starts_ok: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            i = rng.randrange(len(prompts))
            started = time.monotonic()
            try:
                result = await asyncio.wait_for(stream_completion(http, base_url, prompts[i], max_tokens), STREAM_DEADLINE_S)
            except asyncio.TimeoutError:
                result = StreamResult()          # hung: nobody told the client anything
                tally["hung"] += 1
            verdict = classify(result, expected[i])
            if result.error is not None:
                errors[result.error[:160]] += 1
            tally[verdict] += 1
            if verdict == "ok":
                starts_ok.append(started)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10), limits=limits) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(concurrency)]
        began = time.monotonic()
        marks = await disturb()
        stop.set()
        await asyncio.gather(*tasks)
    return {"requests": sum(tally.values()), **{k: tally.get(k, 0) for k in ("ok", "failed", "incomplete", "wrong", "hung")},
            "seconds": round(time.monotonic() - began, 1), "marks": marks, "ok_starts": starts_ok,
            "top_errors": errors.most_common(2)}


def base_env(**extra: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


async def kill_arm(args: argparse.Namespace, model_dir: str, migration_limit: int) -> dict:
    """SIGKILL a random worker every interval (and restart it) under load; the tally and the migrations counted."""
    nats, store = None, tempfile.mkdtemp(prefix="chaos-store-")
    if args.plane == "nats":
        port = _free_port()
        nats = start_nats(port, store)
        env = base_env(DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats", NATS_SERVER=f"nats://127.0.0.1:{port}",
                       DYN_DISCOVERY_TTL="3")
    else:
        env = base_env(DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp", DYN_FILE_KV=store, DYN_DISCOVERY_TTL="3")
    try:
        dep = await asyncio.to_thread(Deployment, model_dir, args.workers, env, migration_limit, args.step_delay_s)
    except BaseException:
        stop_nats(nats, store)
        raise
    try:
        await wait_ready(dep.base_url)
        prompts = [prompt_ids(i) for i in range(16)]
        expected = await expected_texts(dep.base_url, prompts, args.max_tokens)
        rng = random.Random(args.seed)

        async def kills() -> int:
            for _ in range(args.kills):
                await asyncio.sleep(args.interval_s)
                await asyncio.to_thread(dep.kill_random_worker, rng)
            await asyncio.sleep(1.0)
            return args.kills

        tally = await load(dep.base_url, prompts, expected, args.max_tokens, args.concurrency, kills, args.seed)
        tally["migrations"] = int(dep.metric("dynamo_frontend_model_migration_total"))
        tally.pop("ok_starts")
        return tally
    finally:
        await asyncio.to_thread(dep.close)
        stop_nats(nats, store)


def stop_nats(nats: subprocess.Popen | None, store: str) -> None:
    if nats is not None:
        nats.terminate()
        nats.wait()
    shutil.rmtree(store, ignore_errors=True)


def start_nats(port: int, store: str) -> subprocess.Popen:
    binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    proc = subprocess.Popen([binary, "-js", "-sd", store, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}", timeout=0.2)
        except httpx.RemoteProtocolError:
            return proc             # it answers (in NATS, not HTTP): up
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nats-server did not start")


async def nats_arm(args: argparse.Namespace, model_dir: str, migration_limit: int) -> dict:
    """Restart the NATS server (discovery and request plane) under load: requests lost and time to recover."""
    port, store = _free_port(), tempfile.mkdtemp(prefix="chaos-nats-")
    nats = [start_nats(port, store)]
    env = base_env(DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats", NATS_SERVER=f"nats://127.0.0.1:{port}")
    dep = await asyncio.to_thread(Deployment, model_dir, args.workers, env, migration_limit, args.step_delay_s)
    try:
        await wait_ready(dep.base_url)
        prompts = [prompt_ids(i) for i in range(16)]
        expected = await expected_texts(dep.base_url, prompts, args.max_tokens)

        async def restart() -> dict:
            await asyncio.sleep(2.0)
            down = time.monotonic()
            nats[0].terminate()
            await asyncio.to_thread(nats[0].wait)
            await asyncio.sleep(args.nats_down_s)
            nats[0] = await asyncio.to_thread(start_nats, port, store)
            up = time.monotonic()
            await asyncio.sleep(10.0)
            return {"down": down, "up": up}

        tally = await load(dep.base_url, prompts, expected, args.max_tokens, args.concurrency, restart, args.seed)
        marks, starts = tally.pop("marks"), tally.pop("ok_starts")
        after = [s for s in starts if s >= marks["up"]]
        tally["recovery_s"] = round(min(after) - marks["up"], 2) if after else None
        tally["outage_s"] = round(marks["up"] - marks["down"], 2)
        tally["migrations"] = int(dep.metric("dynamo_frontend_model_migration_total"))
        return tally
    finally:
        await asyncio.to_thread(dep.close)
        stop_nats(nats[0], store)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench chaos", description=__doc__)
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs per arm (migration on, migration off)")
    p.add_argument("--interval-s", type=float, default=2.0, help="seconds between a restart and the next kill")
    p.add_argument("--workers", type=int, default=3, choices=(2, 3, 4))
    p.add_argument("--plane", choices=("tcp", "nats"), default="tcp",
                   help="the kill arms' deployment: file discovery + tcp, or NATS discovery + plane")
    p.add_argument("--concurrency", type=int, default=8, help="clients streaming back to back")
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--step-delay-s", type=float, default=0.02, help="worker seconds per token")
    p.add_argument("--migration-limit", type=int, default=3, help="the 'on' arms' limit")
    p.add_argument("--nats-down-s", type=float, default=1.0, help="how long the NATS server stays down")
    p.add_argument("--skip-kills", action="store_true")
    p.add_argument("--skip-nats", action="store_true")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--check", action="store_true", help="exit 1 if a migration-on arm lost any request (for CI)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from pyimpl.models import tiny_model_path
    model_dir = str(tiny_model_path())
    results: dict = {}
    for name, limit in (("migration on", args.migration_limit), ("migration off", 0)):
        if not args.skip_kills:
            results[f"kills, {name}"] = asyncio.run(kill_arm(args, model_dir, limit))
            print(f"{args.kills} worker kills ({args.plane}), {name}: {results[f'kills, {name}']}", flush=True)
        if not args.skip_nats:
            results[f"nats restart, {name}"] = asyncio.run(nats_arm(args, model_dir, limit))
            print(f"NATS restart, {name}: {results[f'nats restart, {name}']}", flush=True)
    print(json.dumps(results))
    lost = {arm: sum(r[k] for k in ("failed", "incomplete", "wrong", "hung"))
            for arm, r in results.items() if "migration on" in arm}
    if args.check and any(lost.values()):
        print(f"FAIL: requests lost with migration on: {lost}", file=sys.stderr)
        return 1
    return 0
