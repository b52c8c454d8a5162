"""The hello-world examples: one process on the embedded default, and server + client over NATS."""
from __future__ import annotations

import select
import subprocess
import sys

from .deployments import REPO

EXAMPLE = REPO / "examples" / "python" / "hello_world"
WORDS = ["Hello world!", "Hello sun!", "Hello moon!", "Hello star!"]


def test_hello_world_in_one_process(subprocess_env):
    out = subprocess.run([sys.executable, str(EXAMPLE / "main.py")], env=subprocess_env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == WORDS


def test_hello_world_server_and_client_over_nats(subprocess_env, nats_server):
    env = dict(subprocess_env, DYN_DISCOVERY_BACKEND="nats", DYN_REQUEST_PLANE="nats", NATS_SERVER=nats_server,
               DYN_NATS_KV_BUCKET="hello_world_example")
    server = subprocess.Popen([sys.executable, str(EXAMPLE / "server.py")], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 30)
        assert ready and server.stdout.readline().startswith("serving")
        out = subprocess.run([sys.executable, str(EXAMPLE / "client.py")], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == WORDS
        server.terminate()
        assert server.wait(15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
