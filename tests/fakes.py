"""Local fake HTTP services for the teams' backends (real HTTP on 127.0.0.1).

Threaded, so a deliberately slow request does not hold up the others.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, dict[str, Any]]
App = Callable[[str, str, dict[str, str], dict[str, str], Any], Reply]


class FakeServer:
    """Serves ``app(method, path, query, headers, json_body) -> (status, json)``."""

    def __init__(self, app: App) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, payload = app(self.command, parts.path, query, dict(self.headers), body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
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
        self._lock = threading.Lock()
        self.http = FakeServer(self._app)
        self.url = self.http.url

    def _app(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        if (method, path) != ("POST", "/expenses"):
            return 404, {"error": "not found"}
        key = headers.get("Idempotency-Key") or headers.get("idempotency-key")
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
        self.first_request.set()
        if first and self.ack_delay_s:
            time.sleep(self.ack_delay_s)
        return 201 if first else 200, record
