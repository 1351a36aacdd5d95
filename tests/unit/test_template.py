"""template.yaml and functions/ agree: every function's HTTP route is served by its app."""

from __future__ import annotations

from typing import Any

import pytest

from infra.compile_layer import RUNTIME
from infra.layer_requirements import layer_requirements
from tests.functional.conftest import load_function
from tests.support.events import ROOT
from turnwall.stores.dynamodb.table import load_template

TEMPLATE: dict[str, Any] = load_template(ROOT / "template.yaml")
API_FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
    and any(e["Type"] == "HttpApi" for e in resource["Properties"].get("Events", {}).values())
}


def test_every_function_folder_is_deployed() -> None:
    deployed = {props["CodeUri"].strip("/").split("/")[-1] for props in API_FUNCTIONS.values()}
    on_disk = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}

    assert on_disk <= deployed | {"cleanup"}


@pytest.mark.parametrize("name", sorted(API_FUNCTIONS))
def test_function_serves_its_route(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    props = API_FUNCTIONS[name]
    monkeypatch.setenv("IW_STORE_URL", "memory://")
    function = load_function(props["CodeUri"].strip("/").split("/")[-1])
    served = {
        (method, route.path)
        for route in function.module.app.routes
        for method in getattr(route, "methods", set())
    }

    for event in props["Events"].values():
        assert (event["Properties"]["Method"], event["Properties"]["Path"]) in served


def test_functions_have_log_groups_with_retention() -> None:
    groups = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]

    assert len(groups) >= len(API_FUNCTIONS) + 1  # one per function and the access log
    assert all("RetentionInDays" in g["Properties"] for g in groups)


CODE_URIS = sorted(
    {
        resource["Properties"]["CodeUri"]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
)


@pytest.mark.parametrize("code_uri", CODE_URIS)
def test_sam_build_finds_a_requirements_file_that_installs_nothing(code_uri: str) -> None:
    # sam build warns "requirements.txt file not found" for a code folder without one;
    # the functions need nothing beyond the layer, so theirs lists no requirement.
    requirements = (ROOT / code_uri / "requirements.txt").read_text().splitlines()

    assert [line for line in requirements if line.strip() and not line.startswith("#")] == []


def test_the_layer_requirements_are_generated_from_pyproject() -> None:
    # pyproject.toml is the one dependency list; sam build reads the file derived from it.
    committed = (ROOT / "shared" / "requirements.txt").read_text()

    assert committed == layer_requirements(), "run: python infra/layer_requirements.py"


def test_the_layer_leaves_out_what_lambda_provides_or_only_local_runs_use() -> None:
    names = {line.split(">")[0].split("[")[0] for line in layer_requirements().splitlines()}

    assert not names & {"boto3", "uvicorn", "tqdm"}
    assert {"fastapi", "mangum", "redis", "cryptography", "numpy", "onnxruntime"} <= names


def test_the_functions_the_layer_and_its_bytecode_share_one_python() -> None:
    # onnxruntime's wheels need Amazon Linux 2023 (python3.12), and bytecode compiled by
    # another Python than the runtime's would be ignored.
    runtime = f"python{RUNTIME[0]}.{RUNTIME[1]}"
    layer = TEMPLATE["Resources"]["TurnwallLayer"]

    assert TEMPLATE["Globals"]["Function"]["Runtime"] == runtime == "python3.12"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Metadata"]["BuildMethod"] == runtime
