"""A Redis-backed function never imports boto3 (cold start, and no AWS SDK it needs)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.support.events import ROOT

PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fn", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("boto3" in sys.modules, "turnwall.stores.dynamodb" in sys.modules)
"""


@pytest.mark.parametrize("function", ["get", "append", "list", "history", "health"])
def test_redis_function_does_not_import_boto3(function: str) -> None:
    env = {
        **os.environ,
        "IW_STORE_URL": "redis://127.0.0.1:1/0",
        "IW_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / function / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert out == ["False", "False"]


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
