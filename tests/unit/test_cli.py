"""The `turnwall` command answers -h / --help on every sub-command, eval included."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.events import ROOT


def turnwall(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnwall.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_eval_help_exits_0_with_its_usage(flag: str) -> None:
    result = turnwall("eval", flag)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: turnwall eval")
    assert "--profile" in result.stdout


def test_eval_without_a_directory_says_what_is_missing() -> None:
    result = turnwall("eval")

    assert result.returncode == 2
    assert "directory" in result.stderr


def test_top_level_help_lists_eval() -> None:
    result = turnwall("--help")

    assert result.returncode == 0
    assert "eval" in result.stdout
