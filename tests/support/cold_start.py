"""A Lambda function's cold start in a fresh interpreter, Redis configured (unreachable:
init never connects), with a probe that reports on the process afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from cryptography.fernet import Fernet

from tests.support.events import ROOT

_LOAD = """
import gc, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fn", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def after_cold_start(function: str, report: str) -> Any:
    """Load functions/<function>/app.py fresh, then print json.dumps(<report>): its value."""
    env = {
        **os.environ,
        "IW_STORE_URL": "redis://127.0.0.1:1/0",
        "IW_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", f"{_LOAD}print(json.dumps({report}))", app_path(function)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def app_path(function: str) -> str:
    return str(ROOT / "functions" / function / "app.py")
