"""The system server (DYN_SYSTEM_PORT) listens on loopback unless DYN_SYSTEM_HOST says otherwise (issue 11)."""
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
