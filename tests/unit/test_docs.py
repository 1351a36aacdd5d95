"""What a newcomer reads works as written: README examples, its layout, RESULTS.md."""

from __future__ import annotations

import ast
import builtins
import re

import pytest

from tests.benchmarks.results import RUNS
from tests.support.events import ROOT

README = (ROOT / "README.md").read_text()
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
# Absolute paths of the machine a file was made on (the repository's own paths are relative).
_MACHINE_PATH = re.compile(r"(?<![\w.:/~-])/(?:home|work|tmp|Users|root|mnt|opt|srv|var)/")


def code_blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(README) if lang == language]


def undefined_names(source: str) -> set[str]:
    """Names the code reads but never binds (imports, assignments, definitions)."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound


def test_undefined_names_are_found() -> None:
    assert undefined_names("import os\nx = os.environ[KEY]\nprint(x)") == {"KEY"}


@pytest.mark.parametrize("number", range(len(code_blocks("python"))))
def test_python_examples_define_every_name_they_use(number: int) -> None:
    assert undefined_names(code_blocks("python")[number]) == set()


def test_turnwall_commands_in_the_readme_run_inside_the_virtualenv() -> None:
    for block in code_blocks("sh"):
        lines = [line.strip() for line in block.splitlines()]
        for index, line in enumerate(lines):
            if line.startswith("turnwall "):
                activated = any(".venv/bin/activate" in before for before in lines[:index])
                assert activated, f"{line!r} needs `. .venv/bin/activate` before it"


def layout_section() -> str:
    return README.split("## Layout", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(
    "folder",
    sorted(
        f"{path.name}/"
        for parent in (ROOT / "tests", ROOT / "shared" / "turnwall")
        for path in parent.iterdir()
        if (path / "__init__.py").exists()
    ),
)
def test_layout_names_every_package_of_the_code_and_the_tests(folder: str) -> None:
    assert folder in layout_section()


def test_results_show_no_path_of_the_machine_that_made_them() -> None:
    results = (ROOT / "docs" / "RESULTS.md").read_text()

    assert _MACHINE_PATH.findall(results) == []


def test_results_commands_name_no_absolute_path() -> None:
    for _, arguments, _ in RUNS:
        assert not [a for a in arguments if a.startswith("/")], arguments


def test_machine_paths_are_recognised() -> None:
    text = "python -m turnwall.evaluation /work/shared/eval; GET /v1/sessions; ../shared/eval"

    assert _MACHINE_PATH.findall(text) == ["/work/"]
