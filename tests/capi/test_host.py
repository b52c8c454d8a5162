"""EmbeddedHost against a fake sink: submissions run on the loop thread, chunks arrive in order,
cancellation and runtime destruction end streams, unknown endpoints report NOT_FOUND."""
from __future__ import annotations

import json
import os
import threading
from collections import deque

import pytest

from pyimpl.capi.host import EV_CANCEL, EV_GENERATE, EmbeddedHost, Event
from pyimpl.capi.status import ERR_CANCELLED, ERR_NOT_FOUND, ERR_SHUTDOWN, OK

MOCK = json.dumps({"serve_model": False, "mock_endpoint": "test.mock.stream"})


class FakeSink:
    """Queues events like C does and records what the host hands back."""

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK)
        self.events: deque[Event] = deque()
        self.chunks: dict[int, list] = {}
        self.finished: dict[int, tuple[int, str]] = {}
        self.done = threading.Condition()
        self.refuse: set[int] = set()

    def submit(self, event: Event) -> None:
        self.events.append(event)
        os.eventfd_write(self.fd, 1)

    def wake_fd(self) -> int:
        return self.fd

    def clear_wake(self) -> None:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass

    def next_event(self) -> Event | None:
        return self.events.popleft() if self.events else None

    def push_batch(self, stream, batch) -> bool:
        with self.done:
            for data, text, ids, finish, choice in batch.fields():
                self.chunks.setdefault(stream, []).append(json.loads(data))
            self.done.notify_all()
        return stream not in self.refuse

    def push_json_array(self, stream, array) -> bool:
        with self.done:
            self.chunks.setdefault(stream, []).extend(json.loads(array))
            self.done.notify_all()
        return stream not in self.refuse

    def wait_chunk(self, stream) -> None:
        with self.done:
            assert self.done.wait_for(lambda: self.chunks.get(stream), timeout=30)

    def finish(self, stream, status, message) -> None:
        with self.done:
            self.finished[stream] = (status, message)
            self.done.notify_all()

    def wait(self, stream) -> tuple[int, str]:
        with self.done:
            assert self.done.wait_for(lambda: stream in self.finished, timeout=30)
            return self.finished[stream]


@pytest.fixture
def host():
    sink = FakeSink()
    host = EmbeddedHost(sink)
    host.create_runtime(1, MOCK)
    yield host, sink
    if 1 in host.sessions:
        host.destroy_runtime(1)
    host.stop_loop()
    os.close(sink.fd)


def generate(sink, stream, request, endpoint="test.mock.stream", runtime=1):
    sink.submit(Event(EV_GENERATE, runtime, stream, endpoint, json.dumps(request).encode()))


def test_streams_complete_in_order(host):
    host, sink = host
    for stream in range(10, 20):
        generate(sink, stream, {"n": 50})
    for stream in range(10, 20):
        assert sink.wait(stream) == (OK, "")
        assert [c["index"] for c in sink.chunks[stream]] == list(range(50))


def test_unknown_endpoint_is_not_found(host):
    host, sink = host
    generate(sink, 5, {}, endpoint="test.absent.endpoint")
    status, message = sink.wait(5)
    assert status == ERR_NOT_FOUND and "absent" in message


def test_cancel_event_cancels_the_task(host):
    host, sink = host
    generate(sink, 7, {"n": 10**9, "interval_us": 1000})
    sink.submit(Event(EV_CANCEL, 1, 7))
    assert sink.wait(7)[0] == ERR_CANCELLED


def test_refused_push_stops_the_stream(host):
    host, sink = host
    sink.refuse.add(8)
    generate(sink, 8, {"n": 10**9})
    assert sink.wait(8) == (OK, "")
    assert 1 <= len(sink.chunks[8]) <= 256  # one batch


def test_destroy_ends_streams_and_later_submissions(host):
    host, sink = host
    generate(sink, 9, {"n": 10**9, "interval_us": 1000})
    sink.wait_chunk(9)
    host.destroy_runtime(1)
    assert sink.wait(9)[0] == ERR_CANCELLED  # C already ended it with SHUTDOWN; this finish is ignored there
    generate(sink, 11, {"n": 1})
    assert sink.wait(11)[0] == ERR_SHUTDOWN


def test_stats_of_a_runtime_without_model(host):
    host, sink = host
    assert host.stats(1) == {"models": [], "engine": None, "live_streams": 0}
