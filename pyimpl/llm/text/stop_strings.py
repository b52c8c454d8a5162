"""Stop strings on streamed text: hold back what may start a stop string, cut at the first match.

Text is fed as it is detokenized; a stop string may be split across any number of feeds.
Only the longest tail of the pending text that is a prefix of some stop string is held back,
so ordinary text passes through with no delay.
"""
from __future__ import annotations

from typing import Sequence


class StopStringMatcher:
    """Finds the first of several stop strings in a text stream and cuts the output there."""

    def __init__(self, stops: Sequence[str] | str | None, include_stop_str_in_output: bool = False) -> None:
        if isinstance(stops, str):
            stops = [stops]
        self.stops = [s for s in (stops or ()) if s]
        self.include_stop_str_in_output = include_stop_str_in_output
        self.matched_stop: str | None = None   # the stop string that ended the stream, if any
        self._pending = ""

    @property
    def stopped(self) -> bool:
        """True once a stop string was found; later text is dropped."""
        return self.matched_stop is not None

    def feed(self, text: str) -> tuple[str, bool]:
        """Add streamed text; return (text safe to emit now, whether a stop string was hit)."""
        if self.stopped:
            return "", True
        if not self.stops:
            return text, False
        pending = self._pending + text
        hit = self._first_match(pending)
        if hit is not None:
            start, stop = hit
            self.matched_stop = stop
            self._pending = ""
            end = start + len(stop) if self.include_stop_str_in_output else start
            return pending[:end], True
        held = self._partial_match_length(pending)
        self._pending = pending[len(pending) - held:] if held else ""
        return pending[:len(pending) - held], False

    def flush(self) -> str:
        """Return the held-back text at the end of the stream (nothing after a stop)."""
        text, self._pending = self._pending, ""
        return "" if self.stopped else text

    def _first_match(self, text: str) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for stop in self.stops:
            i = text.find(stop)
            if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(stop) > len(best[1]))):
                best = (i, stop)
        return best

    def _partial_match_length(self, text: str) -> int:
        """Length of the longest tail of `text` that is a proper prefix of some stop string."""
        longest = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:k]):
                    longest = k
                    break
        return longest
