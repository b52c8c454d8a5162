"""Chunk fields handed to C: JSON bytes, text delta, token ids and DYNAMO_FINISH_* codes."""
import json

from pyimpl.capi.chunks import chat_chunk, endpoint_chunk
from pyimpl.capi.status import FINISH_CANCELLED, FINISH_LENGTH, FINISH_NONE, FINISH_STOP


def test_chat_chunk_carries_the_content_delta_and_finish():
    item = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "héllo"},
                                                              "finish_reason": None}]}
    data, text, ids, finish = chat_chunk(item)
    assert json.loads(data) == item and text == "héllo".encode() and ids is None and finish == FINISH_NONE
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    assert chat_chunk(last)[1:] == (None, None, FINISH_LENGTH)
    usage_only = {"choices": [], "usage": {"total_tokens": 3}}
    assert chat_chunk(usage_only)[1:] == (None, None, FINISH_NONE)


def test_endpoint_chunk_takes_token_ids_and_finish_reason():
    data, text, ids, finish = endpoint_chunk({"token_ids": [1, 2], "finish_reason": "stop"})
    assert json.loads(data)["token_ids"] == [1, 2] and text is None and ids == [1, 2] and finish == FINISH_STOP
    assert endpoint_chunk({"token_ids": [3], "finish_reason": "abort"})[3] == FINISH_CANCELLED
    assert endpoint_chunk("plain")[0] == b'"plain"'
    assert endpoint_chunk({"token_ids": "nope"})[2] is None


def test_annotated_chunk_equals_endpoint_chunk_of_its_data():
    from pyimpl.capi.chunks import annotated_chunk
    from pyimpl.runtime.annotated import Annotated
    for item in ({"token_ids": [4], "finish_reason": "length"}, {"x": 1}, [1, 2], "s"):
        assert annotated_chunk(Annotated(item)) == endpoint_chunk(item)
