"""The lifecycle event publisher against botocore's Stubber: entry shape, batching,
retries of refused entries, and errors. The functional tests publish to moto's bus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from turnwall import lifecycle_events
from turnwall.errors import ConfigurationError
from turnwall.lifecycle_events import (
    EventPublishFailed,
    LifecycleEvents,
    build_lifecycle_events,
)
from turnwall.settings import load_settings
from turnwall.stores.records import EndedSession

if TYPE_CHECKING:
    from collections.abc import Iterator

BUS = "apps"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LifecycleEvents, Stubber]]:
    monkeypatch.setattr(lifecycle_events, "_pause", lambda attempt: None)
    client = boto3.client(
        "events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield LifecycleEvents(BUS, client=client), stubber
        stubber.assert_no_pending_responses()


def ended(number: int, count: int = 3) -> EndedSession:
    return EndedSession("acme", f"chat-{number}", count, 1_795_000_000.25 + number)


def entry(detail_type: str, session: EndedSession, at: str) -> dict[str, Any]:
    detail = {
        "tenant": session.tenant,
        "session_id": session.session_id,
        "message_count": session.message_count,
        "at": at,
    }
    return {
        "EventBusName": BUS,
        "Source": "turnwall",
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":")),
    }


def accepted(count: int) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"id-{n}"} for n in range(count)]}


def test_deleted_event_carries_tenant_session_count_and_time(
    stubbed: tuple[LifecycleEvents, Stubber],
) -> None:
    events, stubber = stubbed
    session = ended(1, count=7)
    expected = entry("Session Deleted", session, "2026-11-18T11:06:41.250Z")
    stubber.add_response("put_events", accepted(1), {"Entries": [expected]})

    events.session_deleted([session])


def test_expired_events_go_ten_to_a_call(stubbed: tuple[LifecycleEvents, Stubber]) -> None:
    events, stubber = stubbed
    sessions = [ended(n) for n in range(23)]
    for start, size in ((0, 10), (10, 10), (20, 3)):
        batch = sessions[start : start + size]
        stubber.add_response(
            "put_events",
            accepted(size),
            {"Entries": [events._entry("Session Expired", s) for s in batch]},
        )

    events.session_expired(sessions)


def test_refused_entries_are_retried_alone(stubbed: tuple[LifecycleEvents, Stubber]) -> None:
    events, stubber = stubbed
    sessions = [ended(n) for n in range(3)]
    entries = [events._entry("Session Expired", s) for s in sessions]
    refused_second = {
        "FailedEntryCount": 1,
        "Entries": [
            {"EventId": "a"},
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
            {"EventId": "c"},
        ],
    }
    stubber.add_response("put_events", refused_second, {"Entries": entries})
    stubber.add_response("put_events", accepted(1), {"Entries": [entries[1]]})

    events.session_expired(sessions)


def test_entries_refused_every_time_raise(stubbed: tuple[LifecycleEvents, Stubber]) -> None:
    events, stubber = stubbed
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
    for _ in range(4):
        stubber.add_response("put_events", refused)

    with pytest.raises(EventPublishFailed, match="kept refusing 1"):
        events.session_deleted([ended(1)])


def test_a_refused_call_raises(stubbed: tuple[LifecycleEvents, Stubber]) -> None:
    events, stubber = stubbed
    stubber.add_client_error("put_events", "AccessDeniedException", http_status_code=400)

    with pytest.raises(EventPublishFailed, match="refused lifecycle events"):
        events.session_deleted([ended(1)])


def test_no_bus_no_publisher() -> None:
    assert build_lifecycle_events(load_settings()) is None
    assert build_lifecycle_events(load_settings(event_bus_name="")) is None
    publisher = build_lifecycle_events(load_settings(event_bus_name=BUS))
    assert publisher is not None and publisher.bus_name == BUS
    with pytest.raises(ConfigurationError):
        LifecycleEvents("")
