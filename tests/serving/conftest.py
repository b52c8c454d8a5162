"""Real-process fixtures for the serving tests: frontends and workers over file discovery + tcp plane."""
from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A `python -m ...` child that is ready once it prints `ready_marker`; stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict, ready_marker: str, timeout: float = 60.0, cwd=None):
        self.args = args
        self.popen = subprocess.Popen([sys.executable, *args], cwd=cwd or REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.output: list[str] = []
        self._wait_for(ready_marker, timeout)

    def _wait_for(self, marker: str, timeout: float) -> None:
        # Raw reads of the pipe: a buffered readline() leaves lines that came in one chunk in Python's buffer,
        # where select() does not see them (a chatty child's ready line then went unnoticed).
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        pending = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                *lines, pending = (pending + data.decode(errors="replace")).split("\n")
                self.output.extend(line + "\n" for line in lines)
                if any(marker in line for line in lines):
                    self.output.append(pending)
                    return
            elif self.popen.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.args} not ready:\n{''.join(self.output)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout:
            self.popen.stdout.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def serving_env(tmp_path_factory) -> dict:
    """Environment for every child of one test module: its own file-discovery folder, tcp plane."""
    env = dict(os.environ)
    env.update(DYN_DISCOVERY_BACKEND="file", DYN_REQUEST_PLANE="tcp",
               DYN_FILE_KV=str(tmp_path_factory.mktemp("kv")), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


@pytest.fixture(scope="module")
def tiny_model() -> str:
    from pyimpl.models import tiny_model_path
    return str(tiny_model_path())


def start_frontend(env: dict, *extra: str) -> tuple[Proc, str]:
    """A frontend process; returns it and its base URL."""
    port = free_port()
    proc = Proc(["-m", "pyimpl.frontend", "--http-port", str(port), *extra], env, "frontend ready")
    return proc, f"http://127.0.0.1:{port}"


def start_worker(env: dict, model: str, *extra: str) -> Proc:
    """A worker process serving `model`; ready once its card is published."""
    return Proc(["-m", "pyimpl.worker", "--model", model, *extra], env, "worker ready")


def wait_for_models(base_url: str, predicate, timeout: float = 30.0, headers: dict | None = None) -> list[str]:
    """Poll /v1/models until `predicate(names)` holds (the frontend learns of workers asynchronously)."""
    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        names = [m["id"] for m in httpx.get(f"{base_url}/v1/models", headers=headers, timeout=30).json()["data"]]
        if predicate(names):
            return names
        time.sleep(0.1)
    raise AssertionError(f"models never satisfied the condition; last seen {names}")


def kv_indexed_blocks(base_url: str, model: str) -> dict[int, int]:
    """The frontend's KV index per worker (dynamo_frontend_kv_indexed_blocks) for `model`."""
    prefix = f'dynamo_frontend_kv_indexed_blocks{{model="{model}",worker_id="'
    sizes = {}
    for row in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if row.startswith(prefix):
            worker, value = row[len(prefix):].split('"} ')
            sizes[int(worker)] = int(float(value))
    return sizes


def wait_kv_indexed(base_url: str, model: str, workers, min_blocks: int = 1, timeout: float = 15.0) -> None:
    """Until the frontend's KV router indexes at least `min_blocks` blocks of each of `workers` and the index has
    not changed for 0.2 s (the workers' stored events arrived)."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        sizes = kv_indexed_blocks(base_url, model)
        if sizes == last and all(sizes.get(w, 0) >= min_blocks for w in workers):
            return
        assert time.monotonic() < deadline, f"KV index {sizes}, wanted {min_blocks}+ blocks of {list(workers)}"
        last = sizes
        time.sleep(0.2)


@contextlib.contextmanager
def frontend_with_worker(env: dict, model: str, name: str, *worker_args: str):
    """A frontend and one worker serving `model` as `name`, stopped on exit; yields the frontend's URL."""
    frontend, url = start_frontend(env)
    try:
        worker = start_worker(env, model, "--model-name", name, *worker_args)
    except BaseException:
        frontend.stop()
        raise
    try:
        wait_for_models(url, lambda names: name in names)
        yield url
    finally:
        worker.stop()
        frontend.stop()
