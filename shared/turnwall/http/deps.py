"""Typed FastAPI dependencies: the runtime, the calling principal, store calls."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from turnwall.auth import Principal
from turnwall.errors import InvalidApiKey, Unauthorized
from turnwall.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable

P = ParamSpec("P")
T = TypeVar("T")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def call_store(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking store call.

    On Lambda a container serves one request at a time, so the call runs inline (a
    thread hop would only add latency); `turnwall serve` hands it to a worker thread
    so one slow backend call does not stall every other connection.
    """
    if request.app.state.offload_blocking:
        return await run_in_threadpool(functools.partial(fn, *args, **kwargs))
    return fn(*args, **kwargs)


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request, runtime: RuntimeDep) -> Principal:
    """Accept the caller's key and count the request against its rate limits."""
    client_ip = request.client.host if request.client else None
    key = presented_key(request)

    def check() -> tuple[Principal, Any]:
        try:
            principal = runtime.authenticator.authenticate(key)
        except (Unauthorized, InvalidApiKey):
            runtime.rate_limiter.hit(client_ip, None)  # failures spend the address's budget
            raise
        return principal, runtime.rate_limiter.hit(client_ip, principal.key_id)

    principal, status = await call_store(request, check)
    request.state.rate_limit = status
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
