"""Request and response bodies of the HTTP API (spec section 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic_core import to_json

from turnwall.models import (
    Decision,
    HistoryPage,
    Message,
    Session,
    SessionPage,
    Status,
    iso_utc,
)

if TYPE_CHECKING:
    from turnwall.services.scan import ScanResult

MessageRole = Literal["system", "user", "assistant", "tool"]


class _Request(BaseModel):
    # Strict: "60" is not a TTL and 1 is not a string; unknown fields are ignored.
    model_config = ConfigDict(strict=True, extra="ignore")


class SessionCreate(_Request):
    session_id: str | None = None
    ttl_secs: int | None = None
    metadata: dict[str, Any] | None = None
    model: str | None = None


class SessionFork(_Request):
    new_session_id: str | None = None
    up_to_seq: int | None = None


class SessionUpdate(_Request):
    ttl_secs: int | None = None
    metadata: dict[str, Any] | None = None


class MessageCreate(_Request):
    role: MessageRole
    content: str
    name: str | None = None
    metadata: dict[str, Any] | None = None


class AppendRequest(_Request):
    messages: list[MessageCreate] = Field(min_length=1, max_length=100)


class RiskPublic(BaseModel):
    turns_scanned: int
    flagged_turns: int
    session_score: float
    decision: Decision


class SessionPublic(BaseModel):
    session_id: str
    created_at: str
    updated_at: str
    expires_at: str
    age_seconds: float
    ttl_secs: int
    message_count: int
    model: str | None
    metadata: dict[str, Any]
    risk: RiskPublic
    status: Status

    @classmethod
    def of(cls, session: Session) -> SessionPublic:
        # model_construct: the values come typed from the store, validating them again
        # would only cost time on every response.
        fields = _session_fields(session)
        fields["risk"] = RiskPublic.model_construct(**fields["risk"])
        return cls.model_construct(**fields)

    @staticmethod
    def json_of(session: Session) -> bytes:
        """The JSON of `SessionPublic.of(session)`, without building the models: the
        single-session routes answer with this on every call, and constructing the
        two models cost more than serializing them."""
        return to_json(_session_fields(session))


def _session_fields(session: Session) -> dict[str, Any]:
    """SessionPublic's fields, in its order, with RiskPublic's as a nested dict."""
    risk = session.risk
    return {
        "session_id": session.session_id,
        "created_at": iso_utc(session.created_at),
        "updated_at": iso_utc(session.updated_at),
        "expires_at": iso_utc(session.expires_at),
        "age_seconds": session.age_seconds,
        "ttl_secs": session.ttl_secs,
        "message_count": session.message_count,
        "model": session.model,
        "metadata": session.metadata,
        "risk": {
            "turns_scanned": risk.turns_scanned,
            "flagged_turns": risk.flagged_turns,
            "session_score": round(risk.session_score, 4),
            "decision": risk.decision,
        },
        "status": session.status,
    }


class SessionListPublic(BaseModel):
    sessions: list[SessionPublic]
    total: int
    next_cursor: str | None

    @classmethod
    def of(cls, page: SessionPage) -> SessionListPublic:
        return cls(
            sessions=[SessionPublic.of(s) for s in page.sessions],
            total=page.total,
            next_cursor=page.next_cursor,
        )


class SessionDeleted(BaseModel):
    deleted: Literal[True] = True
    session_id: str


class SessionsDeleted(BaseModel):
    prefix: str
    deleted_count: int
    session_ids: list[str]
    remaining: int


class MessagePublic(BaseModel):
    seq: int
    role: MessageRole
    content: str
    created_at: str
    name: str | None = None
    metadata: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_optionals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for optional in ("name", "metadata"):
            if data.get(optional) is None:
                data.pop(optional, None)
        return data

    @classmethod
    def of(cls, message: Message) -> MessagePublic:
        return cls(
            seq=message.seq,
            role=message.role,
            content=message.content,
            created_at=iso_utc(message.created_at),
            name=message.name,
            metadata=message.metadata,
        )


class HistoryPublic(BaseModel):
    session_id: str
    model: str | None
    created_at: str
    updated_at: str
    messages: list[MessagePublic]
    next_cursor: str | None

    @classmethod
    def of(cls, page: HistoryPage) -> HistoryPublic:
        return cls(
            session_id=page.session.session_id,
            model=page.session.model,
            created_at=iso_utc(page.session.created_at),
            updated_at=iso_utc(page.session.updated_at),
            messages=[MessagePublic.of(m) for m in page.messages],
            next_cursor=page.next_cursor,
        )


class AppendPublic(BaseModel):
    session_id: str
    message_count: int
    first_seq: int
    last_seq: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting these statuses with the spec's error body."""
    return {status: {"model": ErrorBody} for status in statuses}


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    store: str
    version: str


class ScanInputRequest(_Request):
    text: str
    session_id: str | None = None


class ScanOutputRequest(_Request):
    text: str
    session_id: str | None = None
    prompt: str | None = None


class AnalyzeRequest(_Request):
    input: str
    output: str | None = None
    session_id: str | None = None


class MatchPublic(BaseModel):
    signature_id: str
    category: str
    score: float
    span: list[int] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_span(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("span") is None:
            data.pop("span", None)
        return data


class SessionVerdictPublic(BaseModel):
    session_id: str
    turn: int
    session_score: float
    decision: Decision
    reasons: list[str]


class ScanResultPublic(BaseModel):
    decision: Decision
    score: float
    matches: list[MatchPublic]
    request_id: str
    session: SessionVerdictPublic | None

    @classmethod
    def of(cls, result: ScanResult, request_id: str) -> ScanResultPublic:
        outcome = result.outcome
        verdict = None
        if outcome.session is not None and result.session_id is not None:
            verdict = SessionVerdictPublic(
                session_id=result.session_id,
                turn=outcome.session.turn,
                session_score=round(outcome.session.session_score, 4),
                decision=outcome.session.decision,
                reasons=list(outcome.session.reasons),
            )
        return cls(
            decision=outcome.decision,
            score=round(outcome.score, 4),
            matches=[
                MatchPublic(
                    signature_id=m.signature_id,
                    category=m.category,
                    score=round(m.score, 4),
                    span=list(m.span) if m.span is not None else None,
                )
                for m in outcome.matches
            ],
            request_id=request_id,
            session=verdict,
        )


class AnalyzePublic(BaseModel):
    input: ScanResultPublic
    output: ScanResultPublic | None
    session: SessionPublic | None
