"""OpenAI-compatible chat with session memory: /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from turnwall.errors import ValidationFailed
from turnwall.http.deps import caller_of, chat_service_of, idempotent, session_id_from
from turnwall.http.routes import RouteTable
from turnwall.http.schemas import error_responses
from turnwall.validation import check_session_id

routes = RouteTable(
    tags=["chat"],
    responses=error_responses(400, 401, 409, 422, 429, 502, 503, 504),
)


class ChatMessage(BaseModel):
    """An OpenAI chat message; fields beyond role and content pass through."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's Chat Completions request; every other field passes through upstream."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False


@routes.post("/v1/chat/completions", name="chat_completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """Chat Completions with the session's history (session id in a header; once per
    `Idempotency-Key`, when not streamed)."""
    caller = caller_of(request, "chat")
    header_id = session_id_from(request, None)
    session_id = None if header_id is None else check_session_id(header_id)
    service = chat_service_of(request)
    if body.stream and "idempotency-key" in request.headers:
        raise ValidationFailed(
            "Idempotency-Key works with non-streamed chat only: send stream: false",
            details={"field": "Idempotency-Key"},
        )

    async def complete() -> Response:
        turn = await caller.call(
            service.prepare, caller.tenant, session_id, body.model_dump(exclude_unset=True)
        )
        headers = {"x-session-id": turn.session_id}
        if body.stream:
            return StreamingResponse(
                service.stream(turn),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        completion = await caller.call(service.complete, turn)
        return JSONResponse(completion, headers=headers)

    return await idempotent(request, caller, complete)
