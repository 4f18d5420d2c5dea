"""A TCP relay between one team's workers and the Temporal server, to cut the
team off: every connection through it is dropped, and new ones are closed as
soon as they are accepted, until the cut ends.

The workers reach the server only through the relay (their
``TEMPORAL_ADDRESS`` is the relay's), so a cut is what a network partition
between a team's cluster and Temporal looks like to them: their polls and
responses fail, and they reconnect by themselves once the relay lets them.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (``host:port``)."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.cut_off = False
        self.connections = 0
        """Connections accepted and forwarded so far."""
        self.refused = 0
        """Connections closed at once because the relay was cut."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server is not None, "the relay has not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def cut(self) -> None:
        """Drop every connection and close new ones until :meth:`restore`."""
        self.cut_off = True
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for task in list(self._tasks):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.refused += 1
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)  # the server is down (a restart): the worker retries
            return
        self.connections += 1
        self._writers.update((writer, upstream_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                _abort(end)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once, dropping anything unsent (a reset, as a broken network gives)."""
    with contextlib.suppress(Exception):
        writer.transport.abort()
