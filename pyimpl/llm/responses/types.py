"""The Responses API's request and answer shapes (OpenAI's current API) as msgspec types: the frontend validates
requests with them and the OpenAPI document is generated from them."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

import msgspec
from msgspec import Meta

NonEmptyStr = Annotated[str, Meta(min_length=1)]
MAX_OUTPUT_TOKENS = 1 << 20


class InputText(msgspec.Struct, tag_field="type", tag="input_text", kw_only=True):
    text: str


class OutputText(msgspec.Struct, tag_field="type", tag="output_text", kw_only=True, omit_defaults=True):
    text: str
    annotations: Optional[list] = None
    logprobs: Optional[list] = None


ContentPart = Union[InputText, OutputText]


class _Item(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    id: Optional[str] = None
    status: Optional[str] = None


class MessageItem(_Item, tag="message"):
    """A message (`type` may be left out, as OpenAI allows); content is text or text parts."""

    role: Literal["user", "assistant", "system", "developer"]
    content: Union[str, list[ContentPart]]


class FunctionCallItem(_Item, tag="function_call"):
    call_id: NonEmptyStr
    name: NonEmptyStr
    arguments: str


class FunctionCallOutputItem(_Item, tag="function_call_output"):
    call_id: NonEmptyStr
    output: Union[str, list[ContentPart]]


class ReasoningItem(_Item, tag="reasoning"):
    """Reasoning output handed back: accepted, not replayed to the model."""

    summary: Optional[list[dict]] = None
    content: Optional[list[dict]] = None


class McpListToolsItem(_Item, tag="mcp_list_tools"):
    """The tools an MCP server offered (kept in the conversation: a later turn does not list them again)."""

    server_label: str
    tools: list[dict]
    error: Optional[str] = None


class McpCallItem(_Item, tag="mcp_call"):
    """An MCP tool the server ran: its arguments and output, or its error."""

    server_label: str
    name: str
    arguments: str
    output: Optional[str] = None
    error: Union[dict, str, None] = None
    approval_request_id: Optional[str] = None


class McpApprovalRequestItem(_Item, tag="mcp_approval_request"):
    """A call that waits for the client's mcp_approval_response before it runs."""

    server_label: str
    name: str
    arguments: str


class McpApprovalResponseItem(_Item, tag="mcp_approval_response"):
    """The client's answer to an mcp_approval_request (with previous_response_id): approved calls run first."""

    approval_request_id: NonEmptyStr
    approve: bool
    reason: Optional[str] = None


InputItem = Union[MessageItem, FunctionCallItem, FunctionCallOutputItem, ReasoningItem, McpListToolsItem, McpCallItem,
                  McpApprovalRequestItem, McpApprovalResponseItem]


class FunctionTool(msgspec.Struct, tag_field="type", tag="function", kw_only=True, omit_defaults=True):
    name: NonEmptyStr
    description: Optional[str] = None
    parameters: Optional[dict] = None
    strict: Optional[bool] = None


class McpToolFilter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Tools by name and/or by the server's readOnlyHint annotation."""

    tool_names: Optional[list[str]] = None
    read_only: Optional[bool] = None


class McpApprovalFilter(msgspec.Struct, kw_only=True, omit_defaults=True):
    always: Optional[McpToolFilter] = None
    never: Optional[McpToolFilter] = None


class McpTool(msgspec.Struct, tag_field="type", tag="mcp", kw_only=True, omit_defaults=True):
    """An MCP server's tools, run by this server: `server_url` (Streamable HTTP, with `headers` and
    `authorization`), or without it a server of `--mcp-config` named by `server_label`. Calls wait for approval
    unless `require_approval` is "never" (or a filter's `never` matches the tool)."""

    server_label: NonEmptyStr
    server_url: Optional[str] = None
    headers: Optional[dict[str, str]] = None
    authorization: Optional[str] = None
    allowed_tools: Union[list[str], McpToolFilter, None] = None
    require_approval: Union[Literal["always", "never"], McpApprovalFilter, None] = None
    server_description: Optional[str] = None


class FunctionToolChoice(msgspec.Struct, tag_field="type", tag="function", kw_only=True):
    name: NonEmptyStr


class McpToolChoice(msgspec.Struct, tag_field="type", tag="mcp", kw_only=True, omit_defaults=True):
    """One MCP server's tool (`name`), or any tool of that server when `name` is left out."""

    server_label: NonEmptyStr
    name: Optional[str] = None


class TextFormat(msgspec.Struct, tag_field="type", tag="text"):
    pass


class JsonObjectFormat(msgspec.Struct, tag_field="type", tag="json_object"):
    pass


class JsonSchemaFormat(msgspec.Struct, tag_field="type", tag="json_schema", kw_only=True, omit_defaults=True):
    name: NonEmptyStr
    schema: dict
    strict: Optional[bool] = None
    description: Optional[str] = None


class TextConfig(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`text`: its `format` becomes the chat path's response_format."""

    format: Union[TextFormat, JsonObjectFormat, JsonSchemaFormat, None] = None


class ResponsesRequest(msgspec.Struct, kw_only=True):
    """POST /v1/responses. Unknown top-level fields are ignored, as OpenAI does."""

    model: NonEmptyStr
    input: Union[str, list[InputItem]]
    instructions: Optional[str] = None
    tools: Optional[list[Union[FunctionTool, McpTool]]] = None
    tool_choice: Union[Literal["none", "auto", "required"], FunctionToolChoice, McpToolChoice, None] = None
    text: Optional[TextConfig] = None
    max_output_tokens: Optional[Annotated[int, Meta(ge=1, le=MAX_OUTPUT_TOKENS)]] = None
    max_tool_calls: Optional[Annotated[int, Meta(ge=0)]] = None
    parallel_tool_calls: Optional[bool] = None
    store: Optional[bool] = None
    stream: Optional[bool] = None
    previous_response_id: Optional[NonEmptyStr] = None
    temperature: Optional[Annotated[float, Meta(ge=0.0, le=2.0)]] = None
    top_p: Optional[Annotated[float, Meta(gt=0.0, le=1.0)]] = None
    metadata: Optional[dict[str, str]] = None
    user: Optional[str] = None
    background: Optional[bool] = None


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseObject(msgspec.Struct, kw_only=True):
    """A response (answer of POST, GET /v1/responses/{id}, and the `response` of lifecycle stream events)."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "failed", "in_progress", "incomplete"]
    model: str
    output: list[dict]
    error: Optional[dict] = None
    incomplete_details: Optional[dict] = None
    instructions: Optional[str] = None
    usage: Optional[ResponseUsage] = None


class ResponseStreamEvent(msgspec.Struct, kw_only=True):
    """One streamed event (`event:` is its `type`): lifecycle events carry `response`, item events `item`,
    text and argument events `delta` or the whole `text` / `arguments`."""

    type: str
    sequence_number: Annotated[int, Meta(ge=0)]
    response: Optional[ResponseObject] = None
    output_index: Optional[int] = None
    content_index: Optional[int] = None
    item_id: Optional[str] = None
    item: Optional[dict] = None
    part: Optional[dict] = None
    delta: Optional[str] = None
    text: Optional[str] = None
    arguments: Optional[str] = None
    name: Optional[str] = None


class DeletedResponse(msgspec.Struct):
    """DELETE /v1/responses/{id}."""

    id: str
    object: Literal["response"]
    deleted: bool


def validate_request(body: Any) -> ResponsesRequest:
    """`body` as a ResponsesRequest, or InvalidRequestError naming the field."""
    from pyimpl.llm.errors import InvalidRequestError
    items = body.get("input") if isinstance(body, dict) else None
    if isinstance(items, list):   # a message item may leave out its type
        body = dict(body, input=[dict(item, type="message") if isinstance(item, dict) and "type" not in item
                                 else item for item in items])
    try:
        return msgspec.convert(body, ResponsesRequest)
    except msgspec.ValidationError as exc:
        text = str(exc)
        param = text.split("at `$.", 1)[1].split("`", 1)[0].split("[", 1)[0].split(".", 1)[0] if "at `$." in text \
            else None
        raise InvalidRequestError(text, param) from exc
