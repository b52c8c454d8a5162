"""MCP servers as data: where one is (a Streamable HTTP URL with headers, or a command run over stdio) and the
`--mcp-config FILE` format candle-vllm and editors share: {"mcpServers": {name: {command, args, env} |
{url, headers}}}. Parsing only; connecting is mcp_client.py's."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class McpConfigError(ValueError):
    """A config file or server entry that cannot describe an MCP server."""


@dataclass(frozen=True)
class McpServerSpec:
    """One MCP server: `url` (Streamable HTTP, with `headers`) or `command` with `args` and `env` (stdio)."""

    name: str
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.command is None):
            raise McpConfigError(f"MCP server {self.name!r} needs exactly one of url or command")

    @property
    def key(self) -> tuple:
        """What identifies the connection (two requests naming the same URL and headers share one)."""
        return (self.url, tuple(sorted(self.headers.items())), self.command, self.args,
                tuple(sorted((self.env or {}).items())))


def _strings(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise McpConfigError(f"{what} must map strings to strings")
    return dict(value)


def server_spec(name: str, entry: object) -> McpServerSpec:
    """One `mcpServers` entry as a spec; McpConfigError says what is wrong with it."""
    if not isinstance(entry, dict):
        raise McpConfigError(f"MCP server {name!r} must be an object")
    url, command = entry.get("url"), entry.get("command")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise McpConfigError(f"MCP server {name!r}: url must be an http(s) URL")
    if command is not None and not (isinstance(command, str) and command):
        raise McpConfigError(f"MCP server {name!r}: command must be a non-empty string")
    args = entry.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise McpConfigError(f"MCP server {name!r}: args must be a list of strings")
    env = _strings(entry.get("env"), f"MCP server {name!r}: env") if entry.get("env") is not None else None
    return McpServerSpec(name, url=url, headers=_strings(entry.get("headers"), f"MCP server {name!r}: headers"),
                         command=command, args=tuple(args), env=env)


def parse_config(data: object) -> dict[str, McpServerSpec]:
    """`{"mcpServers": {...}}` as specs by name."""
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError('an MCP config is {"mcpServers": {name: {command, args, env} | {url, headers}}}')
    return {name: server_spec(name, entry) for name, entry in servers.items()}


def load_config(path: str | Path) -> dict[str, McpServerSpec]:
    """The servers of a `--mcp-config` JSON file (a bad file fails at start, not on a request)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise McpConfigError(f"cannot read MCP config {path}: {exc}") from exc
    return parse_config(data)
