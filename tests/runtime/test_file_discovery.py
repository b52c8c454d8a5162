"""File discovery: a key whose owner lives is never lost for good, whatever other processes' readers do."""
import asyncio
import os

from pyimpl.runtime.discovery.file import SUFFIX, FileDiscovery


def test_owned_key_removed_by_a_reader_comes_back(tmp_path):
    """A reader deletes a key file it judges expired (the owner's event loop was stalled past the TTL): the owner's
    next refresh writes it again, with its value, instead of the instance vanishing until it restarts."""
    async def main():
        owner, reader = FileDiscovery(str(tmp_path), ttl=0.3), FileDiscovery(str(tmp_path), ttl=0.3)
        await owner.start()
        try:
            await owner.put("v1/instances/ns/comp/ep/7", {"address": "x"})
            os.remove(tmp_path / f"v1/instances/ns/comp/ep/7{SUFFIX}")   # what an expired-file sweep does
            assert await reader.list("v1/instances/") == {}
            await asyncio.sleep(0.35)  # more than one refresh period (ttl / 3)
            assert await reader.list("v1/instances/") == {"v1/instances/ns/comp/ep/7": {"address": "x"}}
            await owner.delete("v1/instances/ns/comp/ep/7")        # a deleted key stays deleted
            await asyncio.sleep(0.35)
            assert await reader.list("v1/instances/") == {}
        finally:
            await owner.close()
    asyncio.run(main())
