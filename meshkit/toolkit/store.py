"""A local SQLite store of side effects, keyed by idempotency key.

The offline backend of the teams' side-effecting tools. Writing the same key
twice returns the first record and writes nothing, so a retried activity or a
replayed operation never creates a second record.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshkit.mesh import MeshError

STATE_DIR_ENV = "MESH_STATE_DIR"
LOCAL_STORES_ENV = "MESH_LOCAL_STORES"


def require_backend(backend: str | None, variable: str, what: str) -> None:
    """Refuse to fall back to a local store where ``MESH_LOCAL_STORES=off``.

    A local store is one file per machine: replicas on one machine share it,
    but a call retried on another pod would not find the first pod's record
    and would make a second one. Deployments that run a team's worker on
    several pods turn local stores off, so that a worker without its backend
    stops at start with this error instead."""
    setting = os.environ.get(LOCAL_STORES_ENV, "on").strip().lower()
    if setting not in {"on", "off"}:
        raise MeshError(f"{LOCAL_STORES_ENV} must be 'on' or 'off', got {setting!r}")
    if setting == "off" and not backend:
        raise MeshError(
            f"{what} need {variable}: local stores are off ({LOCAL_STORES_ENV}=off, for "
            "replicas on several machines), so set the backend or turn them on"
        )


def state_dir() -> Path:
    """Where local stores live: ``MESH_STATE_DIR``, else ``.run/state`` under the
    current directory.

    Never beside this code, which may be installed read-only in site-packages.
    scripts/demo runs every worker from the checkout and sets ``MESH_STATE_DIR``
    to its run directory's ``state/``, so a build started from another checkout
    (a rollback) writes to the same stores; the image sets it to a volume.
    """
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else Path.cwd() / ".run" / "state"


class IdempotentStore:
    """Records of one kind in one SQLite file; safe across processes."""

    def __init__(self, path: Path, kind: str) -> None:
        if not kind.isidentifier():
            raise ValueError(f"invalid record kind {kind!r}")
        self.path = path
        self.kind = kind

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.kind} ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " idempotency_key TEXT NOT NULL UNIQUE,"
            " record TEXT NOT NULL,"
            " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
        )
        return db

    def put(self, key: str, build: Callable[[int], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """Store ``build(seq)`` under ``key`` unless the key is there.

        Returns the stored record and whether this call created it. The check
        and the insert are one transaction, so two concurrent attempts with
        one key still leave one record.
        """
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                f"SELECT record FROM {self.kind} WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row:
                db.execute("COMMIT")
                return json.loads(row[0]), False
            (seq,) = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {self.kind}").fetchone()
            record = build(seq)
            db.execute(
                f"INSERT INTO {self.kind} (seq, idempotency_key, record) VALUES (?, ?, ?)",
                (seq, key, json.dumps(record)),
            )
            db.execute("COMMIT")
            return record, True
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def all(self) -> list[dict[str, Any]]:
        db = self._connect()
        try:
            rows = db.execute(f"SELECT record FROM {self.kind} ORDER BY seq").fetchall()
        finally:
            db.close()
        return [json.loads(r[0]) for r in rows]
