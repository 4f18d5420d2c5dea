"""The mesh file: namespaces, task queues and Nexus endpoints, declared once.

Every process of the mesh (the workers, the setup command, the chat client) reads the same ``mesh.toml`` through :func:`load_mesh`, and connects to
a namespace through :func:`connect`, which takes the address, API key and TLS
settings from Temporal's environment configuration.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, Interceptor, Plugin
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.plugin import SimplePlugin
from temporalio.service import RPCError, RPCStatusCode

from meshkit.temporal_runtime import ensure_installed

DEFAULT_MESH_FILE = Path(__file__).resolve().parent.parent / "mesh.toml"
"""The mesh file of this checkout; ``MESH_FILE`` in the environment overrides it."""

_ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class MeshError(Exception):
    """The mesh file is missing, unreadable or inconsistent."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamespaceConfig(_Strict):
    namespace: str = Field(description="Temporal namespace this component runs in.")
    task_queue: str = Field(description="Task queue its worker polls.")
    profile: str | None = Field(
        default=None,
        description="Profile of Temporal's environment configuration (temporal.toml) used "
        "to reach this namespace; unset means the default profile.",
    )
    deployment: str | None = Field(
        default=None,
        description="Name of the Temporal Worker Deployment this component's worker runs "
        "as a version of; unset means its task queue's name.",
    )

    @property
    def deployment_name(self) -> str:
        """The Worker Deployment of this component (see ``deployment``)."""
        return self.deployment or self.task_queue

    @field_validator("namespace")
    @classmethod
    def _namespace_name(cls, value: str) -> str:
        if not _NAMESPACE_NAME.match(value):
            raise ValueError(f"invalid namespace name {value!r}")
        return value

    @field_validator("deployment")
    @classmethod
    def _deployment_name(cls, value: str | None) -> str | None:
        # The server joins deployment name and build id with a dot.
        if value is not None and not _DEPLOYMENT_NAME.match(value):
            raise ValueError(
                f"invalid deployment name {value!r}: letters, digits, '-' and '_' only"
            )
        return value


class TeamConfig(NamespaceConfig):
    service: str = Field(description="Name of the team's Nexus service (its contract).")
    endpoint: str = Field(description="Nexus endpoint routing to the team's task queue.")
    package: str | None = Field(
        default=None,
        description="Python package of the team's code, holding a `team` module with "
        "`register()`; unset means `services.<team>`.",
    )
    callers: list[str] | None = Field(
        default=None,
        description="Namespaces whose workflows may call this team; unset means the "
        "orchestrator's namespace only.",
    )

    @field_validator("package")
    @classmethod
    def _package_name(cls, value: str | None) -> str | None:
        if value is not None and not all(part.isidentifier() for part in value.split(".")):
            raise ValueError(f"invalid Python package name {value!r}")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_name(cls, value: str) -> str:
        if not _ENDPOINT_NAME.match(value):
            raise ValueError(
                f"invalid endpoint name {value!r}: letters, digits and '-' only, "
                "starting with a letter"
            )
        return value


class TemporalDefaults(_Strict):
    default_address: str = Field(
        description="Address used when neither the environment nor a profile names one."
    )


class Mesh(_Strict):
    temporal: TemporalDefaults
    orchestrator: NamespaceConfig
    teams: dict[str, TeamConfig]

    def team(self, name: str) -> TeamConfig:
        try:
            return self.teams[name]
        except KeyError:
            known = ", ".join(sorted(self.teams)) or "none"
            raise MeshError(f"team {name!r} is not in the mesh file (teams: {known})") from None

    def team_package(self, name: str) -> str:
        """The Python package holding a team's code."""
        return self.team(name).package or f"services.{name}"

    def component(self, name: str) -> NamespaceConfig:
        """The orchestrator's or a team's config, by component name."""
        return self.orchestrator if name == "orchestrator" else self.team(name)

    def team_callers(self, name: str) -> list[str]:
        """Namespaces a team accepts calls from."""
        callers = self.team(name).callers
        return list(callers) if callers is not None else [self.orchestrator.namespace]

    def isolated(self, suffix: str, address: str | None = None) -> Mesh:
        """The same namespaces with every task queue and endpoint suffixed, so a
        second deployment (a test, a benchmark) shares nothing with this one."""

        def deployment(config: NamespaceConfig) -> str | None:
            return f"{config.deployment}-{suffix}" if config.deployment else None

        teams = {
            name: team.model_copy(
                update={
                    "task_queue": f"{team.task_queue}-{suffix}",
                    "endpoint": f"{team.endpoint}-{suffix}",
                    "deployment": deployment(team),
                }
            )
            for name, team in self.teams.items()
        }
        return self.model_copy(
            update={
                "temporal": TemporalDefaults(
                    default_address=address or self.temporal.default_address
                ),
                "orchestrator": self.orchestrator.model_copy(
                    update={
                        "task_queue": f"{self.orchestrator.task_queue}-{suffix}",
                        "deployment": deployment(self.orchestrator),
                    }
                ),
                "teams": teams,
            }
        )

    def to_toml(self) -> str:
        """This mesh as a mesh file (the subset of TOML the file uses)."""

        def table(header: str, model: BaseModel) -> str:
            fields = model.model_dump(exclude_none=True)
            return "\n".join(
                [f"[{header}]", *(f"{k} = {json.dumps(v)}" for k, v in fields.items())]
            )

        parts = [table("temporal", self.temporal), table("orchestrator", self.orchestrator)]
        parts += [table(f"teams.{name}", team) for name, team in self.teams.items()]
        return "\n\n".join(parts) + "\n"


def mesh_path() -> Path:
    return Path(os.environ.get("MESH_FILE") or DEFAULT_MESH_FILE)


def load_mesh(path: Path | None = None) -> Mesh:
    """Read and validate the mesh file; raises :class:`MeshError` with the reason."""
    path = path or mesh_path()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MeshError(f"mesh file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise MeshError(f"mesh file {path} is not valid TOML: {err}") from None
    try:
        mesh = Mesh.model_validate(raw)
    except ValidationError as err:
        raise MeshError(f"mesh file {path} is invalid:\n{err}") from None
    endpoints = [team.endpoint for team in mesh.teams.values()]
    if len(set(endpoints)) != len(endpoints):
        raise MeshError(f"mesh file {path}: two teams share one endpoint name")
    return mesh


def connect_config(mesh: Mesh, target: NamespaceConfig) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect`` for one namespace of the mesh.

    Address, API key and TLS come from Temporal's environment configuration
    (environment variables, then the selected profile of temporal.toml); the
    namespace always comes from the mesh file, which owns it.
    """
    try:
        profile = ClientConfigProfile.load(profile=target.profile)
    except Exception as err:  # the SDK raises its own ConfigError, or OSError for a bad file
        raise MeshError(
            f"cannot load Temporal connection settings for namespace {target.namespace!r}"
            f" (profile {target.profile or 'default'!r}): {err}"
        ) from err
    config: dict[str, Any] = dict(profile.to_client_connect_config())
    config.setdefault("target_host", mesh.temporal.default_address)
    config["namespace"] = target.namespace
    return config


async def connect(
    mesh: Mesh,
    target: NamespaceConfig,
    *,
    plugins: Sequence[Plugin] = (),
    tracing: Sequence[Plugin] = (),
    data_converter: DataConverter | None = None,
    interceptors: Sequence[Interceptor] = (),
    require_namespace: bool = False,
) -> Client:
    """Connect to one namespace of the mesh.

    ``tracing`` is the plugins that carry the trace (those
    :func:`meshkit.observability.setup` returned in ``Telemetry.plugins``).
    With ``require_namespace``, a namespace that does not exist is a
    :class:`MeshError` here, rather than a worker that starts, logs that it
    polls, and then fails. The process's Temporal runtime is installed first
    (:mod:`meshkit.temporal_runtime`), so the SDK core logs to the log, not
    to stdout.
    """
    ensure_installed()
    config = connect_config(mesh, target)
    # Outermost first: the given plugins, then tracing, then the given
    # interceptors. So the span tracing makes current for an activity, a
    # workflow or a Nexus handler is the one the code and its interceptors
    # (a team's door) see, whatever another plugin did to the context.
    traced = list(tracing)
    inner = [SimplePlugin("mesh.interceptors", interceptors=list(interceptors))] if traced else []
    kwargs: dict[str, Any] = {
        "plugins": [*plugins, *traced, *inner],
        "interceptors": [] if traced else list(interceptors),
    }
    if data_converter is not None:
        kwargs["data_converter"] = data_converter
    try:
        client = await Client.connect(**config, **kwargs)
    except RuntimeError as err:
        raise MeshError(
            f"cannot reach Temporal at {config['target_host']} "
            f"(namespace {target.namespace!r}): {err}"
        ) from err
    if require_namespace:
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=target.namespace)
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            raise MeshError(
                f"namespace {target.namespace!r} does not exist at {config['target_host']}: "
                "run `python -m workers.setup`"
            ) from None
    return client
