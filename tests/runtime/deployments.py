"""Plane x discovery combinations for tests: a worker (in-process for mem, a subprocess
otherwise) serving handlers.StreamHandlers, and matching client runtimes."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyimpl.runtime import DistributedRuntime

REPO = Path(__file__).resolve().parents[2]
TTL = 2.0
BUCKET = "runtime_tests"

# Every valid pairing; inproc works only with mem.
COMBOS = [("mem", "inproc"), ("mem", "tcp"), ("mem", "nats"), ("file", "tcp"), ("file", "nats"),
          ("nats", "tcp"), ("nats", "nats")]
REMOTE_COMBOS = [c for c in COMBOS if c[0] != "mem"]


@dataclass
class Deployment:
    """Settings shared by a worker and its clients."""

    discovery: str
    plane: str
    nats_url: str
    file_dir: str
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    @property
    def remote(self) -> bool:
        return self.discovery != "mem"

    def runtime_kwargs(self) -> dict:
        return dict(discovery_backend=self.discovery, request_plane=self.plane, nats_server=self.nats_url,
                    file_kv_dir=self.file_dir, discovery_ttl=TTL, nats_kv_bucket=BUCKET, grace_period=1.0)

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(DYN_DISCOVERY_BACKEND=self.discovery, DYN_REQUEST_PLANE=self.plane,
                   NATS_SERVER=self.nats_url, DYN_FILE_KV=self.file_dir, DYN_DISCOVERY_TTL=str(TTL),
                   DYN_NATS_KV_BUCKET=BUCKET, DYN_GRACE_PERIOD="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p))
        return env

    async def client_runtime(self, **overrides) -> DistributedRuntime:
        return await DistributedRuntime.create(**self.runtime_kwargs(), **overrides)

    async def ready_client(self, runtime: DistributedRuntime, name: str, timeout: float = 10.0):
        """A client of endpoint `name` that has seen an instance."""
        client = await self.endpoint(runtime, name).client()
        await client.wait_for_instances(timeout)
        return client

    def endpoint(self, runtime: DistributedRuntime, name: str):
        return runtime.endpoint(f"{self.namespace}.worker.{name}")


class WorkerProcess:
    """tests/runtime/worker_process.py in a subprocess; `instance_id` once it printed READY."""

    def __init__(self, deployment: Deployment, extra_env: dict | None = None):
        env = deployment.env()
        env.update(extra_env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.runtime.worker_process", deployment.namespace],
                                     cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        self.instance_id = self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> int:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.kill()
            raise RuntimeError(f"worker did not start (got {line!r}, exit {self.proc.poll()})")
        return int(line.split()[1], 16)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)


def running_deployment(pairing: tuple[str, str], nats_server: str, file_kv_dir: str):
    """Fixture body: a Deployment for (discovery, plane) with its worker process when remote; stops it after."""
    dep = Deployment(pairing[0], pairing[1], nats_server, file_kv_dir)
    worker = WorkerProcess(dep) if dep.remote else None
    yield dep
    if worker is not None:
        assert worker.terminate() == 0


async def client_runtime_for(deployment: Deployment, **overrides):
    """Fixture body: the client's runtime; for mem pairings a second runtime hosts the worker's handlers."""
    from .handlers import register_all
    server = None
    if not deployment.remote:
        server = await deployment.client_runtime()
        await register_all(server, deployment.namespace)
    runtime = await deployment.client_runtime(**overrides)
    yield runtime
    await runtime.shutdown()
    if server is not None:
        await server.shutdown()
