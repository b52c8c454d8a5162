"""Which MCP servers a response may use and which of their tools: the servers a service knows (configured at
start by name, and connections opened for request URLs, pooled), and one response's toolbox (the servers of its
`mcp` tools, their listed tools after `allowed_tools`, the approval each call needs, and running a call)."""
from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass

from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.responses.mcp_client import DEFAULT_TIMEOUT_S, McpCallResult, McpClient, McpError, McpToolInfo
from pyimpl.llm.responses.mcp_config import McpServerSpec
from pyimpl.llm.responses.types import McpApprovalFilter, McpTool, McpToolFilter, ResponsesRequest

DEFAULT_POOL_SIZE = 64


class McpServers:
    """The MCP servers a service reaches: `configured` ones by name (`--mcp-config`, ResponsesSession's
    add_mcp_server) and those of request URLs; one client per server (URL and headers), the least recently used
    closed past `pool_size`. `timeout_s` bounds connecting, listing and each call."""

    def __init__(self, configured: dict[str, McpServerSpec] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 pool_size: int = DEFAULT_POOL_SIZE):
        self.configured = dict(configured or {})
        self.timeout_s, self.pool_size = timeout_s, pool_size
        self._clients: OrderedDict[tuple, McpClient] = OrderedDict()
        self._closing: set[asyncio.Task] = set()

    def spec_for(self, tool: McpTool) -> McpServerSpec:
        """The server of a request's `mcp` tool: its server_url, else the configured server of its label."""
        if tool.server_url is None:
            spec = self.configured.get(tool.server_label)
            if spec is None:
                raise InvalidRequestError(f"MCP server {tool.server_label!r} has no server_url and is not "
                                          "configured on this server", "tools")
            return spec
        if not tool.server_url.startswith(("http://", "https://")):
            raise InvalidRequestError("server_url must be an http(s) URL", "tools")
        headers = dict(tool.headers or {})
        if tool.authorization:
            headers.setdefault("Authorization", f"Bearer {tool.authorization}")
        return McpServerSpec(tool.server_label, url=tool.server_url, headers=headers)

    def client(self, spec: McpServerSpec) -> McpClient:
        """The (pooled) client of `spec`'s server."""
        client = self._clients.pop(spec.key, None) or McpClient(spec, self.timeout_s)
        self._clients[spec.key] = client
        while len(self._clients) > self.pool_size:
            task = asyncio.ensure_future(self._clients.popitem(last=False)[1].aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    async def aclose(self) -> None:
        """Close every connection (stdio servers' processes end)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        await asyncio.gather(*(c.aclose() for c in clients), *self._closing, return_exceptions=True)


def _matches(flt: McpToolFilter | None, tool: McpToolInfo) -> bool:
    if flt is None or (flt.tool_names is None and flt.read_only is None):
        return False
    return (flt.tool_names is None or tool.name in flt.tool_names) and \
        (flt.read_only is None or tool.read_only == flt.read_only)


def allowed(tool: McpTool, info: McpToolInfo) -> bool:
    """`allowed_tools`: every tool when left out, else the names listed or those the filter matches."""
    rule = tool.allowed_tools
    if rule is None:
        return True
    return info.name in rule if isinstance(rule, list) else _matches(rule, info)


def needs_approval(tool: McpTool, info: McpToolInfo) -> bool:
    """`require_approval`: "never" runs calls directly; "always", left out (OpenAI's default) or a filter's
    `always` ask first; a filter's `never` runs the tools it matches directly."""
    rule = tool.require_approval
    if rule == "never":
        return False
    if isinstance(rule, McpApprovalFilter):
        if _matches(rule.never, info):
            return False
    return True


@dataclass
class ServerTools:
    """One `mcp` tool of a request: its client and the tools the model may call."""

    tool: McpTool
    client: McpClient
    tools: list[McpToolInfo]


class McpToolbox:
    """The MCP tools of one response, by name (two servers offering one name is a 400)."""

    def __init__(self, servers: list[ServerTools]):
        self.servers = servers
        self.by_name: dict[str, tuple[ServerTools, McpToolInfo]] = {}
        for server in servers:
            for info in server.tools:
                if info.name in self.by_name:
                    raise InvalidRequestError(f"MCP tool {info.name!r} is offered by both "
                                              f"{self.by_name[info.name][0].tool.server_label!r} and "
                                              f"{server.tool.server_label!r}", "tools")
                self.by_name[info.name] = (server, info)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.by_name)

    def chat_tools(self) -> list[dict]:
        """The tools as the chat path's function tools."""
        return [{"type": "function", "function": {"name": info.name, "description": info.description or "",
                                                  "parameters": info.input_schema or {"type": "object"}}}
                for _, info in self.by_name.values()]

    def label(self, name: str) -> str:
        return self.by_name[name][0].tool.server_label

    def needs_approval(self, name: str) -> bool:
        server, info = self.by_name[name]
        return needs_approval(server.tool, info)

    async def call(self, name: str, arguments: str) -> McpCallResult:
        """Run a tool with its JSON arguments: the output or an error (never raises)."""
        if name not in self.by_name:
            return McpCallResult(error={"type": "mcp_protocol_error", "code": -32602,
                                        "message": f"no MCP tool named {name!r} in this response"})
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            return McpCallResult(error={"type": "mcp_protocol_error", "code": -32602,
                                        "message": "the tool's arguments are not a JSON object"})
        return await self.by_name[name][0].client.call_tool(name, args)


def _listed(history: list[dict]) -> dict[str, list[McpToolInfo]]:
    """The tools already listed in the conversation, by server label (OpenAI lists a server once)."""
    return {item["server_label"]: [McpToolInfo(t["name"], t.get("input_schema") or {}, t.get("description"),
                                               t.get("annotations")) for t in item["tools"]]
            for item in history if item["type"] == "mcp_list_tools" and not item.get("error")}


async def open_toolbox(req: ResponsesRequest, history: list[dict],
                       servers: McpServers) -> tuple[McpToolbox, list[tuple[str, list[dict], str | None]]]:
    """The request's MCP toolbox, and the listings this response made (label, tools, error) for its
    mcp_list_tools items; servers are listed concurrently, a server that cannot list has no tools."""
    mcp = [tool for tool in req.tools or () if isinstance(tool, McpTool)]
    labels = [tool.server_label for tool in mcp]
    if len(set(labels)) != len(labels):
        raise InvalidRequestError("two mcp tools have the same server_label", "tools")
    clients = [servers.client(servers.spec_for(tool)) for tool in mcp]
    known = _listed(history)

    async def listing(tool: McpTool, client: McpClient) -> tuple[list[McpToolInfo], str | None]:
        if tool.server_label in known:
            return known[tool.server_label], None
        try:
            return await client.list_tools(), None
        except McpError as exc:
            return [], str(exc)

    results = await asyncio.gather(*(listing(t, c) for t, c in zip(mcp, clients)))
    toolbox = McpToolbox([ServerTools(tool, client, [info for info in infos if allowed(tool, info)])
                          for tool, client, (infos, _) in zip(mcp, clients, results)])
    made = [(server.tool.server_label, [info.as_item() for info in server.tools], error)
            for server, (_, error) in zip(toolbox.servers, results)
            if server.tool.server_label not in known]
    return toolbox, made
