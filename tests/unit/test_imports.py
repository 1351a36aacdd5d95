"""A function's cold start imports only what its route calls: a Redis-backed function
never imports boto3, a session function no scanner, no other route's module, no
Powertools until it logs, no pydantic-settings at all."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.cold_start import after_cold_start
from tests.support.events import ROOT

if TYPE_CHECKING:
    from pathlib import Path

NEVER = {
    "boto3",
    "botocore",
    "turnwall.stores.dynamodb",
    "pydantic_settings",
    "turnwall.evaluation",
}
SESSION_ONLY = NEVER | {
    "aws_lambda_powertools",
    "turnwall.scan",
    "turnwall.services.scan",
    "turnwall.services.chat",
    "yaml",
    "turnwall.http.routes.scan",
    "turnwall.http.routes.chat",
}
FORBIDDEN = {
    "get": SESSION_ONLY | {"turnwall.http.routes.history", "turnwall.http.routes.health"},
    "create": SESSION_ONLY | {"turnwall.http.routes.history"},
    "list": SESSION_ONLY | {"turnwall.http.routes.history"},
    "update": SESSION_ONLY | {"turnwall.http.routes.history"},
    "delete": SESSION_ONLY | {"turnwall.http.routes.history"},
    "history": SESSION_ONLY | {"turnwall.http.routes.sessions"},
    "append": SESSION_ONLY | {"turnwall.http.routes.sessions"},
    "health": SESSION_ONLY | {"turnwall.http.routes.sessions", "turnwall.http.routes.history"},
    "scan": NEVER
    | {"aws_lambda_powertools", "turnwall.services.chat", "turnwall.http.routes.sessions"},
    "chat": NEVER | {"aws_lambda_powertools", "turnwall.http.routes.scan"},
}


def modules_after_cold_start(function: str) -> set[str]:
    return set(after_cold_start(function, "sorted(sys.modules)"))


@pytest.mark.parametrize("function", sorted(FORBIDDEN))
def test_function_imports_nothing_its_route_does_not_call(function: str) -> None:
    imported = modules_after_cold_start(function)

    assert "turnwall.stores.redis" in imported
    assert imported & FORBIDDEN[function] == set()


def test_every_http_function_is_checked() -> None:
    on_disk = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}

    assert on_disk - {"cleanup"} == set(FORBIDDEN)


SCAN_PROBE = """
import sys
from turnwall.scan import Scanner
scanner = Scanner(tier=sys.argv[1])
scanner.scan_input("hello", {})
print("numpy" in sys.modules)
"""


@pytest.mark.parametrize(("tier", "imports_numpy"), [("lexical", "False"), ("semantic", "True")])
def test_only_the_semantic_tier_imports_numpy(tier: str, imports_numpy: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCAN_PROBE, tier],
        env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert out == [imports_numpy]


STORES = ROOT / "shared" / "turnwall" / "stores"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_store_module_imports_the_layers_above_it() -> None:
    above = ("turnwall.auth", "turnwall.http", "turnwall.services")
    offenders = {
        str(path.relative_to(STORES)): sorted(
            name for name in imported_modules(path) if name.startswith(above)
        )
        for path in STORES.rglob("*.py")
    }

    assert {path: names for path, names in offenders.items() if names} == {}


def test_only_the_redis_client_module_imports_redis() -> None:
    importers = sorted(
        path.name
        for path in (STORES / "redis").glob("*.py")
        if any(name == "redis" or name.startswith("redis.") for name in imported_modules(path))
    )

    assert importers == ["client.py"]


PACKAGE = ROOT / "shared" / "turnwall"


def module_graph() -> dict[str, set[str]]:
    """Which turnwall modules each one imports at module level, type-checking imports
    included (a cycle through types is a cycle for a reader too); imports inside
    functions, made lazily on purpose, do not count."""
    files = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for statement in ast.parse(path.read_text()).body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Import):
                    graph[name] |= {alias.name for alias in node.names} & files.keys()
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from package import module` imports the module, not a cycle back
                    submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                    found = submodules & files.keys()
                    if found != submodules:
                        found |= {node.module} & files.keys()
                    graph[name] |= found
        graph[name].discard(name)
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    graph = module_graph()
    done: set[str] = set()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            found = cycle_from(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    cycles = [cycle for module in sorted(graph) if (cycle := cycle_from(module, []))]
    assert cycles == []
    assert graph["turnwall.http.app"]  # the graph sees imports at all
