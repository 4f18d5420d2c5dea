"""`scripts/demo --help` is often the first command a new user types: it prints
the usage and exits, before installing, starting or writing anything."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Every program the script could install or start with: a copy here records
# that it was called, so the test sees any attempt.
WATCHED = ("uv", "go", "python", "python3", "pip", "temporal", "apt-get", "sudo", "setsid")


def checkout_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The demo script in a bare checkout of its own, and a directory of
    watched programs that leave a mark when run."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("demo", "lib.sh"):
        shutil.copy2(ROOT / "scripts" / name, checkout / "scripts" / name)
    watched = tmp_path / "bin"
    watched.mkdir()
    for name in WATCHED:
        program = watched / name
        program.write_text(f'#!/bin/sh\necho {name} >>"{tmp_path}/called"\nexit 1\n')
        program.chmod(0o755)
    return checkout, watched


def run_demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    checkout, watched = checkout_copy(tmp_path)
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "demo"), *args],
        env={
            "PATH": f"{watched}:/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "TEMPORAL_CLI": str(tmp_path / "no-temporal"),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, checkout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_starts_nothing(tmp_path: Path, flag: str) -> None:
    result, checkout = run_demo(tmp_path, flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The whole mesh on this machine"), result.stdout
    assert "scripts/demo --message" in result.stdout
    assert result.stderr == ""
    assert not (tmp_path / "called").exists(), (tmp_path / "called").read_text()
    # No run directory, pidfile or log: nothing was started or written.
    assert sorted(p.name for p in checkout.iterdir()) == ["scripts"]
    assert not (tmp_path / "home").exists()


def test_help_after_other_arguments_also_starts_nothing(tmp_path: Path) -> None:
    result, checkout = run_demo(tmp_path, "--session", "mine", "--help")
    assert result.returncode == 0, result.stderr
    assert "scripts/demo --session ID" in result.stdout
    assert not (tmp_path / "called").exists()
    assert sorted(p.name for p in checkout.iterdir()) == ["scripts"]


def test_the_usage_names_every_command_the_script_runs() -> None:
    script = (ROOT / "scripts" / "demo").read_text()
    usage = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    commands = re.findall(r"^  ([a-z|]+)\)$", script, flags=re.MULTILINE)
    names = [name for branch in commands for name in branch.split("|")]
    assert len(names) >= 6, f"the script's commands were not found: {names}"
    missing = [name for name in names if f"scripts/demo {name}" not in usage]
    assert not missing, f"commands the usage does not mention: {missing}"
