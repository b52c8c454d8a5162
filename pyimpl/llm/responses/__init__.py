"""OpenAI's Responses API as a library over the chat path: items and their conversion to chat requests, the
conversation store, the event stream, the service the HTTP route and the C API use, MCP tools run by the
server (agent.py, mcp_*.py), and ResponsesSession, the agent API for Python hosts."""
from pyimpl.llm.responses.events import ResponseStream
from pyimpl.llm.responses.mcp_client import McpCallResult, McpClient, McpError, McpToolInfo
from pyimpl.llm.responses.mcp_config import McpConfigError, McpServerSpec, load_config, parse_config
from pyimpl.llm.responses.mcp_tools import McpServers
from pyimpl.llm.responses.service import ChatStreamer, ResponseRun, ResponsesService
from pyimpl.llm.responses.session import (ConversationOptions, ConversationResult, ResponsesSession, ToolCall,
                                          ToolSelection)
from pyimpl.llm.responses.store import (MemoryResponseStore, ResponseNotFoundError, ResponseStore, SQLiteResponseStore,
                                        StoredResponse, open_store)
from pyimpl.llm.responses.types import ResponsesRequest, validate_request

__all__ = ["ChatStreamer", "ConversationOptions", "ConversationResult", "McpCallResult", "McpClient",
           "McpConfigError", "McpError", "McpServerSpec", "McpServers", "McpToolInfo", "MemoryResponseStore",
           "ResponseNotFoundError", "ResponseRun", "ResponseStore", "ResponseStream", "ResponsesRequest",
           "ResponsesService", "ResponsesSession", "SQLiteResponseStore", "StoredResponse", "ToolCall",
           "ToolSelection", "load_config", "open_store", "parse_config", "validate_request"]
