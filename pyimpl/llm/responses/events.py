"""Chat completion chunks as the Responses API's output items and stream events, in OpenAI's order, each with
its `sequence_number`: response.created, response.in_progress, then per item output_item.added, (content_part.
added, output_text.delta..., output_text.done, content_part.done | function_call_arguments.delta..., .done),
output_item.done, and last response.completed, response.incomplete or response.failed."""
from __future__ import annotations

import time
import uuid

import msgspec

from pyimpl.llm.responses.items import snapshot
from pyimpl.llm.responses.mcp_events import McpItemEvents
from pyimpl.llm.responses.types import ResponsesRequest

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
# text-like items: item type, content part type, the delta/done event prefix
TEXT_KINDS = {"message": ("message", "output_text", "response.output_text"),
              "reasoning": ("reasoning", "reasoning_text", "response.reasoning_text")}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_usage(usage: dict | None, reasoning_tokens: int = 0) -> dict | None:
    """Chat usage as Responses usage, with cached input and reasoning output token details (reasoning: as the
    chat usage reports it, else the tokens counted under reasoning deltas)."""
    if usage is None:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or reasoning_tokens
    return {"input_tokens": usage["prompt_tokens"], "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": usage["completion_tokens"], "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def echoed_tools(req: ResponsesRequest) -> list[dict]:
    """The request's tools as the response shows them (and stores them): an mcp tool's credentials left out."""
    tools = msgspec.to_builtins(req.tools or [])
    for tool in tools:
        if tool["type"] == "mcp":
            tool.pop("authorization", None)
            if tool.get("headers"):
                tool["headers"] = {name: "<redacted>" for name in tool["headers"]}
    return tools


def response_skeleton(req: ResponsesRequest, response_id: str, previous_response_id: str | None) -> dict:
    """The response object in progress: the request's parameters echoed, no output yet."""
    fmt = msgspec.to_builtins(req.text.format) if req.text is not None and req.text.format is not None \
        else {"type": "text"}
    return {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None, "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens, "max_tool_calls": req.max_tool_calls, "model": req.model,
            "output": [], "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": previous_response_id, "reasoning": {"effort": None, "summary": None},
            "store": req.store is not False, "temperature": req.temperature, "text": {"format": fmt},
            "tool_choice": msgspec.to_builtins(req.tool_choice or "auto"),
            "tools": echoed_tools(req), "top_p": req.top_p,
            "truncation": "disabled", "usage": None, "user": req.user, "metadata": req.metadata or {}}


class ResponseStream(McpItemEvents):
    """Folds one choice's chat chunks into output items, returning the events each step produces; an agent's
    MCP items (mcp_events.py) come between its model turns (end_turn)."""

    def __init__(self, req: ResponsesRequest, response_id: str | None = None):
        self.response = response_skeleton(req, response_id or new_id("resp"), req.previous_response_id)
        self.call_limit = req.max_tool_calls                        # calls in the whole response
        self.turn_limit = 1 if req.parallel_tool_calls is False else None   # calls in one model turn
        self.calls_made = 0
        self.sequence = 0
        self.current: dict | None = None          # the open output item
        self.calls: dict[int, dict | None] = {}   # this turn's chat tool call index -> its item (None: dropped)
        self.mcp_names: frozenset[str] = frozenset()   # tools the agent runs: their calls wait in `pending`
        self.client_names: frozenset[str] | None = None  # an agent's function tools (others: errors of the agent)
        self.pending: list[dict] = []
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.turn_usages: list[dict] = []
        self.reasoning_tokens = 0

    @property
    def output(self) -> list[dict]:
        return self.response["output"]

    def _event(self, kind: str, **fields) -> dict:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self) -> dict:
        return {**self.response, "output": [snapshot(item) for item in self.output]}

    def start(self) -> list[dict]:
        """response.created and response.in_progress."""
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]

    def on_chunk(self, chunk: dict) -> list[dict]:
        """The events of one chat chunk (only choice 0: a response has one)."""
        events: list[dict] = []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content") and not delta.get("content"):
                self.reasoning_tokens += len(choice.get("token_ids") or ())   # ids of this delta (token_ids=True)
            for kind, key in (("reasoning", "reasoning_content"), ("message", "content")):
                if delta.get(key):
                    events += self._text(kind, delta[key])
            for call in delta.get("tool_calls") or ():
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _open(self, item: dict) -> list[dict]:
        events = self._close("completed")
        self.output.append(item)
        self.current = item
        return events + [self._event("response.output_item.added", output_index=len(self.output) - 1,
                                     item=snapshot(item))]

    def _text(self, kind: str, text: str) -> list[dict]:
        item_type, part_type, prefix = TEXT_KINDS[kind]
        events: list[dict] = []
        if self.current is None or self.current["type"] != item_type:
            item = {"id": new_id("msg" if kind == "message" else "rs"), "type": item_type, "status": "in_progress",
                    "content": []}
            item.update({"role": "assistant"} if kind == "message" else {"summary": []})
            events += self._open(item)
            part = {"type": part_type, "text": ""}
            if kind == "message":
                part.update(annotations=[], logprobs=[])
            events.append(self._event("response.content_part.added", item_id=item["id"],
                                      output_index=len(self.output) - 1, content_index=0, part=dict(part)))
            item["content"].append(part)
        item = self.current
        item["content"][0]["text"] += text
        fields = {"logprobs": []} if kind == "message" else {}
        events.append(self._event(f"{prefix}.delta", item_id=item["id"], output_index=len(self.output) - 1,
                                  content_index=0, delta=text, **fields))
        return events

    def _tool_call(self, call: dict) -> list[dict]:
        index = call.get("index", 0)
        function = call.get("function") or {}
        events: list[dict] = []
        if index not in self.calls:
            in_turn = sum(1 for item in self.calls.values() if item is not None)
            if any(limit is not None and made >= limit
                   for limit, made in ((self.call_limit, self.calls_made), (self.turn_limit, in_turn))):
                self.calls[index] = None   # over max_tool_calls / parallel_tool_calls=false: not returned
                return events
            self.calls_made += 1
            name = function.get("name") or ""
            if name in self.mcp_names or (self.client_names is not None and name not in self.client_names):
                # the agent runs it once the turn ended (mcp_events.py); a tool nobody offered is its error
                self.calls[index] = {"name": name, "arguments": ""}
                self.pending.append(self.calls[index])
            else:
                item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                        "call_id": call.get("id") or new_id("call"), "name": name, "arguments": ""}
                self.calls[index] = item
                events += self._open(item)
        item = self.calls[index]
        fragment = function.get("arguments") or ""
        if item is None or not fragment:
            return events
        item["arguments"] += fragment
        if item is self.current:
            events.append(self._event("response.function_call_arguments.delta", item_id=item["id"],
                                      output_index=self.output.index(item), delta=fragment))
        return events

    def _close(self, status: str) -> list[dict]:
        """The closing events of the open item."""
        item, self.current = self.current, None
        if item is None:
            return []
        index = self.output.index(item)
        events: list[dict] = []
        if item["type"] == "function_call":
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=index, name=item["name"], arguments=item["arguments"]))
        else:
            _, _, prefix = TEXT_KINDS[item["type"]]
            part = item["content"][0]
            fields = {"logprobs": []} if item["type"] == "message" else {}
            events += [self._event(f"{prefix}.done", item_id=item["id"], output_index=index, content_index=0,
                                   text=part["text"], **fields),
                       self._event("response.content_part.done", item_id=item["id"], output_index=index,
                                   content_index=0, part=dict(part))]
        item["status"] = status
        return events + [self._event("response.output_item.done", output_index=index, item=snapshot(item))]

    def end_turn(self) -> tuple[list[dict], list[dict]]:
        """Between two model turns of an agent: the open item's closing events, and the turn's MCP calls
        ({"name", "arguments"}) for the agent to run."""
        events, pending = self._close("completed"), self.pending
        if self.usage is not None:
            self.turn_usages.append(self.usage)
        self.calls, self.pending, self.usage, self.finish_reason = {}, [], None, None
        return events, pending

    def _total_usage(self) -> dict | None:
        """The chat usage of every model turn added up."""
        usages = [*self.turn_usages, *([self.usage] if self.usage is not None else [])]
        if len(usages) < 2:
            return usages[0] if usages else None
        detail = lambda u, key, field: (u.get(key) or {}).get(field) or 0  # noqa: E731
        return {"prompt_tokens": sum(u["prompt_tokens"] for u in usages),
                "completion_tokens": sum(u["completion_tokens"] for u in usages),
                "prompt_tokens_details": {"cached_tokens": sum(detail(u, "prompt_tokens_details", "cached_tokens")
                                                               for u in usages)},
                "completion_tokens_details": {"reasoning_tokens": sum(
                    detail(u, "completion_tokens_details", "reasoning_tokens") for u in usages)}}

    def finish(self) -> list[dict]:
        """The closing events once the chat stream ended: completed, or incomplete with its reason."""
        reason = INCOMPLETE_REASONS.get(self.finish_reason or "")
        events = self._close("incomplete" if reason else "completed")
        self.response["usage"] = response_usage(self._total_usage(), self.reasoning_tokens)
        if reason:
            self.response.update(status="incomplete", incomplete_details={"reason": reason})
            return events + [self._event("response.incomplete", response=self._snapshot())]
        self.response["status"] = "completed"
        return events + [self._event("response.completed", response=self._snapshot())]

    def fail(self, code: str, message: str) -> list[dict]:
        """The closing events when generation failed after the response began."""
        events = self._close("incomplete")
        self.response.update(status="failed", error={"code": code, "message": message},
                             usage=response_usage(self._total_usage(), self.reasoning_tokens))
        return events + [self._event("response.failed", response=self._snapshot())]
