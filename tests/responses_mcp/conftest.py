"""Fixtures of the MCP tests: the SDK's MCP server (weather_mcp.py) as a real process on 127.0.0.1."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from serving.conftest import free_port

SERVER = Path(__file__).with_name("weather_mcp.py")


@contextlib.contextmanager
def mcp_server(mode: str = "ok", token: str | None = None, port: int | None = None):
    """The weather MCP server over Streamable HTTP (on `port`, else a free one); yields its URL."""
    port = port or free_port()
    args = [sys.executable, str(SERVER), "--port", str(port), "--mode", mode, *(["--token", token] if token else [])]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP server did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def stdio_server_entry() -> dict:
    """The weather server as an --mcp-config stdio entry."""
    return {"command": sys.executable, "args": [str(SERVER), "--stdio"]}
