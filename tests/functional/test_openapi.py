"""The served OpenAPI document lets /docs send an API key, and each function builds only
the routes it serves."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest
from mangum import Mangum

from tests.functional.conftest import ADMIN_KEY, configure
from tests.support.events import ApiResponse, LambdaContext, api_event
from turnwall.errors import ConfigurationError
from turnwall.http.app import ROUTE_MODULES, create_app
from turnwall.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    configure(monkeypatch, "memory://")
    get_settings.cache_clear()
    yield create_app()
    get_settings.cache_clear()


def credentials_for(scheme: dict[str, Any], key: str) -> dict[str, str]:
    """The header Swagger UI sends for a security scheme once a key is entered."""
    if scheme["type"] == "http":
        assert scheme["scheme"] == "bearer"
        return {"authorization": f"Bearer {key}"}
    assert scheme["type"] == "apiKey" and scheme["in"] == "header"
    return {scheme["name"].lower(): key}


def call(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> ApiResponse:
    handler = Mangum(app, lifespan="off")
    return ApiResponse.of(handler(api_event(method, path, headers=headers), LambdaContext()))


def test_openapi_declares_bearer_and_x_api_key_schemes(app: FastAPI) -> None:
    document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    headers = [credentials_for(s, ADMIN_KEY) for s in schemes.values()]

    assert sorted(name for sent in headers for name in sent) == ["authorization", "x-api-key"]
    assert document["security"] == [{name: []} for name in schemes]


@pytest.mark.parametrize("scheme_name", ["BearerKey", "ApiKeyHeader"])
def test_each_declared_scheme_authenticates_a_call(app: FastAPI, scheme_name: str) -> None:
    scheme = app.openapi()["components"]["securitySchemes"][scheme_name]

    response = call(app, "GET", "/v1/sessions", credentials_for(scheme, ADMIN_KEY))

    assert response.status == 200, response.body


def test_health_is_documented_as_public_and_answers_without_a_key(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/health"]["get"]

    assert operation["security"] == []
    assert call(app, "GET", "/v1/health", {}).status == 200


def test_every_other_operation_requires_a_key(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    guarded = [
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security") != []
    ]

    assert len(guarded) == len(ROUTE_MODULES) - 1  # every route but health
    assert call(app, "GET", "/v1/sessions", {}).status == 401


@pytest.mark.parametrize("module", sorted(set(ROUTE_MODULES.values())))
def test_route_table_names_the_module_of_every_route(module: str) -> None:
    served = importlib.import_module(f"turnwall.http.routes.{module}").routes.names

    assert served == {op for op, home in ROUTE_MODULES.items() if home == module}


@pytest.mark.parametrize("operation", sorted(ROUTE_MODULES))
def test_a_function_app_has_only_its_route(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    configure(monkeypatch, "memory://")
    get_settings.cache_clear()

    app = create_app({operation})

    names = {getattr(route, "name", None) for route in app.router.routes}
    assert names & ROUTE_MODULES.keys() == {operation}
    get_settings.cache_clear()


def test_an_unknown_operation_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, "memory://")
    get_settings.cache_clear()

    with pytest.raises(ConfigurationError, match="get_sesion"):
        create_app({"get_sesion"})
    get_settings.cache_clear()
