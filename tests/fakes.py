"""Local fake HTTP services for the teams' backends (real HTTP on 127.0.0.1).

Threaded, so a deliberately slow request does not hold up the others.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug import Response


class EventStream:
    """A server-sent events body, for fakes of streaming APIs."""

    def __init__(self, text: str) -> None:
        self.text = text


Reply = tuple[int, "dict[str, Any] | EventStream"]
App = Callable[[str, str, dict[str, str], dict[str, str], Any], Reply]


class FakeServer:
    """Serves ``app(method, path, query, headers, json_body) -> (status, json)``.

    Header names are given in lower case.
    """

    def __init__(self, app: App) -> None:
        outer = self
        local = self._local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                local.peer = self.client_address
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = app(self.command, parts.path, query, headers, body)
                sse = isinstance(payload, EventStream)
                data = payload.text.encode() if sse else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header(
                        "Content-Type", "text/event-stream" if sse else "application/json"
                    )
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client (a killed worker) is gone

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        del outer

    @property
    def peer_port(self) -> int:
        """The client's port of the request this thread serves (inside ``app``):
        which process made it, for a test that kills that one."""
        return int(self._local.peer[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeMarket:
    """A Finnhub-style quote API. Ticker SLOW answers only after ``slow_s``."""

    def __init__(self, slow_s: float = 60.0) -> None:
        self.slow_s = slow_s
        self.requests: list[str] = []
        self.release = threading.Event()
        self.http = FakeServer(self._app)
        self.url = self.http.url

    def _app(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if (method, path) != ("GET", "/quote"):
            return 404, {"error": "not found"}
        symbol = query.get("symbol", "")
        self.requests.append(symbol)
        if symbol == "SLOW":
            self.release.wait(self.slow_s)
        if symbol == "NONE":
            return 200, {"c": 0, "d": None, "dp": None, "t": 0}
        seed = hashlib.sha256(symbol.encode()).digest()
        return 200, {"c": 50 + seed[0], "dp": (seed[1] - 128) / 50, "t": 1_767_000_000}


class FakeExpenses:
    """An expenses API honouring ``Idempotency-Key``.

    With ``ack_delay_s``, the first request for a key is recorded at once but
    answered only after the delay: the side effect happens, the answer can be
    lost if the caller dies meanwhile.
    """

    def __init__(self, ack_delay_s: float = 0.0) -> None:
        self.ack_delay_s = ack_delay_s
        self.records: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.first_request = threading.Event()
        self.first_peer = 0
        """The client port of the last new claim's request."""
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()
        self._lock = threading.Lock()
        self.http = FakeServer(self._app)
        self.url = self.http.url

    def hold(self) -> None:
        """Record new claims but answer none until :meth:`release` (a slow API)."""
        self.held.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def _app(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if (method, path) != ("POST", "/expenses"):
            return 404, {"error": "not found"}
        key = headers.get("idempotency-key")
        if not key:
            return 400, {"error": "Idempotency-Key header is required"}
        with self._lock:
            self.requests.append(key)
            first = key not in self.records
            if first:
                self.records[key] = {
                    "id": f"exp_{len(self.records) + 1}",
                    "status": "submitted",
                    **body,
                }
            record = self.records[key]
            if first:
                self.first_peer = self.http.peer_port
        self.first_request.set()
        if first and self.ack_delay_s:
            time.sleep(self.ack_delay_s)
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait(60)
        return 201 if first else 200, record


class FakeJira:
    """Jira's search and create-issue endpoints, enough for metrics and tickets.

    With ``ack_delay_s``, a new issue is stored at once but answered only after
    the delay, so a worker killed meanwhile loses the answer, not the issue.
    """

    def __init__(self, ack_delay_s: float = 0.0) -> None:
        self.ack_delay_s = ack_delay_s
        self.issues: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.created = threading.Event()
        self.created_peer = 0
        """The client port of the last new issue's request."""
        self._lock = threading.Lock()
        self.http = FakeServer(self._app)
        self.url = self.http.url

    def _app(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        self.auth.append(headers.get("authorization"))
        if (method, path) == ("GET", "/rest/api/2/search"):
            jql = query.get("jql", "")
            if jql.startswith("labels = "):
                label = jql.split('"')[1]
                found = [i for i in self.issues if label in i["fields"]["labels"]]
                return 200, {"total": len(found), "issues": found[:1]}
            return 200, {"total": 3 + len(jql) % 5, "issues": []}
        if (method, path) == ("POST", "/rest/api/2/issue"):
            with self._lock:
                fields = body["fields"]
                key = f"{fields['project']['key']}-{len(self.issues) + 1}"
                self.issues.append({"key": key, "fields": fields})
                self.created_peer = self.http.peer_port
            self.created.set()
            if self.ack_delay_s:
                time.sleep(self.ack_delay_s)
            return 201, {"key": key, "id": str(len(self.issues))}
        return 404, {"errorMessages": [f"no route {method} {path}"]}


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
