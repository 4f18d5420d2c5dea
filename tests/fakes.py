"""Local fake HTTP services: the teams' backends (from :mod:`meshdev.fakes`,
which the chaos soak shares) and an OpenAI-compatible model server.

Threaded, so a deliberately slow request does not hold up the others.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from werkzeug import Response

from meshdev.fakes import (
    EventStream,
    FakeExpenses,
    FakeJira,
    FakeMarket,
    FakeServer,
    Reply,
)

__all__ = [
    "EventStream",
    "FakeExpenses",
    "FakeJira",
    "FakeLLM",
    "FakeMarket",
    "FakeServer",
    "chat_completion",
    "chat_completion_sse",
    "completion_response",
]


class FakeLLM:
    """An OpenAI-compatible chat-completions server with a fixed routine.

    The last user message picks the tool: "calc" -> calculator, "expense N"
    -> submit_expense of N, "ticket" -> create_ticket, "jira" -> jira_metrics,
    anything else -> a plain answer. After a tool result it answers
    "done: <result>". ``hold()`` makes the next request wait for ``release``.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.holding = threading.Event()
        self.held = threading.Event()
        self.held_peer = 0
        """The client port of the request held last."""
        self.release = threading.Event()
        self.http = FakeServer(self._app)
        self.url = self.http.url + "/v1"

    def hold(self) -> None:
        self.release.clear()
        self.held.clear()
        self.holding.set()

    def _app(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if (method, path) != ("POST", "/v1/chat/completions"):
            return 404, {"error": {"message": "not found"}}
        self.requests.append(body)
        self.auth.append(headers.get("authorization"))
        if self.holding.is_set():
            self.holding.clear()
            self.held_peer = self.http.peer_port
            self.held.set()
            self.release.wait(60)
        answer = self._answer(body)
        return 200, EventStream(chat_completion_sse(answer)) if body.get("stream") else answer

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return chat_completion(
                {"role": "assistant", "content": f"done: {last['content'][:300]}"}
            )
        text = str(last.get("content", "")).lower()
        call = self._route(text)
        if call is None:
            return chat_completion({"role": "assistant", "content": "hello"})
        name, args = call
        tool_call = {
            "id": f"call_{len(self.requests)}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        return chat_completion(
            {"role": "assistant", "content": None, "tool_calls": [tool_call]}, "tool_calls"
        )

    @staticmethod
    def _route(text: str) -> tuple[str, dict[str, Any]] | None:
        if "calc" in text:
            return "calculator", {"expression": "6 * 7"}
        if "expense" in text:
            amount = float(text.split("expense", 1)[1].split()[0])
            return "submit_expense", {
                "amount": amount,
                "currency": "EUR",
                "description": f"claim {text[:40]}",
            }
        if "ticket" in text:
            return "create_ticket", {
                "project": "OPS",
                "summary": f"ticket {text[:40]}",
                "description": "",
            }
        if "jira" in text:
            return "jira_metrics", {"project": "OPS"}
        return None


def chat_completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    """An OpenAI chat-completions response body with one choice."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


def chat_completion_sse(completion: dict[str, Any], piece: int = 8) -> str:
    """A chat completion as OpenAI streams it: ``chat.completion.chunk`` events
    with the text and each tool call's arguments in pieces, the finish reason,
    a usage chunk, then ``[DONE]``."""
    base = {k: completion[k] for k in ("id", "created", "model")}
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content") or ""
    chunks += [chunk({"content": content[i : i + piece]}) for i in range(0, len(content), piece)]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        chunks.append(
            chunk(
                {"tool_calls": [{**head, "function": {"name": function["name"], "arguments": ""}}]}
            )
        )
        arguments = function["arguments"]
        for i in range(0, len(arguments), piece):
            part = {"index": index, "function": {"arguments": arguments[i : i + piece]}}
            chunks.append(chunk({"tool_calls": [part]}))
    chunks.append(chunk({}, choice["finish_reason"]))
    chunks.append(
        {**base, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]}
    )
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def completion_response(
    message: dict[str, Any], finish: str = "stop", *, stream: bool = False, delay_s: float = 0.0
) -> Response:
    """The same, as a werkzeug response for pytest-httpserver handlers: streamed
    as server-sent events when the request asked for a stream, ``delay_s`` apart."""
    completion = chat_completion(message, finish)
    if stream:
        return sse_response(chat_completion_sse(completion), delay_s)
    return Response(json.dumps(completion), content_type="application/json")


def sse_response(text: str, delay_s: float = 0.0) -> Response:
    """Server-sent events sent one by one, ``delay_s`` apart, as a slow provider writes.
    Without a delay, all at once, in a response that can be served again."""
    if not delay_s:
        return Response(text, content_type="text/event-stream")

    def events() -> Any:
        for event in text.split("\n\n"):
            if event:
                time.sleep(delay_s)
                yield event + "\n\n"

    return Response(events(), content_type="text/event-stream")
