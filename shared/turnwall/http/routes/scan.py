"""Scans: /v1/scan/input, /v1/scan/output and /v1/analyze."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import Response

from turnwall.http.deps import caller_of, json_response, scan_service_of, session_id_from
from turnwall.http.routes import RouteTable
from turnwall.http.schemas import (
    AnalyzePublic,
    AnalyzeRequest,
    ScanInputRequest,
    ScanOutputRequest,
    ScanResultPublic,
    SessionPublic,
    error_responses,
)
from turnwall.validation import check_session_id

if TYPE_CHECKING:
    from turnwall.scan.models import Direction

routes = RouteTable(
    tags=["scan"],
    responses=error_responses(401, 403, 422, 429, 503),
)


@routes.post("/v1/scan/input", name="scan_input", response_model=ScanResultPublic)
async def scan_input(body: ScanInputRequest, request: Request) -> Response:
    """Scan a prompt, with the session's earlier turns when a session id is given."""
    return await _scan_one(request, "input", body.text, body.session_id)


@routes.post("/v1/scan/output", name="scan_output", response_model=ScanResultPublic)
async def scan_output(body: ScanOutputRequest, request: Request) -> Response:
    """Scan a model response, optionally with the prompt it answers."""
    return await _scan_one(request, "output", body.text, body.session_id, prompt=body.prompt)


@routes.post("/v1/analyze", name="analyze", response_model=AnalyzePublic)
async def analyze(body: AnalyzeRequest, request: Request) -> Response:
    """Scan a prompt and, when given, the response to it, as two turns of one session."""
    caller = caller_of(request, "scan")
    session_id = _session_id(request, body.session_id)
    service = scan_service_of(request)
    request_id = request.state.request_id
    scanned_input = await caller.call(service.scan, caller.tenant, "input", body.input, session_id)
    scanned_output = None
    if body.output is not None:
        # The input is the user's own text: echoing it is no leak, so it is not passed
        # as the hidden prompt; the session still links the two turns.
        scanned_output = await caller.call(
            service.scan, caller.tenant, "output", body.output, session_id
        )
    last = scanned_output or scanned_input
    return _with_session_header(
        json_response(
            AnalyzePublic(
                input=ScanResultPublic.of(scanned_input, request_id),
                output=ScanResultPublic.of(scanned_output, request_id) if scanned_output else None,
                session=SessionPublic.of(last.session) if last.session else None,
            )
        ),
        session_id,
    )


async def _scan_one(
    request: Request,
    direction: Direction,
    text: str,
    body_session_id: str | None,
    prompt: str | None = None,
) -> Response:
    caller = caller_of(request, "scan")
    session_id = _session_id(request, body_session_id)
    result = await caller.call(
        scan_service_of(request).scan, caller.tenant, direction, text, session_id, prompt=prompt
    )
    return _with_session_header(
        json_response(ScanResultPublic.of(result, request.state.request_id)), session_id
    )


def _session_id(request: Request, from_body: str | None) -> str | None:
    session_id = session_id_from(request, from_body)
    return None if session_id is None else check_session_id(session_id)


def _with_session_header(response: Response, session_id: str | None) -> Response:
    if session_id is not None:
        response.headers["x-session-id"] = session_id
    return response
