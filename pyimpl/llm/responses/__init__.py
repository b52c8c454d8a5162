"""OpenAI's Responses API as a library over the chat path: items and their conversion to chat requests, the
conversation store, the event stream, and the service the HTTP route (and later ResponsesSession) uses."""
from pyimpl.llm.responses.events import ResponseStream
from pyimpl.llm.responses.service import ChatStreamer, ResponseRun, ResponsesService
from pyimpl.llm.responses.store import (MemoryResponseStore, ResponseNotFoundError, ResponseStore, SQLiteResponseStore,
                                        StoredResponse, open_store)
from pyimpl.llm.responses.types import ResponsesRequest, validate_request

__all__ = ["ChatStreamer", "MemoryResponseStore", "ResponseNotFoundError", "ResponseRun", "ResponseStore",
           "ResponseStream", "ResponsesRequest", "ResponsesService", "SQLiteResponseStore", "StoredResponse",
           "open_store", "validate_request"]
