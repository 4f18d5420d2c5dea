"""The demo's replicas on paper: how a replica count is read (and a bad one
refused with the reason), and that every replica gets its own pidfile, log,
metrics port and health port, none shared with another component's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshdev.replicas import (
    Replica,
    ReplicaError,
    demo_ports,
    parse_replicas,
    replica_files,
    takeover_env,
)

KNOWN = ["it", "finance", "orchestrator"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("spec", "counts"),
    [
        ("", {}),
        ("2", {"it": 2, "finance": 2, "orchestrator": 2}),
        ("it=3", {"it": 3}),
        ("2,it=3", {"it": 3, "finance": 2, "orchestrator": 2}),
        ("it=3,2", {"it": 2, "finance": 2, "orchestrator": 2}),
        (" orchestrator=2 , ", {"orchestrator": 2}),
    ],
)
def test_a_replica_spec_gives_counts_per_component_the_later_entry_winning(
    spec: str, counts: dict[str, int]
) -> None:
    assert parse_replicas(spec, KNOWN) == counts


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("0", "not a count"),
        ("two", "not a count"),
        ("it=-1", "not a count"),
        ("it=17", "from 1 to 16"),
        ("hr=2", "no component 'hr'"),
        ("it=", "not a count"),
    ],
)
def test_a_bad_replica_spec_is_refused_with_the_reason(spec: str, reason: str) -> None:
    with pytest.raises(ReplicaError, match=reason):
        parse_replicas(spec, KNOWN)


def test_the_demo_refuses_a_bad_replica_count_before_starting_anything(tmp_path: Path) -> None:
    env = {**os.environ, "MESH_FILE": str(ROOT / "mesh.toml"), "MESH_REPLICAS": "it=0"}
    done = subprocess.run(
        [sys.executable, "-m", "meshdev.replicas", "check", "--run-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "replicas: 'it=0' is not a count" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_replica_has_its_own_files_and_ports() -> None:
    run_dir = Path("/run-dir")
    replicas = [Replica(c, n) for c in KNOWN for n in (1, 2, 3)]
    ports = [p for r in replicas for p in demo_ports(r, KNOWN).values()]
    assert len(set(ports)) == len(ports), "no two replicas share a port"
    assert len({r.pidfile(run_dir) for r in replicas}) == len(replicas)
    assert len({r.log(run_dir) for r in replicas}) == len(replicas)
    # Replica 1 keeps the single worker's names and ports.
    assert Replica("it", 1).pidfile(run_dir) == run_dir / "it.pid"
    assert Replica("it", 2).log(run_dir) == run_dir / "logs" / "it-2.log"
    assert Replica("it", 2).pidfile(run_dir, "b7") == run_dir / "it-2@b7.pid"
    assert demo_ports(Replica("orchestrator", 1), KNOWN) == {"metrics": 9090, "health": 9190}
    assert demo_ports(Replica("it", 1), KNOWN)["metrics"] == 9091
    assert demo_ports(Replica("it", 2), KNOWN)["metrics"] == 9094


def test_replica_pidfiles_are_told_apart_from_another_builds_and_components(
    tmp_path: Path,
) -> None:
    for name in ("it.pid", "it-2.pid", "it-3.pid", "it@b1.pid", "it-2@b1.pid", "it-ops.pid"):
        (tmp_path / name).write_text("1\n")
    assert sorted(replica_files(tmp_path, "it")) == [1, 2, 3]
    assert sorted(replica_files(tmp_path, "it", "b1")) == [1, 2]


def test_only_a_component_with_replicas_shortens_its_takeover_timeouts() -> None:
    assert takeover_env("it", 1) == {}
    assert takeover_env("it", 2) == {"MESH_STICKY_TIMEOUT_S": "1"}
    assert takeover_env("orchestrator", 2) == {"MESH_STICKY_TIMEOUT_S": "1"}
