"""API Gateway HTTP API (payload 2.0) events, adapted from `sam local generate-event
apigateway http-api-proxy` (kept verbatim in events/http-api-proxy.json)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
_BASE: dict[str, Any] = json.loads((ROOT / "events" / "http-api-proxy.json").read_text())


def api_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    body: object = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    """An HTTP API event for `method path`; `body` is sent as JSON unless `raw_body`."""
    event = copy.deepcopy(_BASE)
    all_headers = {"content-type": "application/json", "user-agent": "pytest"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    if isinstance(raw_body, bytes):
        encoded_body: str | None = base64.b64encode(raw_body).decode()
        is_base64 = True
    else:
        encoded_body, is_base64 = raw_body, False
    event.update(
        routeKey=route_key or f"{method} {path}",
        rawPath=path,
        rawQueryString=urlencode(query or {}),
        cookies=[],
        headers=all_headers,
        queryStringParameters=query or None,
        pathParameters=path_parameters,
        body=encoded_body,
        isBase64Encoded=is_base64,
        stageVariables=None,
    )
    if encoded_body is None:
        del event["body"]
    context = event["requestContext"]
    context["http"].update(method=method, path=path, sourceIp=source_ip)
    context["requestId"] = f"req-{uuid.uuid4().hex[:16]}"
    context["routeKey"] = event["routeKey"]
    context.pop("authorizer", None)
    context.pop("authentication", None)
    return event


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object the handlers may read."""

    function_name: str = "turnwall-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:turnwall-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any

    @classmethod
    def of(cls, raw: dict[str, Any]) -> ApiResponse:
        text = raw.get("body") or ""
        if raw.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        headers = {k.lower(): v for k, v in raw.get("headers", {}).items()}
        if headers.get("content-type", "").startswith("text/event-stream"):
            return cls(raw["statusCode"], headers, text)  # server-sent events, kept as text
        parsed = json.loads(text) if text else None
        return cls(raw["statusCode"], headers, parsed)
