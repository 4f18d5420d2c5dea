"""The mesh file: loading, validation, and how a namespace's connection is configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshkit.mesh import DEFAULT_MESH_FILE, MeshError, connect_config, load_mesh, mesh_path

REPO_MESH = Path(__file__).resolve().parent.parent / "mesh.toml"

VALID = """
[temporal]
default_address = "mesh-default:7233"

[orchestrator]
namespace = "orchestrator"
task_queue = "orchestrator"

[teams.it]
namespace = "it"
task_queue = "it-tools"
service = "ItService"
endpoint = "it-tools"
{it_extra}

[teams.finance]
namespace = "finance"
task_queue = "finance-tools"
service = "FinanceService"
endpoint = "{finance_endpoint}"
"""


def mesh_text(*, it_extra: str = "", finance_endpoint: str = "finance-tools") -> str:
    return VALID.format(it_extra=it_extra, finance_endpoint=finance_endpoint)


def write(tmp_path: Path, text: str, name: str = "mesh.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def clean_temporal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No TEMPORAL_* variable and no user temporal.toml can leak into a test."""
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "no-such-temporal.toml"))
    return monkeypatch


# --- load_mesh --------------------------------------------------------------------------


def test_the_repository_mesh_file_declares_the_it_and_finance_teams() -> None:
    mesh = load_mesh(REPO_MESH)

    assert set(mesh.teams) == {"it", "finance"}
    assert {name: team.endpoint for name, team in mesh.teams.items()} == {
        "it": "it-tools",
        "finance": "finance-tools",
    }
    assert mesh.team_callers("it") == ["orchestrator"]
    assert mesh.team_package("finance") == "services.finance"
    assert mesh.team("it").namespace == "it"
    assert mesh.team("it").task_queue == "it-tools"
    assert mesh.team("it").service == "ItService"
    assert mesh.team("finance").namespace == "finance"
    assert mesh.team("finance").service == "FinanceService"
    assert mesh.orchestrator.namespace == "orchestrator"
    assert mesh.temporal.default_address == "127.0.0.1:7233"


def test_the_default_mesh_file_is_the_repositorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESH_FILE", raising=False)

    assert DEFAULT_MESH_FILE == REPO_MESH
    assert mesh_path() == REPO_MESH


def test_mesh_file_variable_points_at_another_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, mesh_text())
    monkeypatch.setenv("MESH_FILE", str(path))

    assert load_mesh().temporal.default_address == "mesh-default:7233"


def test_an_unknown_team_is_a_mesh_error_naming_the_known_teams() -> None:
    with pytest.raises(
        MeshError, match=r"team 'hr' is not in the mesh file \(teams: finance, it\)"
    ):
        load_mesh(REPO_MESH).team("hr")


def test_a_missing_mesh_file_is_a_mesh_error(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match="mesh file not found"):
        load_mesh(tmp_path / "absent.toml")


def test_invalid_toml_is_a_mesh_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[temporal\ndefault_address = ")

    with pytest.raises(MeshError, match="is not valid TOML"):
        load_mesh(path)


def test_an_unknown_key_is_a_mesh_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text(it_extra='colour = "blue"'))

    with pytest.raises(MeshError, match="is invalid") as err:
        load_mesh(path)

    assert "colour" in str(err.value)


def test_a_missing_section_is_a_mesh_error(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text().replace("[temporal]", "[temporary]"))

    with pytest.raises(MeshError, match="is invalid") as err:
        load_mesh(path)

    assert "temporal" in str(err.value)


def test_an_endpoint_name_with_an_underscore_is_a_mesh_error(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text(finance_endpoint="it_tools"))

    with pytest.raises(MeshError, match="invalid endpoint name 'it_tools'"):
        load_mesh(path)


def test_an_invalid_namespace_name_is_a_mesh_error(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text().replace('namespace = "it"', 'namespace = "it tools"'))

    with pytest.raises(MeshError, match="invalid namespace name 'it tools'"):
        load_mesh(path)


def test_two_teams_sharing_an_endpoint_is_a_mesh_error(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text(finance_endpoint="it-tools"))

    with pytest.raises(MeshError, match="two teams share one endpoint name"):
        load_mesh(path)


def test_mesh_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, mesh_text(finance_endpoint="it-tools"), name="team-mesh.toml")

    with pytest.raises(MeshError, match=r"team-mesh\.toml"):
        load_mesh(path)


# --- connect_config ---------------------------------------------------------------------


def test_address_comes_from_the_environment_when_set(
    clean_temporal_env: pytest.MonkeyPatch,
) -> None:
    clean_temporal_env.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    mesh = load_mesh(REPO_MESH)

    config = connect_config(mesh, mesh.team("it"))

    assert config["target_host"] == "temporal.example:7233"
    assert config["namespace"] == "it"


def test_address_falls_back_to_the_mesh_default(clean_temporal_env: pytest.MonkeyPatch) -> None:
    mesh = load_mesh(REPO_MESH)

    config = connect_config(mesh, mesh.orchestrator)

    assert config == {"target_host": "127.0.0.1:7233", "namespace": "orchestrator"}


def test_namespace_always_comes_from_the_mesh(clean_temporal_env: pytest.MonkeyPatch) -> None:
    clean_temporal_env.setenv("TEMPORAL_NAMESPACE", "somewhere-else")
    mesh = load_mesh(REPO_MESH)

    assert connect_config(mesh, mesh.team("finance"))["namespace"] == "finance"
    assert connect_config(mesh, mesh.orchestrator)["namespace"] == "orchestrator"


def test_a_namespace_naming_a_profile_uses_that_profile_of_temporal_toml(
    clean_temporal_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiles = write(
        tmp_path,
        '[profile.default]\naddress = "default.example:7233"\n\n'
        '[profile.it]\naddress = "it.example:7233"\napi_key = "it-key"\n',
        name="temporal.toml",
    )
    clean_temporal_env.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
    mesh = load_mesh(write(tmp_path, mesh_text(it_extra='profile = "it"')))

    it = connect_config(mesh, mesh.team("it"))
    finance = connect_config(mesh, mesh.team("finance"))

    assert it["target_host"] == "it.example:7233"
    assert it["api_key"] == "it-key"
    assert it["namespace"] == "it"
    assert finance["target_host"] == "default.example:7233"
    assert "api_key" not in finance
    assert finance["namespace"] == "finance"


def test_the_environment_address_overrides_a_profiles(
    clean_temporal_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiles = write(tmp_path, '[profile.it]\naddress = "it.example:7233"\n', name="temporal.toml")
    clean_temporal_env.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
    clean_temporal_env.setenv("TEMPORAL_ADDRESS", "env.example:7233")
    mesh = load_mesh(write(tmp_path, mesh_text(it_extra='profile = "it"')))

    assert connect_config(mesh, mesh.team("it"))["target_host"] == "env.example:7233"
