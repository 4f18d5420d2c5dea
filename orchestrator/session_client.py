"""The one client of chat sessions, used by every door: the terminal chat, the
HTTP API, the benchmark and the tests.

Everything goes through Temporal (a start, Updates, queries, visibility, the
session's event stream), so any number of clients talk to one session, and a
session outlives every client. Update ids are idempotency keys: the same key
sent twice is one request (see :meth:`Session.submit`). Refusals arrive as the
typed errors of :mod:`orchestrator.contract`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, Plugin, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from meshkit.mesh import Mesh, MeshError, connect, load_mesh, mesh_path
from orchestrator.contract import (
    SESSION_PREFIX,
    WORKFLOW_TYPE,
    SessionConfig,
    SessionEnded,
    SessionNotFound,
    SessionSummary,
    UnknownTool,
)
from orchestrator.failover import session_task_timeout
from orchestrator.session import Session
from orchestrator.session_types import SessionState

log = logging.getLogger("orchestrator.sessions")


def session_workflow_id(session: str) -> str:
    return session if session.startswith(SESSION_PREFIX) else f"{SESSION_PREFIX}{session}"


def keyed_session_id(owner: str, key: str) -> str:
    """The session a create with idempotency ``key`` makes: one per user and key."""
    digest = hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()[:20]
    return f"{SESSION_PREFIX}{digest}"


class SessionClient:
    """Open, attach to and list sessions of one mesh's orchestrator namespace.

    A session is given the teams of the mesh file as the file reads when the
    session is created: when the client was made from a mesh file, that file
    is read again whenever it changed since it was last read, so a team added
    to it reaches the next new session without a restart.
    """

    def __init__(
        self,
        client: Client,
        mesh: Mesh,
        *,
        mesh_file: Path | None = None,
        task_timeout: timedelta | None = None,
    ) -> None:
        self.client = client
        self.task_timeout = task_timeout or session_task_timeout()
        """The workflow task timeout of the sessions it starts (orchestrator.failover)."""
        self._mesh = mesh
        self._mesh_file = mesh_file
        self._mesh_stamp = _stamp(mesh_file) if mesh_file else None

    @classmethod
    async def connect(
        cls, mesh_file: Path | None = None, *, tracing: Sequence[Plugin] = ()
    ) -> SessionClient:
        """A client of the mesh in ``mesh_file`` (default: ``MESH_FILE`` or ./mesh.toml);
        ``tracing``: the plugins that carry the trace (``observability.setup``'s)."""
        path = mesh_file or mesh_path()
        mesh = load_mesh(path)
        client = await connect(
            mesh, mesh.orchestrator, tracing=tracing, data_converter=pydantic_data_converter
        )
        return cls(client, mesh, mesh_file=path)

    @property
    def mesh(self) -> Mesh:
        """The mesh as its file reads now (read again only when the file changed)."""
        if self._mesh_file is None:
            return self._mesh
        stamp = _stamp(self._mesh_file)
        if stamp != self._mesh_stamp:
            try:
                self._mesh = load_mesh(self._mesh_file)
            except MeshError as err:
                # A half-written or broken edit: keep serving the last good mesh.
                log.warning("mesh file not reloaded: %s", err)
            else:
                self._mesh_stamp = stamp
        return self._mesh

    async def open(
        self,
        session: str | None = None,
        *,
        owner: str = "",
        key: str | None = None,
        config: SessionConfig | None = None,
        tools: list[str] | None = None,
        **settings: Any,
    ) -> Session:
        """Start a session, or attach to it when it is already running.

        ``session`` names it (started or resumed); without a name, an
        idempotency ``key`` derives one from ``owner`` and the key, so the
        same create sent twice makes one session; with neither, it is new.
        ``owner`` is the API user it belongs to (kept in its memo). ``config``
        defaults to every team of the mesh with ``settings`` (``model``,
        ``stream``, ...). ``tools`` limits it; a limit the session refuses
        ends a session that this call named (:class:`UnknownTool`).
        """
        mesh = self.mesh
        config = config or SessionConfig.for_mesh(mesh, **settings)
        if session is not None:
            workflow_id = session_workflow_id(session)
        elif key is not None:
            workflow_id = keyed_session_id(owner, key)
        else:
            workflow_id = f"{SESSION_PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE,
                SessionState(config=config, owner=owner),
                id=workflow_id,
                task_queue=mesh.orchestrator.task_queue,
                # How soon another replica retries a turn whose worker died mid-task.
                task_timeout=self.task_timeout,
                memo={"owner": owner} if owner else None,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # An ended session's id is never silently reused for a new, empty one.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            raise SessionEnded(f"session {workflow_id} has ended; start a new one") from None
        opened = self.session(workflow_id)
        if tools is not None:
            try:
                opened.allowed_tools = await opened.limit_tools(tools, key=key)
            except UnknownTool:
                if session is None:
                    await opened.end(key=key)  # nothing was said in it: leave nothing behind
                raise
        return opened

    def session(self, session: str) -> Session:
        """A session by id, unchecked (see :meth:`attach`)."""
        # A handle without a run id follows the session across continue-as-new.
        return Session(self.client, self.client.get_workflow_handle(session_workflow_id(session)))

    async def attach(self, session: str, owner: str | None = None) -> Session:
        """A session that exists and is open; with ``owner``, one that belongs to them.

        Someone else's session is :class:`SessionNotFound`, as a missing one is.
        """
        found = self.session(session)
        try:
            description = await found.handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise SessionNotFound(f"no session {found.id}") from None
            raise
        if owner is not None and await description.memo_value("owner", default=None) != owner:
            raise SessionNotFound(f"no session {found.id}")
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise SessionEnded(f"session {found.id} has ended")
        return found

    async def list(self, owner: str | None = None) -> list[SessionSummary]:
        """Open sessions, newest first; only ``owner``'s if given."""
        query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        found = [
            SessionSummary(id=w.id, started=w.start_time.isoformat(timespec="seconds"))
            async for w in self.client.list_workflows(query)
            if owner is None or (await w.memo()).get("owner") == owner
        ]
        return sorted(found, key=lambda row: row.started, reverse=True)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
