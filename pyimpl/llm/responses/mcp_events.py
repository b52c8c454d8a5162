"""The MCP output items of a response and their stream events, in OpenAI's shapes and order (a part of
ResponseStream): each item is added, goes through its own events and is done before the next one begins.

  mcp_list_tools:        output_item.added, mcp_list_tools.in_progress, mcp_list_tools.completed | .failed,
                         output_item.done
  mcp_call:              output_item.added, mcp_call.in_progress, mcp_call_arguments.delta,
                         mcp_call_arguments.done, mcp_call.completed | .failed, output_item.done
  mcp_approval_request:  output_item.added, output_item.done"""
from __future__ import annotations

import uuid

from pyimpl.llm.responses.items import snapshot


class McpItemEvents:
    """Mixed into ResponseStream, whose `output` and `_event` (numbered events) these use."""

    output: list[dict]

    def _event(self, kind: str, **fields) -> dict:
        raise NotImplementedError

    def _add(self, item: dict) -> tuple[int, list[dict]]:
        self.output.append(item)
        index = len(self.output) - 1
        return index, [self._event("response.output_item.added", output_index=index, item=snapshot(item))]

    def _done(self, item: dict, index: int) -> dict:
        return self._event("response.output_item.done", output_index=index, item=snapshot(item))

    def mcp_list_tools(self, label: str, tools: list[dict], error: str | None = None) -> list[dict]:
        """An mcp_list_tools item: the server's tools, or the error that kept it from listing them."""
        item = {"id": f"mcpl_{uuid.uuid4().hex}", "type": "mcp_list_tools", "server_label": label, "tools": []}
        index, events = self._add(item)
        events.append(self._event("response.mcp_list_tools.in_progress", item_id=item["id"], output_index=index))
        item["tools"] = tools
        if error is not None:
            item["error"] = error
        events.append(self._event("response.mcp_list_tools." + ("failed" if error is not None else "completed"),
                                  item_id=item["id"], output_index=index))
        return events + [self._done(item, index)]

    def mcp_call_started(self, label: str, name: str, arguments: str,
                         approval_request_id: str | None = None) -> tuple[dict, list[dict]]:
        """An mcp_call item about to run, and its events up to its arguments; mcp_call_finished closes it."""
        item = {"id": f"mcp_{uuid.uuid4().hex}", "type": "mcp_call", "status": "in_progress", "server_label": label,
                "name": name, "arguments": "", "output": None, "error": None}
        if approval_request_id is not None:
            item["approval_request_id"] = approval_request_id
        index, events = self._add(item)
        events.append(self._event("response.mcp_call.in_progress", item_id=item["id"], output_index=index))
        if arguments:
            events.append(self._event("response.mcp_call_arguments.delta", item_id=item["id"], output_index=index,
                                      delta=arguments))
        item["arguments"] = arguments
        events.append(self._event("response.mcp_call_arguments.done", item_id=item["id"], output_index=index,
                                  arguments=arguments))
        return item, events

    def mcp_call_finished(self, item: dict, output: str | None, error: dict | None) -> list[dict]:
        """The call's output or error: completed or failed, and the item done."""
        index = self.output.index(item)
        item.update(output=output, error=error, status="failed" if error is not None else "completed")
        return [self._event("response.mcp_call." + ("failed" if error is not None else "completed"),
                            item_id=item["id"], output_index=index), self._done(item, index)]

    def mcp_approval_request(self, label: str, name: str, arguments: str) -> list[dict]:
        """A call that waits for the client's approval (the response ends with it)."""
        item = {"id": f"mcpr_{uuid.uuid4().hex}", "type": "mcp_approval_request", "server_label": label,
                "name": name, "arguments": arguments}
        index, events = self._add(item)
        return events + [self._done(item, index)]
