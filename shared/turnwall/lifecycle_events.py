"""Session lifecycle events on an EventBridge bus: `Session Expired`, `Session Deleted`.

Apps subscribe with a rule on ``{"source": ["turnwall"]}``. Each event's detail is
``{"tenant", "session_id", "message_count", "at"}``, where ``at`` is when the session
expired or was deleted (ISO 8601 UTC, as in the API). Delivery is at least once: the
cleanup function publishes again when it retries a stream record, so consumers that
must not act twice key on (tenant, session_id, at), which a retry repeats exactly.

boto3 is imported, and the client made, on the first publish, so functions without a
bus (or on Redis) never load it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast

from turnwall.errors import ConfigurationError, TurnwallError
from turnwall.models import iso_utc
from turnwall.stores.retry import back_off

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from turnwall.settings import Settings
    from turnwall.stores.base import EndedSession

SOURCE: Final = "turnwall"
SESSION_EXPIRED: Final = "Session Expired"
SESSION_DELETED: Final = "Session Deleted"
DetailType = Literal["Session Expired", "Session Deleted"]

_ENTRIES_PER_CALL: Final = 10  # PutEvents takes at most 10 entries
_ATTEMPTS: Final = 4


class EventsClient(Protocol):
    """The calls of boto3's ``events`` client this module makes."""

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]: ...

    def close(self) -> None: ...


class EventPublishFailed(TurnwallError):
    """EventBridge did not accept lifecycle events, even after retries."""

    status = 503
    code = "events_unavailable"


class LifecycleEvents:
    """Publishes session lifecycle events to one EventBridge bus.

    Pass `client` to use your own (tests do); otherwise one is made on first use with
    the store's short timeouts, and kept for the life of the container.
    """

    def __init__(
        self,
        bus_name: str,
        *,
        client: EventsClient | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        """Raises:
        ConfigurationError: no bus name.
        """
        if not bus_name:
            raise ConfigurationError("an EventBridge bus name is needed to publish events")
        self.bus_name = bus_name
        self._client = client
        self._owns_client = client is None
        self._region_name = region_name
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> EventsClient:
        if self._client is None:
            self._client = _new_client(self._region_name, self._endpoint_url)
        return self._client

    def close(self) -> None:
        """Release the connections of the client this object made (not of one passed in)."""
        if self._owns_client and self._client is not None:
            self._client.close()

    def session_expired(self, sessions: Sequence[EndedSession]) -> None:
        """Publish one `Session Expired` event per session.

        Raises:
            EventPublishFailed: some were not accepted after retries.
        """
        self.publish(SESSION_EXPIRED, sessions)

    def session_deleted(self, sessions: Sequence[EndedSession]) -> None:
        """Publish one `Session Deleted` event per session.

        Raises:
            EventPublishFailed: some were not accepted after retries.
        """
        self.publish(SESSION_DELETED, sessions)

    def publish(self, detail_type: DetailType, sessions: Sequence[EndedSession]) -> None:
        """Publish one event of `detail_type` per session, ten to a PutEvents call,
        retrying the entries EventBridge refused (throttling, internal errors).

        Raises:
            EventPublishFailed: some were not accepted after retries, or the call failed.
        """
        entries = [self._entry(detail_type, session) for session in sessions]
        for start in range(0, len(entries), _ENTRIES_PER_CALL):
            self._put(entries[start : start + _ENTRIES_PER_CALL])

    def _entry(self, detail_type: DetailType, session: EndedSession) -> dict[str, Any]:
        detail = {
            "tenant": session.tenant,
            "session_id": session.session_id,
            "message_count": session.message_count,
            "at": iso_utc(session.ended_at),
        }
        return {
            "EventBusName": self.bus_name,
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":")),
        }

    def _put(self, entries: list[dict[str, Any]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        pending = entries
        for attempt in range(_ATTEMPTS):
            try:
                response = self.client.put_events(Entries=pending)
            except (BotoCoreError, ClientError) as exc:
                raise EventPublishFailed(
                    f"EventBridge bus {self.bus_name!r} refused lifecycle events: {exc}"
                ) from exc
            if not response.get("FailedEntryCount"):
                return
            # Results come back in the order of the entries; failed ones carry an ErrorCode.
            results = cast("list[Mapping[str, Any]]", response.get("Entries", []))
            pending = [
                entry
                for entry, result in zip(pending, results, strict=True)
                if result.get("ErrorCode")
            ]
            if not pending:
                return
            _pause(attempt)
        raise EventPublishFailed(
            f"EventBridge bus {self.bus_name!r} kept refusing {len(pending)} lifecycle event(s)"
        )


def _pause(attempt: int) -> None:
    # Refused entries are mostly throttling: wait longer than a store's write race.
    back_off(attempt, base_secs=0.05, cap_secs=1.0)


def build_lifecycle_events(settings: Settings) -> LifecycleEvents | None:
    """The publisher `settings` ask for (IW_EVENT_BUS_NAME), or None when no bus is set."""
    if not settings.event_bus_name:
        return None
    return LifecycleEvents(settings.event_bus_name)


def _new_client(region_name: str | None, endpoint_url: str | None) -> EventsClient:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard"})
    client = boto3.session.Session().client(
        "events", region_name=region_name, endpoint_url=endpoint_url, config=config
    )
    return cast("EventsClient", client)
