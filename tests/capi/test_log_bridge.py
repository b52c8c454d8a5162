"""The log routing behind dynamo_set_log_callback: records, warnings, stray tracebacks and stderr reach the
host's callback while one is set, at the chosen level, and everything is put back when it is removed."""
import logging
import sys
import threading
import warnings

import pytest

from pyimpl.capi.log_bridge import LogBridge


@pytest.fixture
def routed():
    records: list[tuple[int, str, str]] = []
    bridge = LogBridge(lambda level, logger, message: records.append((level, logger, message)))
    before = (sys.stderr, threading.excepthook, sys.unraisablehook, logging.getLogger().level)
    bridge.configure(True, logging.DEBUG)
    yield bridge, records
    bridge.configure(False, logging.WARNING)
    assert (sys.stderr, threading.excepthook, sys.unraisablehook, logging.getLogger().level) == before


def test_records_with_tracebacks_reach_the_host(routed):
    bridge, records = routed
    log = logging.getLogger("pyimpl.test_log_bridge")
    log.debug("debug %d", 1)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    assert (logging.DEBUG, "pyimpl.test_log_bridge", "debug 1") in records
    level, name, message = records[-1]
    assert level == logging.ERROR and message.startswith("it failed\nTraceback") and "ValueError: boom" in message


def test_level_filters(routed):
    bridge, records = routed
    bridge.configure(True, logging.ERROR)
    logging.getLogger("pyimpl.test_log_bridge").warning("not wanted")
    logging.getLogger("pyimpl.test_log_bridge").error("wanted")
    assert [m for _, _, m in records] == ["wanted"]


def test_warnings_stderr_and_thread_tracebacks(routed):
    bridge, records = routed
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning)
    assert any(name == "py.warnings" and "careful" in message for _, name, message in records)
    bridge.configure(False, logging.DEBUG)  # pytest swaps sys.stderr between phases: route it again here
    bridge.configure(True, logging.DEBUG)
    sys.stderr.write("line one\nline two\npartial")
    sys.stderr.flush()
    assert [(lvl, m) for lvl, n, m in records if n == "stderr"] == [
        (logging.WARNING, "line one"), (logging.WARNING, "line two"), (logging.WARNING, "partial")]

    def fail():
        raise RuntimeError("in a thread")
    thread = threading.Thread(target=fail, name="worker-x")
    thread.start()
    thread.join()
    level, name, message = records[-1]
    assert level == logging.ERROR and "worker-x" in message and "RuntimeError: in a thread" in message


def test_removed_routing_sends_nothing():
    records = []
    bridge = LogBridge(lambda *record: records.append(record))
    bridge.configure(True, logging.INFO)
    bridge.configure(False, logging.INFO)
    logging.getLogger("pyimpl.test_log_bridge").error("after removal")
    assert records == []
