"""A hosted model's stand-in for the streaming phase: OpenAI chat completions on
127.0.0.1, streamed (``stream: true``, server-sent events, tool calls in
pieces) or in one piece, as LiteLLM asks.

It answers the benchmark's questions (:data:`bench.turns.KINDS`) as the
offline model does: one tool call per clause it recognises, among the tools
the request offers (an arithmetic expression to ``calculator``, "stock price
of X" to ``stock_price``, "IP address" to ``get_ip``), then, once the tools
have answered, a reply from their outputs; anything else gets a short text.
The answer is written in pieces of :data:`PIECE` characters, ``chunk_delay_s``
apart when streamed; in one piece it comes after as long as its pieces would
have taken, as a model that writes at that pace would answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PIECE = 8
"""Characters per streamed piece: about two tokens."""
JOKE = (
    "Why did the workflow cross the road? To replay on the other side, with exactly "
    "the same result, every single time."
)
_EXPRESSION = re.compile(r"\d+(?:\.\d+)?(?:\s*[-+*/]\s*\d+(?:\.\d+)?)+")
_TICKER = re.compile(r"stock price of ([A-Z]{1,5})\b")


def answer(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The assistant message for a chat-completions request, and its finish reason."""
    messages = body.get("messages") or []
    if not messages:
        raise ValueError("a chat completion needs messages")
    trailing = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.append(str(message.get("content") or "")[:160])
    if trailing:
        return {"role": "assistant", "content": "Done: " + "; ".join(reversed(trailing))}, "stop"
    text = next(
        (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    offered = {tool["function"]["name"] for tool in body.get("tools") or []}
    calls: list[tuple[str, dict[str, Any]]] = []
    if "calculator" in offered and (expression := _EXPRESSION.search(text)):
        calls.append(("calculator", {"expression": expression.group(0)}))
    if "stock_price" in offered and (ticker := _TICKER.search(text)):
        calls.append(("stock_price", {"ticker": ticker.group(1)}))
    if "get_ip" in offered and "ip address" in text.lower():
        calls.append(("get_ip", {}))
    if not calls:
        return {"role": "assistant", "content": JOKE}, "stop"
    tool_calls = [
        {
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for name, args in calls
    ]
    return {"role": "assistant", "content": None, "tool_calls": tool_calls}, "tool_calls"


def completion(message: dict[str, Any], finish: str, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 30, "total_tokens": 230},
    }


def chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion as OpenAI streams it: the text and each call's arguments in
    pieces, the finish reason, then usage."""
    base = {k: body[k] for k in ("id", "created", "model")}
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    content = message.get("content") or ""
    out += [chunk({"content": content[i : i + PIECE]}) for i in range(0, len(content), PIECE)]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        out.append(
            chunk(
                {"tool_calls": [{**head, "function": {"name": function["name"], "arguments": ""}}]}
            )
        )
        arguments = function["arguments"]
        for i in range(0, len(arguments), PIECE):
            part = {"index": index, "function": {"arguments": arguments[i : i + PIECE]}}
            out.append(chunk({"tool_calls": [part]}))
    out.append(chunk({}, choice["finish_reason"]))
    out.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": body["usage"]})
    return out


class FakeProvider:
    """The server, on a free port of 127.0.0.1 until :meth:`close`."""

    def __init__(self, chunk_delay_s: float = 0.0) -> None:
        if chunk_delay_s < 0:
            raise ValueError("chunk_delay_s must be >= 0")
        self.chunk_delay_s = chunk_delay_s
        self.requests = {"streamed": 0, "unstreamed": 0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    message, finish = answer(body)
                except (ValueError, KeyError, TypeError) as err:
                    self._send(400, {"error": {"message": f"bad request: {err}"}})
                    return
                full = completion(message, finish, str(body.get("model", "fake")))
                pieces = chunks(full)
                if body.get("stream"):
                    outer.requests["streamed"] += 1
                    self._stream(pieces)
                else:
                    outer.requests["unstreamed"] += 1
                    time.sleep(outer.chunk_delay_s * len(pieces))
                    self._send(200, full)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, pieces: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for piece in pieces:
                        time.sleep(outer.chunk_delay_s)
                        self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller (an interrupted call) is gone

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
