"""Logs are Powertools' JSON lines, and Powertools loads with the first line written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.events import ROOT

SCRIPT = """
import sys
from turnwall.logs import logger
logger.debug("below the level")
print("loaded before:", "aws_lambda_powertools" in sys.modules, flush=True)
logger.warning("store unavailable", extra={"request_id": "req-1"})
logger.getChild("crypto").error("refused")
print("loaded after:", "aws_lambda_powertools" in sys.modules, flush=True)
"""


def run(level: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared"), "POWERTOOLS_LOG_LEVEL": level}
    env.pop("LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_powertools_loads_with_the_first_record_and_writes_json_lines() -> None:
    before, warning, child, after = run("INFO")

    assert (before, after) == ("loaded before: False", "loaded after: True")
    assert json.loads(warning) | {"timestamp": "-"} == {
        "level": "WARNING",
        "location": "<module>:6",
        "message": "store unavailable",
        "timestamp": "-",
        "service": "turnwall",
        "request_id": "req-1",
    }
    assert (json.loads(child)["level"], json.loads(child)["message"]) == ("ERROR", "refused")


def test_the_level_comes_from_powertools_log_level() -> None:
    lines = run("DEBUG")

    assert json.loads(lines[0])["message"] == "below the level"
    assert lines[1] == "loaded before: True"
