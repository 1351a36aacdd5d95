"""The layer is compiled once at build time into bytecode the runtime loads as is."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from infra.compile_layer import (
    NOT_SHIPPED,
    RUNTIME,
    compile_layer,
    layer_bytes,
    main,
    prune_layer,
)

if TYPE_CHECKING:
    import pytest

_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


def make_package(root: Path) -> Path:
    package = root / "python" / "layerpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "answer.py").write_text("VALUE = 'from the build'\n")
    return root / "python"


def test_every_module_gets_unchecked_hash_bytecode(tmp_path: Path) -> None:
    layer = make_package(tmp_path)

    assert compile_layer(layer)

    for name in ("__init__", "answer"):
        cached = importlib.util.cache_from_source(str(layer / "layerpkg" / f"{name}.py"))
        header = Path(cached).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(header[4:8], "little") == _UNCHECKED_HASH


def test_the_runtime_loads_the_bytecode_without_reading_the_source(tmp_path: Path) -> None:
    layer = make_package(tmp_path)
    compile_layer(layer)
    (layer / "layerpkg" / "answer.py").write_text("VALUE = 'recompiled from source'\n")

    loaded = subprocess.run(
        [sys.executable, "-c", "from layerpkg.answer import VALUE; print(VALUE)"],
        env={**os.environ, "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    assert loaded == "from the build"


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    assert main([str(tmp_path / "absent")]) == 2


def test_workstation_modules_are_left_out_of_the_layer(tmp_path: Path) -> None:
    layer = make_package(tmp_path)
    for name in NOT_SHIPPED:
        (layer / name).parent.mkdir(parents=True, exist_ok=True)
        (layer / name).write_text("print('eval')\n")

    assert prune_layer(layer) == list(NOT_SHIPPED)
    assert not any((layer / name).exists() for name in NOT_SHIPPED)
    assert (layer / "layerpkg" / "answer.py").exists()


def test_no_function_imports_the_evaluation_cli() -> None:
    root = Path(__file__).resolve().parents[2]
    shipped = [
        path
        for path in (root / "shared" / "turnwall").rglob("*.py")
        if path.name not in ("cli.py", "evaluation.py")
    ]

    assert NOT_SHIPPED == ("turnwall/evaluation.py",)
    assert [p for p in shipped if "turnwall.evaluation" in p.read_text(encoding="utf-8")] == []


def test_a_layer_over_lambdas_unzipped_limit_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = make_package(tmp_path)
    size = layer_bytes(layer)
    monkeypatch.setattr(sys, "version_info", (*RUNTIME, 0, "final", 0))

    monkeypatch.setattr("infra.compile_layer.UNZIPPED_LIMIT", size + 10_000)
    assert main([str(layer)]) == 0
    monkeypatch.setattr("infra.compile_layer.UNZIPPED_LIMIT", size - 1)
    assert main([str(layer)]) == 1
