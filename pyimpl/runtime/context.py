"""Per-request Context: id, stop/kill flags, awaitable stop, and linked cancellation."""
from __future__ import annotations

import asyncio
import itertools
import os
import sys
import weakref
from typing import Callable, Optional


_CAN_UNCANCEL = sys.version_info >= (3, 11)   # Task.cancelling()/uncancel() exist
_ID_PREFIX = os.urandom(6).hex()          # unique per process; ids need no uuid4 per request
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


def _reseed_after_fork() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(6).hex()


os.register_at_fork(after_in_child=_reseed_after_fork)


class Context:
    """Request context handed to handlers and accepted by `client.generate(context=...)`.

    Stopping a context stops every context and stream linked to it (downstream calls).
    """

    __slots__ = ("_id", "_stopped", "_killed", "_event", "_callbacks")

    def __init__(self, id: Optional[str] = None):
        self._id = id or new_request_id()
        self._stopped = False
        self._killed = False
        self._event: Optional[asyncio.Event] = None
        self._callbacks: Optional[list[Callable[[], None]]] = None

    def id(self) -> str:
        return self._id

    def is_stopped(self) -> bool:
        return self._stopped

    def is_killed(self) -> bool:
        return self._killed

    def stop_generating(self) -> None:
        """Ask the producer to stop; linked streams are cancelled."""
        if self._stopped:
            return
        self._stopped = True
        if self._event is not None:
            self._event.set()
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback()

    stop = stop_generating

    def kill(self) -> None:
        """Stop immediately (no graceful end expected)."""
        self._killed = True
        self.stop_generating()

    async def stopped(self) -> None:
        """Wait until the context is stopped or killed."""
        if self._stopped:
            return
        if self._event is None:
            self._event = asyncio.Event()
        await self._event.wait()

    async_killed_or_stopped = stopped

    def __await__(self):
        return self.stopped().__await__()

    def add_stop_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when stopped (now if already stopped); returns a remover."""
        if self._stopped:
            callback()
            return _noop
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

        def remove() -> None:
            if self._callbacks is not None:
                try:
                    self._callbacks.remove(callback)
                except ValueError:
                    pass
        return remove

    def add_weak_stop_callback(self, owner: object, method_name: str) -> Callable[[], None]:
        """Like add_stop_callback(owner.method) without keeping `owner` alive (streams may be dropped)."""
        ref = weakref.ref(owner)

        def callback() -> None:
            target = ref()
            if target is not None:
                getattr(target, method_name)()
        return self.add_stop_callback(callback)

    def link_child(self, child: "Context") -> Callable[[], None]:
        """Stop `child` whenever this context stops."""
        return self.add_stop_callback(child.stop_generating)

    def __repr__(self) -> str:
        return f"Context(id={self._id!r}, stopped={self._stopped})"


def _noop() -> None:
    pass


def cancellation_pending() -> bool:
    """True in a task asked to cancel whose CancelledError a library turned into another error
    (Python 3.11+ can tell; before it, always False)."""
    task = asyncio.current_task()
    return _CAN_UNCANCEL and task is not None and task.cancelling() > 0


def uncancel(task: asyncio.Task) -> None:
    """Withdraw one cancellation request this code made of `task` and absorbed (Python 3.11+ counts them)."""
    if _CAN_UNCANCEL:
        task.uncancel()
