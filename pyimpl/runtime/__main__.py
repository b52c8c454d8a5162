"""`python -m pyimpl.runtime instances [prefix]`: list discovery records (backend from the environment)."""
from __future__ import annotations

import asyncio
import json
import sys

from .endpoint import INSTANCE_PREFIX
from .runtime import DistributedRuntime


async def list_instances(prefix: str) -> int:
    runtime = await DistributedRuntime.create(
        request_plane="tcp" if _backend_needs_remote_plane() else None)
    try:
        records = await runtime.discovery.list(prefix)
        for key in sorted(records):
            print(f"{key} {json.dumps(records[key])}")
        if not records:
            print(f"(no records under {prefix!r})", file=sys.stderr)
    finally:
        await runtime.shutdown()
    return 0


def _backend_needs_remote_plane() -> bool:
    import os
    return (os.environ.get("DYN_DISCOVERY_BACKEND", "mem") != "mem"
            and os.environ.get("DYN_REQUEST_PLANE", "inproc") == "inproc")


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "instances":
        print("usage: python -m pyimpl.runtime instances [PREFIX]", file=sys.stderr)
        return 2
    prefix = argv[1] if len(argv) > 1 else f"{INSTANCE_PREFIX}/"
    return asyncio.run(list_instances(prefix))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
