"""Session CRUD: /v1/sessions and /v1/sessions/{session_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Query, Request
from fastapi.responses import Response

from turnwall.http.deps import Caller, caller_of, idempotent, json_response
from turnwall.http.routes import RouteTable
from turnwall.http.schemas import (
    SessionCreate,
    SessionDeleted,
    SessionFork,
    SessionListPublic,
    SessionPublic,
    SessionsDeleted,
    SessionUpdate,
    error_responses,
)
from turnwall.lifecycle_events import EventPublishFailed
from turnwall.logs import logger
from turnwall.models import Session
from turnwall.stores.records import EndedSession

routes = RouteTable(
    prefix="/v1/sessions",
    tags=["sessions"],
    responses=error_responses(401, 403, 422, 429, 503),
)
_NOT_FOUND = error_responses(404)


@routes.post(
    "",
    name="create_session",
    status_code=201,
    response_model=SessionPublic,
    responses=error_responses(409),
)
async def create_session(
    request: Request, body: Annotated[SessionCreate | None, Body()] = None
) -> Response:
    """Create a session (a generated `api:<hex>` id when none is given; once per
    `Idempotency-Key`)."""
    caller = caller_of(request, "sessions")
    fields = body or SessionCreate()

    async def create() -> Response:
        session = await caller.call(
            caller.store.create_session,
            caller.tenant,
            fields.session_id,
            ttl_secs=fields.ttl_secs,
            metadata=fields.metadata,
            model=fields.model,
        )
        return _session_response(session, 201)

    return await idempotent(request, caller, create)


@routes.get("", name="list_sessions", response_model=SessionListPublic)
async def list_sessions(
    request: Request,
    prefix: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """List the tenant's live sessions by ascending id."""
    caller = caller_of(request, "sessions")
    page = await caller.call(
        caller.store.list_sessions, caller.tenant, prefix=prefix, limit=limit, cursor=cursor
    )
    return json_response(SessionListPublic.of(page))


@routes.get("/{session_id}", name="get_session", response_model=SessionPublic, responses=_NOT_FOUND)
async def get_session(session_id: str, request: Request) -> Response:
    """Read a session (slides its expiry)."""
    caller = caller_of(request, "sessions")
    session = await caller.call(caller.store.get_session, caller.tenant, session_id)
    return _session_response(session)


@routes.patch(
    "/{session_id}",
    name="update_session",
    response_model=SessionPublic,
    responses=error_responses(404, 409, 412),
)
async def update_session(session_id: str, body: SessionUpdate, request: Request) -> Response:
    """Change a session's TTL and/or replace its metadata (only while its ETag is in
    `If-Match`, when sent)."""
    caller = caller_of(request, "sessions")
    session = await caller.call(
        caller.store.update_session,
        caller.tenant,
        session_id,
        ttl_secs=body.ttl_secs,
        metadata=body.metadata,
        if_match=_if_match(request),
    )
    return _session_response(session)


@routes.post(
    "/{session_id}/fork",
    name="fork_session",
    status_code=201,
    response_model=SessionPublic,
    responses=error_responses(404, 409),
)
async def fork_session(
    session_id: str, request: Request, body: Annotated[SessionFork | None, Body()] = None
) -> Response:
    """Copy a session (history up to `up_to_seq`, metadata, risk state) into a new one."""
    caller = caller_of(request, "sessions")
    body = body or SessionFork()
    session = await caller.call(
        caller.store.fork_session,
        caller.tenant,
        session_id,
        new_session_id=body.new_session_id,
        up_to_seq=body.up_to_seq,
    )
    return _session_response(session, 201)


@routes.post(
    "/{session_id}/end",
    name="end_session",
    response_model=SessionPublic,
    responses=error_responses(404, 409),
)
async def end_session(session_id: str, request: Request) -> Response:
    """End a session: read-only (appends and chat answer 409) until it expires."""
    caller = caller_of(request, "sessions")
    session = await caller.call(caller.store.end_session, caller.tenant, session_id)
    return _session_response(session)


@routes.delete(
    "/{session_id}",
    name="delete_session",
    response_model=SessionDeleted,
    responses=error_responses(404, 412),
)
async def delete_session(session_id: str, request: Request) -> Response:
    """Delete a session with all of its history (only while its ETag is in `If-Match`,
    when sent); publishes `Session Deleted` if a bus is set."""
    caller = caller_of(request, "sessions")
    deleted = await caller.call(
        caller.store.delete_session, caller.tenant, session_id, if_match=_if_match(request)
    )
    await _announce_deleted(caller, [deleted])
    return json_response(SessionDeleted(session_id=session_id))


@routes.delete("", name="delete_sessions", response_model=SessionsDeleted)
async def delete_sessions(
    request: Request,
    prefix: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Delete up to `limit` sessions whose ids start with `prefix` (admin keys; repeat
    while `remaining` > 0); publishes `Session Deleted` for each."""
    caller = caller_of(request, "bulk")
    result = await caller.call(caller.store.delete_sessions, caller.tenant, prefix, limit)
    await _announce_deleted(caller, result.deleted)
    ids = [ended.session_id for ended in result.deleted]
    return json_response(
        SessionsDeleted(
            prefix=prefix, deleted_count=len(ids), session_ids=ids, remaining=result.remaining
        )
    )


async def _announce_deleted(caller: Caller, deleted: list[EndedSession]) -> None:
    events = caller.runtime.lifecycle_events
    if events is None or not deleted:
        return
    try:
        await caller.call(events.session_deleted, deleted)
    except EventPublishFailed:
        # The sessions are gone either way; failing the call now would only make the
        # client retry into a 404. The log line keeps what the events would have said.
        logger.exception(
            "could not publish Session Deleted",
            extra={"tenant": caller.tenant, "session_ids": [d.session_id for d in deleted]},
        )


def _session_response(session: Session, status_code: int = 200) -> Response:
    """The session object, with its ETag for a later If-Match."""
    return Response(
        SessionPublic.json_of(session),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": session.etag},
    )


def _if_match(request: Request) -> frozenset[str] | None:
    """The ETags of an If-Match header; None when absent or `*` (any existing session)."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    return frozenset(tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip())
