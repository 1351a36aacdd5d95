"""The events in events/ (for `sam local invoke`) reach a route of the function the
template deploys for them, with the key of infra/env.local.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.conftest import load_function
from tests.support.events import ROOT, ApiResponse, LambdaContext
from turnwall.stores.dynamodb.table import load_template

TEMPLATE: dict[str, Any] = load_template(ROOT / "template.yaml")
LOCAL_ENV: dict[str, str] = json.loads((ROOT / "infra" / "env.local.json").read_text())[
    "Parameters"
]
HTTP_EVENTS = sorted(
    path
    for path in (ROOT / "events").glob("*.json")
    if json.loads(path.read_text()).get("routeKey", "$default") != "$default"
)


def function_for(route_key: str) -> str:
    """The functions/ folder whose template entry serves `route_key`."""
    for resource in TEMPLATE["Resources"].values():
        properties = resource.get("Properties", {})
        for event in properties.get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            served = f"{event['Properties']['Method']} {event['Properties']['Path']}"
            if served == route_key:
                folder: str = properties["CodeUri"].strip("/").split("/")[-1]
                return folder
    raise AssertionError(f"no function in template.yaml serves {route_key}")


def test_every_route_has_an_event_file() -> None:
    routes = {
        f"{event['Properties']['Method']} {event['Properties']['Path']}"
        for resource in TEMPLATE["Resources"].values()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    with_events = {json.loads(path.read_text())["routeKey"] for path in HTTP_EVENTS}

    assert routes <= with_events


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=lambda path: path.stem)
def test_event_file_reaches_its_route(path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LOCAL_ENV.items():
        monkeypatch.setenv(name, value)
    event = json.loads(path.read_text())
    function = load_function(function_for(event["routeKey"]))

    response = ApiResponse.of(function.module.handler(event, LambdaContext()))

    if response.status == 503:  # chat, with no upstream configured here
        assert response.body["error"]["code"] == "no_upstream"
    else:
        assert response.status < 500, response.body
    assert response.status not in (401, 403), response.body
    if response.status == 404:  # the session may be missing, the route may not
        assert response.body["error"]["code"] == "session_not_found"
