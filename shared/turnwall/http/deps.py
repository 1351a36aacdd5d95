"""Who is calling, and how to reach the store.

`RequestContextMiddleware` authenticates and rate-counts every request before routing
(so a bad key gets 401 before its body is even validated); each route then starts with
`caller = caller_of(request, permission)`, which only checks the role. A plain call
rather than a FastAPI dependency: dependency resolution costs about 10 µs per request,
an eighth of a bare route on Lambda.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from turnwall.errors import InvalidApiKey, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import Request
    from pydantic import BaseModel

    from turnwall.auth import Permission, Principal
    from turnwall.ratelimit import RateLimitStatus
    from turnwall.runtime import Runtime
    from turnwall.services.chat import ChatService
    from turnwall.services.scan import ScanService
    from turnwall.stores.base import SessionStore

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    """An accepted request: the principal, the runtime, and a way to run store calls."""

    principal: Principal
    runtime: Runtime
    offload_blocking: bool

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def store(self) -> SessionStore:
        return self.runtime.store

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call.

        On Lambda a container serves one request at a time, so the call runs inline (a
        thread hop would only add latency); `turnwall serve` hands it to a worker
        thread so one slow backend call does not stall every other connection.
        """
        if self.offload_blocking:
            return await run_in_threadpool(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-Api-Key`."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key or None


def authenticate(
    runtime: Runtime, key: str | None, client_ip: str | None
) -> tuple[Principal, RateLimitStatus]:
    """Accept a presented key and count the request against its rate limits.

    Raises:
        Unauthorized, InvalidApiKey, RateLimited.
    """
    try:
        principal = runtime.authenticator.authenticate(key)
    except (Unauthorized, InvalidApiKey):
        runtime.rate_limiter.hit_failed_authentication(client_ip)
        raise
    return principal, runtime.rate_limiter.hit(client_ip, principal.key_id)


def caller_of(request: Request, permission: Permission) -> Caller:
    """The authenticated caller of this request, if its role grants `permission`.

    Raises:
        Forbidden: the role lacks the permission.
    """
    principal: Principal = request.state.principal
    principal.require(permission)
    return Caller(principal, runtime_of(request), bool(request.app.state.offload_blocking))


SESSION_ID_HEADERS = ("sessionid", "session-id", "x-session-id", "session_id")


def session_id_from(request: Request, from_body: str | None) -> str | None:
    """The session id of a scan or chat: the body's, else the first session header."""
    if from_body is not None:
        return from_body
    for name in SESSION_ID_HEADERS:
        value = request.headers.get(name)
        if value:
            return value
    return None


def scan_service_of(request: Request) -> ScanService:
    service: ScanService = request.app.state.scan_service
    return service


def chat_service_of(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialize a response model straight to JSON (FastAPI would validate it again)."""
    return Response(
        model.__pydantic_serializer__.to_json(model),
        status_code=status_code,
        media_type="application/json",
    )
