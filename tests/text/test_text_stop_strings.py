"""Stop strings: held back while they may start, cut at the first match, flushed at the end."""
from __future__ import annotations

import pytest

from pyimpl.llm.text.stop_strings import StopStringMatcher


def run(stops, chunks, include=False):
    matcher = StopStringMatcher(stops, include_stop_str_in_output=include)
    out, hit = [], False
    for chunk in chunks:
        text, hit = matcher.feed(chunk)
        out.append(text)
        if hit:
            break
    return "".join(out) + matcher.flush(), hit


@pytest.mark.parametrize("chunks", [["Hello END world"], list("Hello END world"), ["Hello E", "N", "D world"]])
def test_stop_across_chunk_boundaries(chunks):
    assert run(["END"], chunks) == ("Hello ", True)
    assert run(["END"], chunks, include=True) == ("Hello END", True)


def test_partial_match_is_held_then_flushed():
    matcher = StopStringMatcher(["STOP"])
    assert matcher.feed("abc ST") == ("abc ", False)
    assert matcher.feed("O") == ("", False)
    assert matcher.flush() == "STO"


def test_partial_match_released_when_it_diverges():
    matcher = StopStringMatcher(["STOP"])
    assert matcher.feed("ST") == ("", False)
    assert matcher.feed("ART") == ("START", False)


def test_several_stops_first_occurrence_wins():
    assert run(["world", "lo w"], list("hello world")) == ("hel", True)
    assert run(["\n\n", "User:"], ["Answer.\nUs", "er: next"]) == ("Answer.\n", True)


def test_no_stops_passes_everything_and_nothing_after_stop():
    assert run([], ["a", "b"]) == ("ab", False)
    matcher = StopStringMatcher("x")
    assert matcher.feed("axb") == ("a", True)
    assert matcher.feed("more") == ("", True) and matcher.flush() == ""
    assert matcher.matched_stop == "x"


def test_stop_split_over_detokenized_tokens(pre):
    ids = pre.tokenize("The lazy dog. Stop strings follow.")
    det, matcher = pre.detokenizer(), StopStringMatcher(["dog. St"])
    out = []
    for token_id in ids:
        text, hit = matcher.feed(det.add([token_id]))
        out.append(text)
        if hit:
            break
    assert hit and "".join(out) == "The lazy "
