"""Local fake HTTP services for the teams' backends (real HTTP on 127.0.0.1):
Jira, the expenses API and market data, for the tests and the chaos soak.

Threaded, so a deliberately slow request does not hold up the others. Each
fake can be switched into a fault (:meth:`FakeServer.fail`): answering every
request with a 503, or holding every request until it is healed (a hung
backend), after which the held requests are closed unanswered and unserved.
(A request served late, after its caller gave up and retried, is what
``ack_delay_s`` of the Jira and expenses fakes models instead.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit


class EventStream:
    """A server-sent events body, for fakes of streaming APIs."""

    def __init__(self, text: str) -> None:
        self.text = text


Reply = tuple[int, "dict[str, Any] | EventStream"]
App = Callable[[str, str, dict[str, str], dict[str, str], Any], Reply]


Fault = Literal["5xx", "hang"]
FAULTS: tuple[Fault, ...] = ("5xx", "hang")


class FakeServer:
    """Serves ``app(method, path, query, headers, json_body) -> (status, json)``.

    Header names are given in lower case. :meth:`fail` switches a fault on
    until :meth:`heal`: ``"5xx"`` answers 503 without reaching the app (no
    side effect); ``"hang"`` holds each request, without answering, until
    healed (at most ``max_hang_s``), then closes it unanswered and unserved.
    """

    def __init__(self, app: App, max_hang_s: float = 120.0) -> None:
        self.fault: Fault | None = None
        self.max_hang_s = max_hang_s
        self.healed = threading.Event()
        self.healed.set()
        self.faulted_requests = 0
        """Requests answered 503 or held by a fault."""
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
                fault = outer.fault
                if fault is not None:
                    outer.faulted_requests += 1
                if fault == "hang":
                    # Never served: closed unanswered once healed, as a request
                    # lost in a hung backend.
                    outer.healed.wait(outer.max_hang_s)
                    return
                status: int
                payload: dict[str, Any] | EventStream
                if fault == "5xx":
                    status, payload = 503, {"error": "service unavailable (injected fault)"}
                else:
                    status, payload = app(self.command, parts.path, query, headers, body)
                sse = isinstance(payload, EventStream)
                if isinstance(payload, EventStream):
                    data = payload.text.encode()
                else:
                    data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header(
                        "Content-Type", "text/event-stream" if sse else "application/json"
                    )
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client (a killed worker, or one that gave up) is gone

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, fault: Fault) -> None:
        """Answer every request with ``fault`` until :meth:`heal`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        if fault == "hang":
            self.healed.clear()
        self.fault = fault

    def heal(self) -> None:
        """Serve as usual again; held requests are closed now."""
        self.fault = None
        self.healed.set()

    @property
    def peer_port(self) -> int:
        """The client's port of the request this thread serves (inside ``app``):
        which process made it, for a test that kills that one."""
        return int(self._local.peer[1])

    def close(self) -> None:
        self.heal()
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
