"""`make load` passes with its defaults on both backends (a short run of the same
script: every default but the duration)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.events import ROOT


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("dynamodb", marks=pytest.mark.dynamodb),
    ],
)
def test_load_passes_with_its_default_clients_and_timeouts(backend: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.load", "--backend", backend, "--seconds", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "verdict: pass" in run.stdout
    assert "lost: 0, duplicated: 0" in run.stdout
