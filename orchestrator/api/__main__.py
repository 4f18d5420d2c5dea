"""Serve the HTTP API and the web chat: ``python -m orchestrator.api``.

Settings (environment): ``MESH_API_HOST`` (127.0.0.1), ``MESH_API_PORT`` (8000),
``MESH_API_TEMPORAL_UI`` (the Temporal UI's base URL, for links), and the
users' tokens (``MESH_API_TOKENS`` or ``MESH_API_TOKENS_FILE``, see
``orchestrator.api.auth``). The mesh file is ``MESH_FILE`` or ./mesh.toml; a new
session gets the teams it names when the session is created.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit import observability
from meshkit.mesh import MeshError, load_mesh, mesh_path
from meshkit.runtime import configure_logging
from orchestrator.api.app import create_app
from orchestrator.api.auth import AuthError, load_users

log = logging.getLogger("orchestrator.api")


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESH_API_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")
    temporal_ui: str = Field(
        default="http://127.0.0.1:8233", description="Temporal UI base URL, for session links."
    )


def main() -> None:
    configure_logging()
    settings = ApiSettings()
    try:
        path = mesh_path()
        mesh = load_mesh(path)
        telemetry = observability.setup("api", mesh.orchestrator.namespace)
        # Sessions get the teams of the mesh file as it reads when each is created.
        app = create_app(
            mesh, load_users(), settings.temporal_ui, mesh_file=path, tracing=telemetry.plugins
        )
    except (MeshError, AuthError) as err:
        log.error("the API cannot start: %s", err)
        sys.exit(1)
    # Access logs carry paths only (tokens travel in headers, never in URLs the API logs).
    try:
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level="warning", access_log=False
        )
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
