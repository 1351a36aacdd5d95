"""Chat with session memory: OpenAI Chat Completions over a stored conversation.

One turn::

    request messages ── system ones stay first ─┐
    stored history (newest within the caps) ────┼─> upstream model ─> reply
    the request's other messages (the new turn) ┘        │
         │ scanned with the session first (block → 400)   │ scanned as output (block → 400)
         └──────────── both appended atomically, with the model name ◄┘

Request system messages are instructions for this call and are not stored; every other
request message is the new turn and is stored. A client therefore sends only the new
message each time, as with the reference proxies, not the whole conversation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

from turnwall.errors import (
    ContentBlocked,
    NoUpstream,
    SessionEnded,
    TurnwallError,
    UpstreamError,
    ValidationFailed,
)
from turnwall.models import ROLES, NewMessage
from turnwall.services.upstream import text_of
from turnwall.validation import check_messages, check_model, is_unicode_text

if TYPE_CHECKING:
    from collections.abc import Iterator

    from turnwall.models import Message
    from turnwall.services.scan import ScanResult, ScanService
    from turnwall.services.upstream import Upstream
    from turnwall.stores.base import SessionStore

_HISTORY_PAGE = 1000
# Streamed text is held back this far behind the reply's end: more than any signature
# can match (patterns are bounded to a few hundred characters), so a match that the
# next chunk completes never started in text already sent.
HOLD_BACK_CHARS = 512
_SCAN_STEP_CHARS = 64


class ChatTurn(NamedTuple):
    """A checked chat request, ready for the upstream model."""

    tenant: str
    session_id: str
    upstream_request: dict[str, Any]
    new_messages: list[NewMessage]
    hidden_prompt: str | None  # the request's system text: a reply must not leak it
    scanned_input: ScanResult


class ChatService:
    """Prepares, forwards and records chat turns."""

    def __init__(
        self,
        store: SessionStore,
        scans: ScanService,
        upstream: Upstream | None,
        *,
        max_history_messages: int | None = None,
        max_history_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._scans = scans
        self._upstream = upstream
        self._max_history_messages = max_history_messages
        self._max_history_bytes = max_history_bytes

    def close(self) -> None:
        """Release the upstream client's connections, where it holds any."""
        if self._upstream is not None:
            self._upstream.close()

    def prepare(self, tenant: str, session_id: str | None, request: dict[str, Any]) -> ChatTurn:
        """Check the request, scan its new turn with the session, add the stored history.

        Without a session id a session is created (its id is generated).

        Raises:
            NoUpstream: chat is not configured.
            SessionEnded: the session was ended.
            ValidationFailed: the request holds no new message.
            ContentBlocked: the new turn was blocked by the scan.
        """
        if self._upstream is None:
            raise NoUpstream("chat needs IW_UPSTREAM_URL or IW_UPSTREAM=bedrock:<model-id>")
        messages: list[dict[str, Any]] = request["messages"]
        system = [m for m in messages if m.get("role") == "system"]
        new = [m for m in messages if m.get("role") != "system"]
        if not new:
            raise ValidationFailed(
                "messages must hold the new turn (a non-system message)",
                details={"field": "messages"},
            )
        new_messages = [_stored(m) for m in new]
        check_messages(new_messages, self._store.limits)  # before anything is sent upstream
        check_model(request.get("model"))
        if session_id is None:
            session_id = self._store.create_session(tenant).session_id
        # Every new message reaches the model, whatever role it claims (an assistant or
        # tool message can carry an injection too), and an attack split over several
        # messages must meet as one text: they are scanned joined, as one turn.
        turn_text = " ".join(m.content for m in new_messages)
        scanned = self._scans.scan(tenant, "input", turn_text, session_id)
        if scanned.session is not None and scanned.session.status == "ended":
            raise SessionEnded(f"session {session_id!r} was ended and is read-only")
        if scanned.outcome.decision == "block":
            raise ContentBlocked(
                "the message was blocked by the prompt scan",
                details=_block_details(scanned, "input", session_id),
            )
        history = [_upstream_message(m) for m in self._history(tenant, session_id)]
        upstream_request = {**request, "messages": [*system, *history, *new]}
        upstream_request.pop("stream", None)
        hidden_prompt = "\n".join(text_of(m) for m in system) or None
        return ChatTurn(tenant, session_id, upstream_request, new_messages, hidden_prompt, scanned)

    def complete(self, turn: ChatTurn) -> dict[str, Any]:
        """Forward the turn, scan the reply, store both turns; the upstream response.

        Raises:
            UpstreamError, UpstreamTimeout: the model failed (nothing is stored).
            ContentBlocked: the reply was blocked by the output scan (nothing is stored).
        """
        assert self._upstream is not None
        response = self._upstream.complete(turn.upstream_request)
        reply = text_of(response["choices"][0]["message"])
        self._record(turn, reply, response.get("model") or turn.upstream_request.get("model"))
        return response

    def stream(self, turn: ChatTurn) -> Iterator[str]:
        """Server-sent events: the upstream chunks, then a `done` event, then `[DONE]`.

        The reply is scanned as it grows, and a chunk is sent only once the text after
        it is long enough that no match could still start in it: a reply the scan
        blocks ends with an `error` event before the offending text leaves. The turns
        are stored once the upstream stream has completed and the whole reply passed
        the output scan with the session. A client that disconnects mid-stream stops
        this generator before that point, so nothing of the turn is stored.
        """
        assert self._upstream is not None
        pieces: list[str] = []
        length = scanned = 0  # the reply's length so far, and at its last scan
        held: deque[tuple[int, str]] = deque()  # (reply length after it, event)
        model = turn.upstream_request.get("model")
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        try:
            for chunk in self._upstream.stream(turn.upstream_request):
                chunk_id, model = chunk.get("id", chunk_id), chunk.get("model") or model
                for choice in chunk.get("choices", []):
                    content = (choice.get("delta") or {}).get("content")
                    if isinstance(content, str):
                        pieces.append(content)
                        length += len(content)
                held.append((length, _event(chunk)))
                if length - scanned < max(_SCAN_STEP_CHARS, scanned // 8):
                    continue  # rescanning after every token would be quadratic
                self._check_reply(turn, "".join(pieces), session_id=None)
                scanned = length
                while held and held[0][0] <= length - HOLD_BACK_CHARS:
                    yield held.popleft()[1]
            self._record(turn, "".join(pieces), model)
        except TurnwallError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.details is not None:
                error["details"] = exc.details
            yield _event({"error": error})
            yield "data: [DONE]\n\n"
            return
        while held:
            yield held.popleft()[1]
        # A chunk-shaped event with no choices (like OpenAI's usage chunk), so SDK clients
        # that read every chunk as a ChatCompletionChunk keep working.
        done: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "session_id": turn.session_id,
        }
        yield _event(done, name="done")
        yield "data: [DONE]\n\n"

    def _record(self, turn: ChatTurn, reply: str, model: str | None) -> None:
        if not is_unicode_text(reply):
            raise UpstreamError("the model's reply is not valid Unicode text")
        self._check_reply(turn, reply, session_id=turn.session_id)
        self._store.append_messages(
            turn.tenant,
            turn.session_id,
            [*turn.new_messages, NewMessage("assistant", reply)],
            model=model,
        )

    def _check_reply(self, turn: ChatTurn, reply: str, *, session_id: str | None) -> None:
        """Scan a reply (or the part streamed so far); with `session_id`, in the session.

        Raises:
            ContentBlocked: the output scan blocks it.
        """
        scanned = self._scans.scan(
            turn.tenant, "output", reply, session_id, prompt=turn.hidden_prompt
        )
        if scanned.outcome.decision == "block":
            raise ContentBlocked(
                "the model's reply was blocked by the output scan",
                details=_block_details(scanned, "output", turn.session_id),
            )

    def _history(self, tenant: str, session_id: str) -> list[Message]:
        """The newest stored messages within the caps, oldest first."""
        cap = self._max_history_messages
        newest_first: list[Message] = []
        cursor = None
        while cap is None or len(newest_first) < cap:
            limit = _HISTORY_PAGE if cap is None else min(_HISTORY_PAGE, cap - len(newest_first))
            if limit == 0:
                break
            page = self._store.get_history(
                tenant, session_id, limit=limit, cursor=cursor, order="desc"
            )
            newest_first += page.messages
            cursor = page.next_cursor
            if cursor is None:
                break
        if self._max_history_bytes is not None:
            kept, size = [], 0
            for message in newest_first:
                size += len(message.content.encode())
                if size > self._max_history_bytes:
                    break
                kept.append(message)
            newest_first = kept
        return newest_first[::-1]


def _stored(message: dict[str, Any]) -> NewMessage:
    role = message.get("role")
    if role not in ROLES:
        raise ValidationFailed(
            "messages[].role must be system, user, assistant or tool",
            details={"field": "messages.role"},
        )
    name = message.get("name")
    metadata = {"tool_call_id": message["tool_call_id"]} if message.get("tool_call_id") else None
    return NewMessage(
        role,
        text_of(message),
        name if isinstance(name, str) else None,
        metadata,
    )


def _upstream_message(message: Message) -> dict[str, Any]:
    upstream: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        upstream["name"] = message.name
    if message.role == "tool":
        tool_call_id = (message.metadata or {}).get("tool_call_id")
        if tool_call_id:
            upstream["tool_call_id"] = tool_call_id
        else:  # a tool result with no call to answer would be refused upstream
            upstream = {"role": "user", "content": message.content}
    return upstream


def _block_details(scanned: ScanResult, direction: str, session_id: str) -> dict[str, Any]:
    outcome = scanned.outcome
    return {
        "direction": direction,
        "session_id": session_id,
        "score": round(outcome.score, 4),
        "signatures": [m.signature_id for m in outcome.matches],
        "reasons": list(outcome.session.reasons) if outcome.session else [],
    }


def _event(data: dict[str, Any], name: str | None = None) -> str:
    prefix = f"event: {name}\n" if name else ""
    return f"{prefix}data: {json.dumps(data, separators=(',', ':'))}\n\n"
