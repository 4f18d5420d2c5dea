"""The import graph keeps every room apart, has no cycle, and keeps meshkit's layers.

Read from the source (``ast``), not from what happens to be imported: every
import counts, at the top of a module, inside a function, or under ``if
TYPE_CHECKING:``. An import placed inside a function still makes the two
modules depend on each other; it only hides the cycle until the function runs.

The rooms: a team's code never imports the orchestrator's nor the other way
round; ``workers/`` holds entry points nothing imports; the benchmark and the
tests sit beside the product; ``meshdev`` (the demo's harness) is never
imported by anything deployed, which a test checks in a fresh interpreter too.

The layers inside ``meshkit``, lowest first (:data:`LAYERS`); a module imports
modules of its own layer or of lower ones, never of a higher one:

1. **base**: the mesh file and connections (``mesh``), the process's Temporal
   runtime (``temporal_runtime``), settings errors (``settings``), waiting
   (``polling``), the takeover timeouts of replicas (``failover``). They
   import nothing else of meshkit.
2. **observability**: traces, metrics, logs.
3. **toolkit**: what a team builds its service on (the door logs and counts
   through observability).
4. **deployments**: Worker Versioning (``versioning``) and health checks
   (``health``).
5. **runtime**: running a worker process (``runtime``), which starts health
   checks and promotes its version.
6. **composition**: a team's worker (``team_worker``), setting up the mesh
   (``setup``), rollouts (``rollout``), workflows whose task keeps failing
   (``stuck``).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from meshkit.mesh import DEFAULT_MESH_FILE, load_mesh

ROOT = Path(__file__).resolve().parent.parent
MESH = load_mesh(DEFAULT_MESH_FILE)

RULES = {
    # (importing package, imported top-level package): why it is forbidden
    ("orchestrator", "services"): "the orchestrator learns teams' tools from catalogs",
    ("services", "orchestrator"): "a team's room has no door into the orchestrator's",
    ("meshkit", "orchestrator"): "shared infrastructure depends on no product package",
    ("meshkit", "services"): "shared infrastructure loads teams by name, never by import",
    ("meshkit", "bench"): "the benchmark sits beside the product",
    ("orchestrator", "bench"): "the benchmark sits beside the product",
    ("services", "bench"): "the benchmark sits beside the product",
    ("meshkit", "meshdev"): "a deployed worker never imports the demo's harness",
    ("orchestrator", "meshdev"): "a deployed worker never imports the demo's harness",
    ("services", "meshdev"): "a deployed worker never imports the demo's harness",
    ("workers", "meshdev"): "a deployed worker never imports the demo's harness",
    ("meshdev", "orchestrator"): "the harness runs components by module name, never by import",
    ("meshdev", "services"): "the harness runs components by module name, never by import",
    ("meshdev", "bench"): "the benchmark sits beside the product",
    ("meshkit", "soak"): "the chaos soak sits beside the product",
    ("orchestrator", "soak"): "the chaos soak sits beside the product",
    ("services", "soak"): "the chaos soak sits beside the product",
    ("meshdev", "soak"): "the chaos soak sits beside the product",
    ("bench", "soak"): "the chaos soak sits beside the product",
}
PACKAGES = ("meshkit", "meshdev", "orchestrator", "services", "workers", "bench", "soak", "tests")
CYCLE_FREE = ("meshkit", "meshdev", "orchestrator", "services", "workers", "bench", "soak")
"""The project's packages, in which no import cycle is allowed."""

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "meshkit",
            "meshkit.failover",
            "meshkit.heap",
            "meshkit.mesh",
            "meshkit.polling",
            "meshkit.settings",
            "meshkit.temporal_runtime",
            "meshkit.tuning",
        ),
    ),
    ("observability", ("meshkit.observability",)),
    ("toolkit", ("meshkit.toolkit",)),
    ("deployments", ("meshkit.versioning", "meshkit.health")),
    ("runtime", ("meshkit.runtime",)),
    (
        "composition",
        ("meshkit.team_worker", "meshkit.setup", "meshkit.rollout", "meshkit.stuck"),
    ),
)


# --- reading the graph ----------------------------------------------------------------------


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every absolute import of ``path`` (line, top-level package), wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return sorted(found)  # ast.walk goes breadth first; report in line order


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def module_imports(name: str, path: Path, known: Mapping[str, Path]) -> dict[str, int]:
    """The modules of ``known`` that module ``name`` imports, each with its first line.

    ``from a import b`` imports module ``a.b`` when there is one, else ``a``;
    an import of a module that is not in ``known`` (another project, the
    standard library) is left out. Relative imports are resolved.
    """

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        return ".".join(parts) or None

    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str | None] = []
        if isinstance(node, ast.Import):
            targets = [resolve(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in known else resolve(base))
        for target in targets:
            if target is not None and target != name:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line} over ``packages`` under ``root``."""
    known = modules_under(root, packages)
    return {name: module_imports(name, path, known) for name, path in known.items()}


def cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The import cycles of ``graph``: one path per strongly connected group of
    modules, from its first module (by name) back to itself."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative: a deep package must not hit the recursion limit.
        work = [(start, iter(sorted(graph.get(start, {}))))]
        order[start] = low[start] = len(order)
        stack.append(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in order:
                    order[nxt] = low[nxt] = len(order)
                    stack.append(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                    break
                if nxt in stack:
                    low[node] = min(low[node], order[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == order[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return sorted(_path_through(group, graph) for group in groups)


def _path_through(group: set[str], graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """A shortest cycle through the group's first module, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a cycle")


def describe(cycle: list[str], graph: Mapping[str, Mapping[str, int]]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join([*steps, cycle[-1]])


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s layer (``meshkit`` itself is base)."""
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "meshkit" and module.startswith(prefix + ".")):
                return index
    return None


def layer_violations(graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    broken = []
    for module, imported in sorted(graph.items()):
        if not module.startswith("meshkit"):
            continue
        own = layer_of(module)
        if own is None:
            broken.append(f"{module} is in no layer: add it to LAYERS")
            continue
        for target, line in sorted(imported.items()):
            theirs = layer_of(target) if target.startswith("meshkit") else None
            if theirs is not None and theirs > own:
                broken.append(
                    f"{module}:{line} imports {target}: layer {LAYERS[own][0]} is below "
                    f"{LAYERS[theirs][0]}"
                )
    return broken


def violations(package: str, path: Path) -> list[str]:
    """The imports of ``path`` (in ``package``) that break the floor plan."""
    broken = []
    for line, imported in imports_of(path):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
        where += f" imports {imported}"
        if imported == "workers":
            broken.append(f"{where}: workers holds entry points, nothing imports them")
        elif package in ("meshkit", "orchestrator", "services") and imported == "tests":
            broken.append(f"{where}: product code never imports tests")
        elif (package, imported) in RULES:
            broken.append(f"{where}: {RULES[(package, imported)]}")
    return broken


# --- the project's graph ------------------------------------------------------------------


def test_the_import_graph_keeps_every_room_apart() -> None:
    broken = []
    for package in PACKAGES:
        paths = sorted((ROOT / package).rglob("*.py"))
        assert paths, f"no Python files under {package}/: the check would prove nothing"
        for path in paths:
            broken += violations(package, path)
    assert not broken, "\n".join(broken)


def test_no_import_cycle_anywhere_in_the_project() -> None:
    graph = import_graph(ROOT, CYCLE_FREE)
    assert "meshkit.mesh" in graph["meshkit.setup"], "the graph misses plain imports"

    found = cycles(graph)

    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def test_meshkit_keeps_its_layers() -> None:
    graph = import_graph(ROOT, ("meshkit",))
    assert "meshkit.versioning" in graph["meshkit.runtime"], "the graph misses imports"

    assert not layer_violations(graph), "\n".join(layer_violations(graph))


def deployed_modules() -> list[str]:
    """What the image runs (``python -m`` in deploy/entrypoint.sh; a package's
    ``__main__``), and each team's code, which ``workers.team`` loads by name."""
    ran = re.findall(r"exec python -m ([\w.]+)", (ROOT / "deploy" / "entrypoint.sh").read_text())
    assert "workers.team" in ran, "deploy/entrypoint.sh no longer runs the team worker"
    modules = [
        f"{name}.__main__" if (ROOT / name.replace(".", "/")).is_dir() else name for name in ran
    ]
    return modules + [f"{MESH.team_package(team)}.team" for team in MESH.teams]


def test_a_deployed_worker_never_imports_the_demos_harness() -> None:
    # A fresh interpreter, so what this test process imported does not count.
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    modules = deployed_modules()
    done = subprocess.run(
        [sys.executable, "-c", code, *modules],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert {"meshkit", "orchestrator", "workers"} <= loaded, "the modules were not imported"
    assert not loaded & {"meshdev", "bench", "tests"}, (
        f"{modules} import {loaded & {'meshdev', 'bench', 'tests'}}"
    )


# --- the checks catch what they are for -----------------------------------------------------


def test_the_import_check_reports_each_forbidden_import_with_its_line(tmp_path: Path) -> None:
    module = tmp_path / "planted.py"
    module.write_text(
        "import json\n"
        "from workers.team import run_team\n"
        "if False:\n"
        "    import services.it.contract\n"
        "from bench import report\n"
        "from tests.helpers import x\n"
        "from . import sibling\n"
    )
    assert [v.split(": ")[0] for v in violations("orchestrator", module)] == [
        f"{module}:2 imports workers",
        f"{module}:4 imports services",
        f"{module}:5 imports bench",
        f"{module}:6 imports tests",
    ]
    assert [v.split(": ")[0] for v in violations("bench", module)] == [
        f"{module}:2 imports workers"
    ]


def plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_cycle_check_reports_a_cycle_hidden_inside_a_function(tmp_path: Path) -> None:
    plant(
        tmp_path,
        {
            "kit/__init__.py": "",
            "kit/mesh.py": "def connect():\n    from kit import tracing\n",
            "kit/tracing.py": "from kit.runtime import problems\n",
            "kit/runtime.py": "import json\n\n\ndef run():\n    from .mesh import connect\n",
            "kit/alone.py": "from kit import mesh\n",
            "app/__init__.py": "",
            "app/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.b import B\n",
            "app/b.py": "from app import a\n",
        },
    )
    graph = import_graph(tmp_path, ("kit", "app"))

    assert graph["kit.runtime"] == {"kit.mesh": 5}
    assert cycles(graph) == [
        ["app.a", "app.b", "app.a"],
        ["kit.mesh", "kit.tracing", "kit.runtime", "kit.mesh"],
    ]
    assert describe(cycles(graph)[1], graph) == (
        "kit.mesh (line 2) -> kit.tracing (line 1) -> kit.runtime (line 5) -> kit.mesh"
    )


def test_the_cycle_check_passes_a_graph_without_one(tmp_path: Path) -> None:
    plant(
        tmp_path,
        {
            "kit/__init__.py": "from kit.mesh import connect\n",
            "kit/mesh.py": "import os\n",
            "kit/runtime.py": "from kit import mesh\nfrom . import mesh as again\n",
        },
    )
    graph = import_graph(tmp_path, ("kit",))

    assert graph == {"kit": {"kit.mesh": 1}, "kit.mesh": {}, "kit.runtime": {"kit.mesh": 1}}
    assert cycles(graph) == []


def test_the_layer_check_reports_a_lower_layer_importing_a_higher_one() -> None:
    graph = {
        "meshkit.mesh": {"meshkit.runtime": 7, "meshkit.polling": 3},
        "meshkit.runtime": {"meshkit.mesh": 1},
        "meshkit.observability.tracing": {"meshkit.toolkit.door": 12},
        "meshkit.novel": {},
    }

    assert layer_violations(graph) == [
        "meshkit.mesh:7 imports meshkit.runtime: layer base is below runtime",
        "meshkit.novel is in no layer: add it to LAYERS",
        "meshkit.observability.tracing:12 imports meshkit.toolkit.door: layer observability "
        "is below toolkit",
    ]
