"""What C/C++ engines reach through the C ABI, wired to the cffi module: the functions C calls (Dynamo's
KV-event API, C-served endpoints, model cards) and the drain of C's outbox on the host's loop thread."""
from __future__ import annotations

import os
from typing import Any, Optional

from pyimpl.capi.c_endpoint import CServedEndpoints
from pyimpl.capi.host import EmbeddedHost
from pyimpl.capi.kv_publisher_c import CKvPublisher, PublisherConfig, decode_removed, decode_stored
from pyimpl.capi.status import ERR_INTERNAL, ERR_INVALID_HANDLE, OK, CapiError, describe, status_of


class CffiServeOps:
    """endpoint_serve.c's calls for CServedEndpoints."""

    def __init__(self, lib: Any):
        self.lib = lib

    def dispatch(self, server: int, request: bytes) -> int:
        return self.lib.dyn_serve_dispatch(server, request, len(request))

    def cancel(self, responder: int) -> None:
        self.lib.dyn_responder_cancel(responder)

    def set_grace_ms(self, server: int, ms: int) -> None:
        self.lib.dyn_server_set_grace_ms(server, ms)


class CEngines:
    """The process's KV publisher (at most one, as in Dynamo) and C servers, on the host's loop."""

    def __init__(self, host: EmbeddedHost, ffi: Any, lib: Any):
        self.host, self.ffi, self.lib = host, ffi, lib
        self.endpoints = CServedEndpoints(CffiServeOps(lib))
        self.publisher: Optional[CKvPublisher] = None
        self.reading = False

    def _watch_outbox(self) -> None:
        """On the loop thread: drain C's outbox whenever its eventfd is readable (once per process)."""
        if not self.reading:
            self.reading = True
            self.host.loop.add_reader(self.lib.dyn_outbox_fd(), self.drain)

    def drain(self) -> None:
        """Route every queued outbox event (loop thread)."""
        try:
            os.read(self.lib.dyn_outbox_fd(), 8)
        except BlockingIOError:
            pass
        ffi, lib, null = self.ffi, self.lib, self.ffi.NULL
        while (ev := lib.dyn_outbox_next()) != null:
            try:
                kind, handle = ev.kind, ev.stream
                data = ffi.unpack(ev.request, ev.request_len) if ev.request != null else None
            finally:
                lib.dyn_event_release(ev)
            if kind == lib.DYN_OUT_SEND:
                self.endpoints.on_send(handle, data)
            elif kind == lib.DYN_OUT_FINISH:
                self.endpoints.on_finish(handle, data)
            elif self.publisher is not None:
                config = self.publisher.config
                self.publisher.add(decode_stored(data, config.block_size) if kind == lib.DYN_OUT_KV_STORED
                                   else decode_removed(data))

    # ---- KV events (coroutines run on the loop by host.call) ----
    async def llm_init(self, config: PublisherConfig) -> None:
        self._watch_outbox()
        publisher = await CKvPublisher.start(config)
        try:
            for served in self.endpoints.servers.values():  # the engine's endpoint served before init
                if served.endpoint.path == config.path:
                    await publisher.bind(served.runtime)
                    break
        except BaseException:
            await publisher.close()  # C stays uninitialised: nothing of this attempt may remain
            raise
        self.publisher = publisher

    async def llm_shutdown(self) -> None:
        self.drain()  # what was queued before the call is published first
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.close()

    # ---- C servers ----
    async def serve(self, runtime_handle: int, server: int, path: str) -> None:
        self._watch_outbox()
        session = self.host.sessions.get(runtime_handle)
        if session is None:
            raise CapiError(ERR_INVALID_HANDLE, "invalid runtime handle")
        await self.endpoints.serve(session.runtime, server, path)
        if self.publisher is not None and self.publisher.config.path == path:
            await self.publisher.bind(session.runtime)

    async def stop(self, server: int) -> None:
        served = await self.endpoints.stop(server)
        if served is not None and self.publisher is not None:
            await self.publisher.unbind(served.runtime)


def install(ffi: Any, lib: Any, host: EmbeddedHost) -> CEngines:
    """Define the extern "Python" functions of kv_events_c.c and endpoint_serve.c."""
    engines = CEngines(host, ffi, lib)

    def run(coro: Any) -> int:
        try:
            host.call(coro)
            return OK
        except BaseException as exc:
            lib.dyn_set_error(describe(exc).encode(errors="replace"))
            return status_of(exc)

    def text(ptr: Any) -> str:
        return ffi.string(ptr).decode()

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_llm_init(namespace, component, endpoint, kv_block_size):
        return run(engines.llm_init(PublisherConfig(text(namespace), text(component), text(endpoint),
                                                    kv_block_size)))

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_llm_shutdown():
        return run(engines.llm_shutdown())

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_endpoint_serve(runtime, server, path):
        return run(engines.serve(runtime, server, text(path)))

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_model_register(server, card_json):
        return run(engines.endpoints.register_card(server, text(card_json)))

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_server_stop(server):
        return run(engines.stop(server))

    return engines
