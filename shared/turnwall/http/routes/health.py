"""Liveness and backend reachability, without authentication."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

import turnwall
from turnwall.errors import StoreUnavailable
from turnwall.http.deps import runtime_of
from turnwall.http.routes import RouteTable
from turnwall.http.schemas import Health

routes = RouteTable(tags=["health"])


@routes.get("/v1/health", name="health", responses={503: {"model": Health}})
async def health(request: Request) -> JSONResponse:
    """200 when the store answers, 503 when it does not."""
    runtime = runtime_of(request)
    backend = runtime.settings.resolved_store_url.split(":", 1)[0]
    try:
        runtime.store.ping()  # bounded by the store's connect and operation timeouts
    except StoreUnavailable:
        body = Health(status="unavailable", store=backend, version=turnwall.__version__)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    return JSONResponse(
        Health(status="ok", store=backend, version=turnwall.__version__).model_dump()
    )
