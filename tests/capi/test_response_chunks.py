"""The C chunks of dynamo_responses_create: one per Responses event, its JSON as the event was when it came
(later events change the response's live items), the output_text delta as text, and a finish reason on the
terminal event only; an unknown previous_response_id is DYNAMO_ERR_NOT_FOUND."""
import asyncio
import json

from pyimpl.capi.chunks import fields_batch, response_chunk, response_chunks
from pyimpl.capi.status import (ERR_NOT_FOUND, FINISH_ERROR, FINISH_LENGTH, FINISH_NONE, FINISH_STOP,
                                FINISH_TOOL_CALLS, status_of)
from pyimpl.llm.responses import ResponseNotFoundError


def test_delta_text_and_terminal_finish_reasons():
    delta = {"type": "response.output_text.delta", "sequence_number": 4, "delta": "héllo"}
    assert response_chunk(delta) == (json.dumps(delta, separators=(",", ":"), ensure_ascii=False).encode(),
                                     "héllo".encode(), None, FINISH_NONE, 0)
    args = {"type": "response.function_call_arguments.delta", "sequence_number": 5, "delta": "{\"a\""}
    assert response_chunk(args)[1:] == (None, None, FINISH_NONE, 0)   # only reply text goes to `text`
    message = {"type": "message", "content": []}
    call = {"type": "function_call", "name": "get_weather", "arguments": "{}"}
    finishes = {"response.completed": FINISH_STOP, "response.incomplete": FINISH_LENGTH,
                "response.failed": FINISH_ERROR, "response.in_progress": FINISH_NONE}
    for kind, finish in finishes.items():
        event = {"type": kind, "sequence_number": 9, "response": {"output": [message]}}
        assert response_chunk(event)[3] == finish
    called = {"type": "response.completed", "sequence_number": 9, "response": {"output": [message, call]}}
    assert response_chunk(called)[3] == FINISH_TOOL_CALLS


def test_each_event_is_encoded_as_it_was_when_it_came():
    item = {"type": "message", "content": []}

    async def events():
        yield {"type": "response.output_item.added", "sequence_number": 0, "item": item}
        item["content"].append({"text": "later"})   # what the next chat chunk does to the live item
        yield {"type": "response.output_item.done", "sequence_number": 1, "item": item}

    async def collect():
        return [fields async for fields in response_chunks(events())]
    chunks = asyncio.run(collect())
    assert json.loads(chunks[0][0])["item"]["content"] == []
    assert json.loads(chunks[1][0])["item"]["content"] == [{"text": "later"}]
    batch = fields_batch(chunks)
    assert [fields[0] for fields in batch.fields()] == [chunks[0][0], chunks[1][0]]


def test_closing_the_chunks_closes_the_events():
    closed = []

    async def events():
        try:
            yield {"type": "response.created", "sequence_number": 0, "response": {"output": []}}
            yield {"type": "response.in_progress", "sequence_number": 1, "response": {"output": []}}
        finally:
            closed.append(True)

    async def first_then_close():
        chunks = response_chunks(events())
        await chunks.__anext__()
        await chunks.aclose()   # the host's cancel: the response's own clean-up must run
    asyncio.run(first_then_close())
    assert closed == [True]


def test_an_unknown_previous_response_is_not_found():
    assert status_of(ResponseNotFoundError("Response with id 'x' not found.", "previous_response_id")) == \
        ERR_NOT_FOUND
