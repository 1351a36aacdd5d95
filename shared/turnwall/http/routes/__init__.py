"""Routes, one module per resource; each route's name is its Lambda operation.

A module declares its routes on a `RouteTable` instead of a FastAPI `APIRouter`: an
APIRouter builds every route (its parameter models, response field and schema) the
moment it is declared, and building one costs about a millisecond of a cold start. A
table only records the declarations, so a function builds the one route it serves and
`turnwall serve` builds them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from fastapi import FastAPI


class RouteDeclaration(NamedTuple):
    """One route as declared: what `APIRouter.add_api_route` would have been given."""

    method: str
    path: str
    name: str
    endpoint: Callable[..., Any]
    options: dict[str, Any]


class RouteTable:
    """The routes of one module, added to an app by name (see the module docstring).

    `prefix`, `tags` and `responses` apply to every route, as on an `APIRouter`.
    """

    def __init__(
        self,
        prefix: str = "",
        tags: list[str] | None = None,
        responses: dict[int | str, dict[str, Any]] | None = None,
    ) -> None:
        self.prefix = prefix
        self.tags = tags or []
        self.responses = responses or {}
        self.declarations: list[RouteDeclaration] = []

    @property
    def names(self) -> set[str]:
        return {declaration.name for declaration in self.declarations}

    def get(self, path: str, *, name: str, **options: Any) -> Callable[[Any], Any]:
        return self._declare("GET", path, name, options)

    def post(self, path: str, *, name: str, **options: Any) -> Callable[[Any], Any]:
        return self._declare("POST", path, name, options)

    def patch(self, path: str, *, name: str, **options: Any) -> Callable[[Any], Any]:
        return self._declare("PATCH", path, name, options)

    def delete(self, path: str, *, name: str, **options: Any) -> Callable[[Any], Any]:
        return self._declare("DELETE", path, name, options)

    def add_to(self, app: FastAPI, names: Collection[str]) -> None:
        """Build the routes called `names` on `app`, in declaration order."""
        for declaration in self.declarations:
            if declaration.name not in names:
                continue
            options = dict(declaration.options)
            responses = {**self.responses, **options.pop("responses", {})}
            app.add_api_route(
                self.prefix + declaration.path,
                declaration.endpoint,
                methods=[declaration.method],
                name=declaration.name,
                tags=list(self.tags),
                responses=responses,
                **options,
            )

    def _declare(
        self, method: str, path: str, name: str, options: dict[str, Any]
    ) -> Callable[[Any], Any]:
        def declare(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            self.declarations.append(RouteDeclaration(method, path, name, endpoint, options))
            return endpoint

        return declare
