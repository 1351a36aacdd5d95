"""The one error map: every failure becomes the spec's error body with the right status.

`TurnwallError` subclasses carry their own status and code; FastAPI's and Starlette's
own errors (validation, unknown route, wrong method) are translated here too, so no
response anywhere is built from an exception by another path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnwall.errors import RateLimited, StoreUnavailable, TurnwallError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import FastAPI, Request

from turnwall.logs import logger

_HTTP_CODES = {
    # FastAPI raises a bare 400 only when it cannot parse a JSON body (invalid UTF-8,
    # nesting past the recursion limit); every other 400 is one of ours.
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The spec's error body: `{"error": {"code", "message", "type", "details"?}}`.

    `type` is OpenAI's error class, so OpenAI SDK clients of the chat route read our
    errors like theirs. An expected failure (any status but 500) is logged here as one
    WARNING line; a 500 is logged, with its traceback, where it was caught.
    """
    if status != 500:
        logger.warning("%s %s: %s", status, code, message)
    error: dict[str, Any] = {"code": code, "message": message, "type": _openai_type(status)}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def turnwall_error_response(exc: TurnwallError) -> JSONResponse:
    """The response for one of our own errors (also used by the middleware)."""
    headers: dict[str, str] = {}
    if isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = str(exc.retry_after_secs)
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_secs)
        if isinstance(exc.details, dict):
            headers.update(exc.details)
        return error_response(exc.status, exc.code, exc.message, headers=headers)
    elif exc.status == 500:
        logger.error("%s: %s", exc.code, exc.message, exc_info=exc)
    return error_response(exc.status, exc.code, exc.message, exc.details, headers or None)


def _openai_type(status: int) -> str:
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error" if status < 500 else "api_error")


def _turnwall_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TurnwallError)
    return turnwall_error_response(exc)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        problems.append({"field": field, "message": str(error.get("msg", "invalid value"))})
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return error_response(
        422, "validation_error", f"{first['field']}: {first['message']}", problems
    )


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {
        400: "the request body is not valid JSON",
        404: "no such route",
        405: "method not allowed on this route",
    }.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TurnwallError, _turnwall_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
