"""The MCP server the tests talk to (the official SDK's MCPServer): a get_weather tool that answers, fails or
hangs (--mode), served over Streamable HTTP on 127.0.0.1 (--port, optionally requiring a bearer --token) or over
stdio (--stdio)."""
from __future__ import annotations

import argparse
import asyncio
import json

from mcp.server.mcpserver import MCPServer

WEATHER = {"temperature": 21, "unit": "celsius", "condition": "sunny"}


def build(mode: str) -> MCPServer:
    server = MCPServer("weather", log_level="WARNING")

    @server.tool(description="Get the current weather in a city")
    async def get_weather(city: str) -> str:
        if mode == "error":
            raise RuntimeError("the weather station is down")
        if mode == "hang":
            await asyncio.sleep(3600)
        return json.dumps({"city": city, **WEATHER})

    @server.tool(description="Search the web")
    async def search(query: str) -> str:
        return f"no results for {query}"
    return server


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("ok", "error", "hang"), default="ok")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default=None)
    p.add_argument("--stdio", action="store_true")
    args = p.parse_args()
    server = build(args.mode)
    if args.stdio:
        server.run("stdio")
        return
    import uvicorn
    app = server.streamable_http_app()

    async def guarded(scope, receive, send):
        headers = dict(scope.get("headers") or ())
        if scope["type"] == "http" and args.token and headers.get(b"authorization") != f"Bearer {args.token}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)
    uvicorn.run(guarded, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
