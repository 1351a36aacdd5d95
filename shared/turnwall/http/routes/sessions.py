"""Session CRUD: /v1/sessions and /v1/sessions/{session_id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from turnwall.http.deps import PrincipalDep, RuntimeDep, call_store
from turnwall.http.schemas import (
    ErrorBody,
    SessionCreate,
    SessionDeleted,
    SessionListPublic,
    SessionPublic,
    SessionUpdate,
)

router = APIRouter(
    prefix="/v1/sessions",
    tags=["sessions"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


@router.post("", name="create_session", status_code=201, responses={409: {"model": ErrorBody}})
async def create_session(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> SessionPublic:
    """Create a session (a generated `api:<hex>` id when none is given)."""
    principal.require("sessions")
    body = body or SessionCreate()
    session = await call_store(
        request,
        runtime.store.create_session,
        principal.tenant,
        body.session_id,
        ttl_secs=body.ttl_secs,
        metadata=body.metadata,
        model=body.model,
    )
    return SessionPublic.of(session)


@router.get("", name="list_sessions")
async def list_sessions(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    prefix: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> SessionListPublic:
    """List the tenant's live sessions by ascending id."""
    principal.require("sessions")
    page = await call_store(
        request,
        runtime.store.list_sessions,
        principal.tenant,
        prefix=prefix,
        limit=limit,
        cursor=cursor,
    )
    return SessionListPublic.of(page)


@router.get("/{session_id}", name="get_session", responses=_NOT_FOUND)
async def get_session(
    request: Request, session_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> SessionPublic:
    """Read a session (slides its expiry)."""
    principal.require("sessions")
    session = await call_store(request, runtime.store.get_session, principal.tenant, session_id)
    return SessionPublic.of(session)


@router.patch("/{session_id}", name="update_session", responses=_NOT_FOUND)
async def update_session(
    request: Request,
    session_id: str,
    body: SessionUpdate,
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> SessionPublic:
    """Change a session's TTL and/or replace its metadata."""
    principal.require("sessions")
    session = await call_store(
        request,
        runtime.store.update_session,
        principal.tenant,
        session_id,
        ttl_secs=body.ttl_secs,
        metadata=body.metadata,
    )
    return SessionPublic.of(session)


@router.delete("/{session_id}", name="delete_session", responses=_NOT_FOUND)
async def delete_session(
    request: Request, session_id: str, principal: PrincipalDep, runtime: RuntimeDep
) -> SessionDeleted:
    """Delete a session with all of its history."""
    principal.require("sessions")
    await call_store(request, runtime.store.delete_session, principal.tenant, session_id)
    return SessionDeleted(session_id=session_id)
