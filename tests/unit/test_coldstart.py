"""A function's init runs with the cyclic collector off and ends with it on again and
everything init built frozen, whether init succeeds or fails."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from tests.support.events import ROOT
from turnwall.coldstart import init_phase

if TYPE_CHECKING:
    from collections.abc import Iterator

PROBE = """
import gc, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fn", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_off_during_init_and_on_after_with_init_frozen() -> None:
    with init_phase():
        assert not gc.isenabled()
        built = [[index] for index in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_failing_init_still_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError), init_phase():
        raise RuntimeError("the store refused to start")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with init_phase():
        pass
    assert not gc.isenabled()


@pytest.mark.parametrize("function", ["get", "scan", "cleanup"])
def test_a_cold_start_leaves_the_collector_on_and_its_objects_frozen(function: str) -> None:
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
    ).stdout
    state = json.loads(out)
    assert state["enabled"] is True
    assert state["frozen"] > 50_000  # FastAPI, pydantic and turnwall: not a handful
