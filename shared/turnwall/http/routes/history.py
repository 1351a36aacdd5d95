"""A session's messages: /v1/sessions/{session_id}/history and /messages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from turnwall.http.deps import PrincipalDep, RuntimeDep, call_store
from turnwall.http.schemas import AppendPublic, AppendRequest, ErrorBody, HistoryPublic
from turnwall.models import NewMessage

router = APIRouter(
    prefix="/v1/sessions/{session_id}",
    tags=["history"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)


@router.get("/history", name="get_history")
async def get_history(
    request: Request,
    session_id: str,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    order: Literal["asc", "desc"] = "asc",
) -> HistoryPublic:
    """A page of the session's messages in seq order (slides its expiry)."""
    principal.require("sessions")
    page = await call_store(
        request,
        runtime.store.get_history,
        principal.tenant,
        session_id,
        limit=limit,
        cursor=cursor,
        order=order,
    )
    return HistoryPublic.of(page)


@router.post("/messages", name="append_messages", responses={409: {"model": ErrorBody}})
async def append_messages(
    request: Request,
    session_id: str,
    body: AppendRequest,
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> AppendPublic:
    """Append 1-100 messages atomically, creating the session if it is missing."""
    principal.require("sessions")
    messages = [NewMessage(m.role, m.content, m.name, m.metadata) for m in body.messages]
    result = await call_store(
        request, runtime.store.append_messages, principal.tenant, session_id, messages
    )
    return AppendPublic(
        session_id=result.session_id,
        message_count=result.message_count,
        first_seq=result.first_seq,
        last_seq=result.last_seq,
    )
