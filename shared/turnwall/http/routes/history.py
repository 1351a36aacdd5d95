"""A session's messages: /v1/sessions/{session_id}/history and /messages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import Response

from turnwall.http.deps import caller_of, idempotent, json_response
from turnwall.http.routes import RouteTable
from turnwall.http.schemas import AppendPublic, AppendRequest, HistoryPublic, error_responses
from turnwall.models import NewMessage

routes = RouteTable(
    prefix="/v1/sessions/{session_id}",
    tags=["history"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)


@routes.get("/history", name="get_history", response_model=HistoryPublic)
async def get_history(
    session_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """A page of the session's messages in seq order (slides its expiry)."""
    caller = caller_of(request, "sessions")
    page = await caller.call(
        caller.store.get_history,
        caller.tenant,
        session_id,
        limit=limit,
        cursor=cursor,
        order=order,
    )
    return json_response(HistoryPublic.of(page))


@routes.post(
    "/messages",
    name="append_messages",
    response_model=AppendPublic,
    responses=error_responses(409, 413),
)
async def append_messages(session_id: str, body: AppendRequest, request: Request) -> Response:
    """Append 1-100 messages atomically, creating the session if it is missing (once
    per `Idempotency-Key`)."""
    caller = caller_of(request, "sessions")
    messages = [NewMessage(m.role, m.content, m.name, m.metadata) for m in body.messages]

    async def append() -> Response:
        result = await caller.call(
            caller.store.append_messages, caller.tenant, session_id, messages
        )
        return json_response(
            AppendPublic(
                session_id=result.session_id,
                message_count=result.message_count,
                first_seq=result.first_seq,
                last_seq=result.last_seq,
            )
        )

    return await idempotent(request, caller, append)
