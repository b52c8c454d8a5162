"""Process settings from the environment (issue 11): the system server (DYN_SYSTEM_PORT) listens on loopback unless
DYN_SYSTEM_HOST says otherwise; DYN_LOG with DYN_LOGGING_JSONL=1 logs JSON lines."""
from __future__ import annotations

import sys

import pytest

from pyimpl.runtime import DistributedRuntime

from .test_api import free_port


def _listening_addresses(port: int) -> set[str]:
    """IPv4 addresses listening on `port`, from /proc/net/tcp (state 0A = LISTEN)."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
@pytest.mark.parametrize("host, expected", [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
async def test_system_server_binds_loopback_unless_told(monkeypatch, host, expected):
    if host is None:
        monkeypatch.delenv("DYN_SYSTEM_HOST", raising=False)
    else:
        monkeypatch.setenv("DYN_SYSTEM_HOST", host)
    port = free_port()
    runtime = await DistributedRuntime.create("mem", "inproc", system_port=port)
    try:
        assert _listening_addresses(port) == {expected}
    finally:
        await runtime.shutdown()


def test_dyn_log_with_jsonl_writes_json_lines(subprocess_env):
    """A runtime program configured only by DYN_LOG and DYN_LOGGING_JSONL=1 logs JSON lines (issue 11)."""
    import json
    import subprocess
    import sys
    code = ("import asyncio, logging\nfrom pyimpl.runtime import DistributedRuntime\n"
            "async def main():\n    rt = await DistributedRuntime.create('mem', 'inproc')\n"
            "    logging.getLogger('probe').info('hello', extra={'k': 1})\n    await rt.shutdown()\n"
            "asyncio.run(main())\n")
    env = dict(subprocess_env, DYN_LOG="info", DYN_LOGGING_JSONL="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    assert {"target": "probe", "message": "hello", "k": 1}.items() <= next(r for r in lines if r["target"] == "probe").items()
