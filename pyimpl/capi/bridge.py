"""Binds the EmbeddedHost to the cffi module: the sink over C's queues and the extern "Python" entry points.
Run once by the library's embedding init code: `install(ffi, lib)`."""
from __future__ import annotations

import os
import sys

import msgspec

from pyimpl.capi.chunks import ChunkBatch
from pyimpl.capi.host import EmbeddedHost, Event
from pyimpl.capi.host_api_bridge import install_host_api
from pyimpl.capi.host_calls import HostCalls
from pyimpl.capi.status import ERR_INTERNAL, OK, describe, status_of, verify_codes

host: EmbeddedHost | None = None
# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms): the
# loop thread needs it to hand each chunk to C while a handler thread may be CPU-bound in Python.
GIL_SWITCH_INTERVAL_S = 0.0005


class CffiSink:
    """The Sink of EmbeddedHost over libdynamo_llm_capi's C functions."""

    def __init__(self, ffi, lib):
        self.ffi, self.lib = ffi, lib
        self.fd = lib.dyn_wake_fd()
        self.push_batch = self._make_push_batch()

    def wake_fd(self) -> int:
        """The eventfd C writes when it queues an event."""
        return self.fd

    def clear_wake(self) -> None:
        """Reset the eventfd before draining (a later event writes it again)."""
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass

    def next_event(self) -> Event | None:
        """The next submission or cancellation queued by C, copied out and released; None when empty."""
        ev = self.lib.dyn_next_event()
        if ev == self.ffi.NULL:
            return None
        try:
            endpoint = self.ffi.string(ev.endpoint).decode() if ev.endpoint != self.ffi.NULL else None
            request = self.ffi.unpack(ev.request, ev.request_len) if ev.request != self.ffi.NULL else None
            return Event(ev.kind, ev.runtime, ev.stream, endpoint, request)
        finally:
            self.lib.dyn_event_release(ev)

    def _make_push_batch(self):
        """push_batch(stream, batch) -> False once C no longer wants chunks (one C call per batch)."""
        c_push, null = self.lib.dyn_stream_push_batch, self.ffi.NULL

        def push_batch(stream: int, batch: ChunkBatch) -> bool:
            return c_push(stream, len(batch.jsons), b"".join(batch.jsons), b"".join(batch.texts) or null,
                          batch.meta, batch.ids or null) == 0
        return push_batch

    def push_json_array(self, stream: int, array: bytes) -> bool:
        """Hand C a JSON array of endpoint responses, one chunk per element; False once C no longer wants chunks."""
        status = self.lib.dyn_stream_push_json_array(stream, array, len(array))
        if status == -2:
            raise ValueError("the response batch is not a JSON array C can split")
        return status == 0

    def finish(self, stream: int, status: int, message: str) -> None:
        """End a stream in C (ignored there if it already ended, e.g. cancelled or shut down)."""
        self.lib.dyn_stream_finish(stream, status, message.encode(errors="replace"))


def install(ffi, lib) -> None:
    """Create the host and define the functions C calls into Python."""
    global host
    verify_codes(lib)
    host = EmbeddedHost(CffiSink(ffi, lib))
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:  # never coarser than a Python host chose
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    def fail(exc: BaseException) -> int:
        lib.dyn_set_error(describe(exc).encode(errors="replace"))
        return status_of(exc)

    from pyimpl.capi import c_engines  # Dynamo's KV-event API and C-served endpoints
    c_engines.install(ffi, lib, host)

    @ffi.def_extern(error=0)
    def dyn_py_ready():
        return 1

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_runtime_create(runtime, config_json):
        try:
            host.create_runtime(runtime, ffi.string(config_json).decode())
            model_states.session_started(runtime, host.sessions[runtime])
            return OK
        except BaseException as exc:
            return fail(exc)

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_runtime_destroy(runtime):
        try:
            host.destroy_runtime(runtime)
            return OK
        except BaseException as exc:
            return fail(exc)

    model_states = install_host_api(ffi, lib, HostCalls(host.sessions, host.call), fail)

    @ffi.def_extern(error=ERR_INTERNAL)
    def dyn_py_runtime_stats(runtime):
        try:
            lib.dyn_set_result(msgspec.json.encode(host.stats(runtime)))
            return OK
        except BaseException as exc:
            return fail(exc)
