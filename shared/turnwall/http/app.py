"""The FastAPI factory every Lambda function and `turnwall serve` build their app from."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import turnwall
from turnwall.errors import ConfigurationError, TurnwallError
from turnwall.http.deps import Caller, authenticate, presented_key
from turnwall.http.errors import error_response, install_error_handlers, turnwall_error_response
from turnwall.runtime import Runtime
from turnwall.validation import NOT_UNICODE, SESSION_ID_RULE, lone_surrogate_field

if TYPE_CHECKING:
    from collections.abc import Collection

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from turnwall.ratelimit import RateLimitStatus
    from turnwall.settings import Settings
    from turnwall.stores.base import SessionStore

from turnwall.logs import logger

# The module under turnwall.http.routes that serves each operation (route name): a
# function imports, and FastAPI builds, only the routes it serves.
ROUTE_MODULES: Final = {
    "create_session": "sessions",
    "list_sessions": "sessions",
    "get_session": "sessions",
    "update_session": "sessions",
    "delete_session": "sessions",
    "delete_sessions": "sessions",
    "end_session": "sessions",
    "fork_session": "sessions",
    "get_history": "history",
    "append_messages": "history",
    "scan_input": "scan",
    "scan_output": "scan",
    "analyze": "scan",
    "chat_completions": "chat",
    "health": "health",
}
SCAN_OPERATIONS: Final = frozenset({"scan_input", "scan_output", "analyze", "chat_completions"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
PUBLIC_PATHS: Final = frozenset({"/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
# Spec section 2: either header carries the key; RequestContextMiddleware checks it.
SECURITY_SCHEMES: Final = {
    "BearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer iwk_<role>_...",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "X-Api-Key: iwk_<role>_...",
    },
}
_SAFE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A UTF-16 surrogate encoded as if it were a character: never valid UTF-8.
_UTF8_SURROGATE: Final = re.compile(rb"\xed[\xa0-\xbf]")
_ENCODED_SEPARATOR: Final = re.compile(rb"%(2f|5c)", re.IGNORECASE)
_JSON_TYPE: Final = re.compile(r"application/([\w.+-]+\+)?json\s*(;.*)?", re.IGNORECASE)


def create_app(
    operations: Collection[str] | None = None,
    *,
    settings: Settings | None = None,
    store: SessionStore | None = None,
    runtime: Runtime | None = None,
    offload_blocking: bool = False,
    body_timeout_secs: float | None = None,
) -> FastAPI:
    """Build the API with only `operations` (route names), or every route when None.

    `body_timeout_secs` bounds the time a client takes to send a request body (on
    Lambda the body has arrived before the app runs, so it is left None there).

    Raises:
        ConfigurationError: an unknown operation, or settings that cannot work; the
            function refuses to start.
    """
    unknown = set(operations or ()) - ROUTE_MODULES.keys()
    if unknown:
        raise ConfigurationError(
            f"unknown operations {sorted(unknown)}; known: {sorted(ROUTE_MODULES)}"
        )
    runtime = runtime or Runtime.build(settings, store=store)
    app = TurnwallAPI(
        title="Turnwall",
        version=turnwall.__version__,
        summary="Multi-turn session memory and session-aware prompt scanning for LLM apps",
        docs_url="/docs" if operations is None else None,
        redoc_url=None,
        # A slash redirect would build its Location from the Host header: no redirects.
        redirect_slashes=False,
    )
    wanted = ROUTE_MODULES.keys() if operations is None else operations
    for module in dict.fromkeys(m for op, m in ROUTE_MODULES.items() if op in wanted):
        # An import statement (not importlib), so `-X importtime` reports the module.
        table = __import__(f"turnwall.http.routes.{module}", fromlist=["routes"]).routes
        table.add_to(app, wanted)
    install_error_handlers(app)
    app.state.runtime = runtime
    if operations is None or SCAN_OPERATIONS & set(operations):
        # Only functions that scan pay for compiling the signature catalog at init.
        from turnwall.scan import Scanner
        from turnwall.services.scan import ScanService

        settings = runtime.settings
        scans = ScanService(
            runtime.store,
            Scanner(profile=settings.scan_profile, tier=settings.scan_tier),
            settings.max_message_bytes,
        )
        app.state.scan_service = scans
        if operations is None or "chat_completions" in operations:
            from turnwall.services.chat import ChatService
            from turnwall.services.upstream import build_upstream

            app.state.chat_service = ChatService(
                runtime.store,
                scans,
                build_upstream(settings),
                max_history_messages=settings.chat_max_history_messages,
                max_history_bytes=settings.chat_max_history_bytes,
            )
    app.state.offload_blocking = offload_blocking
    app.add_middleware(
        RequestContextMiddleware,
        runtime=runtime,
        max_body_bytes=runtime.settings.max_body_bytes,
        offload_blocking=offload_blocking,
        body_timeout_secs=body_timeout_secs,
    )
    return app


class TurnwallAPI(FastAPI):
    """FastAPI whose OpenAPI document declares how to send an API key, so /docs
    ("Authorize", then "Try it out") can call the authenticated routes."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        schema = super().openapi()  # FastAPI caches it in self.openapi_schema
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                for operation in operations.values():
                    operation["security"] = []
        return schema


class RequestContextMiddleware:
    """Request id, body limits, content type, authentication, rate limits, and the
    last-resort 500.

    A pure ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request). It
    sits inside Starlette's own error middleware and catches everything itself, so even
    an unexpected fault leaves as the spec's error body with an `x-request-id`.
    """

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        max_body_bytes: int,
        offload_blocking: bool,
        body_timeout_secs: float | None = None,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes
        self.offload_blocking = offload_blocking
        self.body_timeout_secs = body_timeout_secs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        response_started = False
        status_code = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started, status_code
            if message["type"] == "http.response.start":
                response_started = True
                status_code = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                limit: RateLimitStatus | None = state.get("rate_limit")
                if limit is not None and not any(
                    k.lower() == b"ratelimit-limit" for k, _ in headers
                ):
                    headers += limit.raw_headers()
                message["headers"] = headers
            await send(message)

        try:
            rejection = _encoded_separator(scope)
            if rejection is None and scope["path"] not in PUBLIC_PATHS:
                rejection = await self._authenticate(scope, state)
            if rejection is None and scope["method"] in _BODY_METHODS:
                receive, rejection = await self._buffer_body(scope, receive)
            if rejection is not None:
                await rejection(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if response_started:
                raise
            await error_response(
                500,
                "internal_error",
                "an unexpected error occurred; it has been logged",
                details={"request_id": request_id},
            )(scope, receive, send_with_headers)
        finally:
            # API Gateway keeps the access log; this is for local debugging. Checked
            # first so that, at the usual INFO level, the fields are not even gathered.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )

    async def _authenticate(self, scope: Scope, state: dict[str, Any]) -> Any:
        """Accept the key and count the request; an error response if that fails."""
        headers = dict(scope.get("headers", []))
        authorization, api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
        key = presented_key(
            authorization.decode("latin-1") if authorization else None,
            api_key.decode("latin-1") if api_key else None,
        )
        client = scope.get("client")
        client_ip = client[0] if client else None
        try:
            if self.offload_blocking:
                principal, limit = await run_in_threadpool(
                    authenticate, self.runtime, key, client_ip
                )
            else:
                principal, limit = authenticate(self.runtime, key, client_ip)
        except TurnwallError as exc:
            return turnwall_error_response(exc)
        # The route's `caller_of` only checks the role: the Caller is built here, once.
        state["caller"] = Caller(principal, self.runtime, self.offload_blocking)
        state["rate_limit"] = limit
        return None

    async def _buffer_body(self, scope: Scope, receive: Receive) -> tuple[Receive, Any]:
        """Read the whole body (at most max_body_bytes) and replay it to the app."""
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return receive, self._too_large()
        chunks: list[bytes] = []
        size = 0
        more = True
        loop = asyncio.get_running_loop()
        deadline = None if self.body_timeout_secs is None else loop.time() + self.body_timeout_secs
        while more:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                return receive, error_response(
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {self.body_timeout_secs} s",
                    headers={"connection": "close"},
                )
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return receive, self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if body.strip() and content_type and not _JSON_TYPE.fullmatch(content_type.strip()):
            return receive, error_response(
                415, "unsupported_media_type", "send the body as application/json"
            )
        if _UTF8_SURROGATE.search(body):  # Python's JSON parser would let it through
            return receive, error_response(
                400, "invalid_json", "the request body is not valid UTF-8"
            )
        field = lone_surrogate_field(body)
        if field is not None:
            return receive, error_response(
                422,
                "validation_error",
                f"{field}: {NOT_UNICODE}",
                details=[{"field": field, "message": NOT_UNICODE}],
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay, None

    def _too_large(self) -> Any:
        return error_response(
            413,
            "payload_too_large",
            f"the request body exceeds {self.max_body_bytes} bytes",
            details={"max_bytes": self.max_body_bytes},
        )


def _encoded_separator(scope: Scope) -> Any:
    """A 422 for a path holding an encoded `/` or `\\`, else None.

    The router sees the decoded path, so `victim%2Fhistory` would otherwise reach the
    history route; every variable path segment is a session id, which has neither.
    """
    raw: object = scope.get("raw_path")
    event = scope.get("aws.event")
    if raw is None and isinstance(event, dict):
        raw = str(event.get("rawPath") or event.get("path") or "").encode("latin-1", "replace")
    if isinstance(raw, bytes) and _ENCODED_SEPARATOR.search(raw):
        return error_response(
            422,
            "invalid_session_id",
            f"session_id must be {SESSION_ID_RULE}; a path may not hold an encoded separator",
            details={"field": "session_id", "rule": SESSION_ID_RULE},
        )
    return None


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event")
    if isinstance(event, dict):
        context_id: object = event.get("requestContext", {}).get("requestId")
        if isinstance(context_id, str) and context_id:
            return context_id
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex
