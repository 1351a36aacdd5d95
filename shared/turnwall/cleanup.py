"""Cleanup after sessions: TTL deletions from the DynamoDB stream, and a scheduled sweep.

The cleanup function (functions/cleanup/app.py) hands each event to `Cleanup`:

- a DynamoDB Streams batch, filtered in the template down to TTL deletions of session
  items (`ttl_deletion_of` reads each record, a Powertools `DynamoDBRecord`): each
  record's leftover messages are purged (`SessionStore.purge_expired_session`,
  idempotent, so a replayed record is harmless), `Session Expired` is
  published, and records that fail are reported back one by one (partial batch
  response), so Lambda retries from the first failure instead of the whole batch;
- a scheduled event: one bounded step of `SessionStore.sweep`, resumed from the cursor
  the previous run saved in the store. Expired sessions are announced *before* the
  sweep removes them, so an EventBridge outage leaves them for the next run instead
  of losing their events.

Both work through the one store interface, so the same function cleans Redis (index
pruning) and DynamoDB (expired sessions, orphaned messages) alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
)

from turnwall.errors import InvalidCursor, TurnwallError, ValidationFailed
from turnwall.lifecycle_events import build_lifecycle_events
from turnwall.logs import logger
from turnwall.settings import get_settings
from turnwall.stores import build_store
from turnwall.stores.maintenance import out_of_time
from turnwall.stores.records import EndedSession

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from turnwall.lifecycle_events import LifecycleEvents
    from turnwall.settings import Settings
    from turnwall.stores.base import SessionStore
    from turnwall.stores.maintenance import SweepReport

# Stop starting new work this long before Lambda's own timeout.
_SAFETY_MARGIN_SECS: Final = 5.0
_STREAM_SOURCE: Final = "aws:dynamodb"


class CleanupOutOfTime(TurnwallError):
    """The invocation is about to time out; the record is left for Lambda to retry."""

    status = 503
    code = "out_of_time"


def is_stream_batch(event: Mapping[str, Any]) -> bool:
    """Whether `event` is a DynamoDB Streams batch (possibly emptied by the filter)."""
    records = event.get("Records")
    return isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == _STREAM_SOURCE
        for record in records
    )


def is_scheduled_event(event: Mapping[str, Any]) -> bool:
    """Whether `event` comes from an EventBridge schedule (rule or Scheduler)."""
    return event.get("detail-type") == "Scheduled Event"


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """What one scheduled run did, as the function returns it."""

    report: SweepReport
    restarted: bool

    def summary(self) -> dict[str, Any]:
        return {
            "removed_sessions": len(self.report.removed_sessions),
            "removed_items": self.report.removed_items,
            "examined_items": self.report.examined_items,
            "pass_complete": self.report.complete,
            "restarted": self.restarted,
        }


class Cleanup:
    """Purges after TTL deletions and runs the scheduled sweep over one store."""

    def __init__(
        self,
        store: SessionStore,
        lifecycle_events: LifecycleEvents | None = None,
        *,
        sweep_max_items: int = 10_000,
        sweep_time_budget_secs: float = 60.0,
    ) -> None:
        self.store = store
        self.lifecycle_events = lifecycle_events
        self.sweep_max_items = sweep_max_items
        self.sweep_time_budget_secs = sweep_time_budget_secs

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        lifecycle_events: LifecycleEvents | None = None,
    ) -> Cleanup:
        """Wire the store and the publisher from settings; explicit ones win.

        Raises:
            ConfigurationError: the settings cannot work.
        """
        settings = settings or get_settings()
        return cls(
            store or build_store(settings),
            lifecycle_events or build_lifecycle_events(settings),
            sweep_max_items=settings.sweep_max_items,
            sweep_time_budget_secs=settings.sweep_time_budget_secs,
        )

    # ---------------------------------------------------------------- stream

    def process_stream_batch(
        self, event: dict[str, Any], context: LambdaContext | None = None
    ) -> PartialItemFailureResponse:
        """Purge after every TTL deletion in a DynamoDB Streams batch.

        Returns the partial batch response (``batchItemFailures``) for Lambda's
        ``ReportBatchItemFailures``. Once the invocation is close to its timeout the
        remaining records are reported as failed, to be retried, rather than cut off.
        """
        if not event.get("Records"):
            return {"batchItemFailures": []}
        deadline = _deadline(context, None)
        started = [False]

        def handle(record: DynamoDBRecord) -> None:
            if started[0] and out_of_time(deadline):
                raise CleanupOutOfTime("left for a retry: the invocation is about to time out")
            started[0] = True
            self.purge_after_ttl_deletion(record)

        # A batch that failed as a whole is reported like any other, not raised: Lambda
        # then retries from its first record without counting a function error.
        processor = BatchProcessor(
            event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
        )
        return process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )

    def purge_after_ttl_deletion(self, record: DynamoDBRecord) -> int | None:
        """Purge what a TTL-deleted session left and publish `Session Expired`.

        Returns how many stored records went (0 on a replay), or None when the record
        is not a TTL deletion of a session item and was ignored.

        Raises:
            ValidationFailed: a TTL deletion record without its old image.
            StoreUnavailable, EventPublishFailed: the record should be retried.
        """
        deletion = ttl_deletion_of(record)
        if deletion is None:
            return None
        try:
            removed = self.store.purge_expired_session(
                deletion.tenant, deletion.session_id, deletion.incarnation
            )
            if self.lifecycle_events is not None:
                self.lifecycle_events.session_expired(
                    [
                        EndedSession(
                            deletion.tenant,
                            deletion.session_id,
                            deletion.message_count,
                            deletion.expired_at,
                        )
                    ]
                )
        except TurnwallError:
            logger.exception(
                "cleanup after a TTL deletion failed",
                extra={"tenant": deletion.tenant, "session_id": deletion.session_id},
            )
            raise
        logger.info(
            "purged a session deleted by TTL",
            extra={
                "tenant": deletion.tenant,
                "session_id": deletion.session_id,
                "removed_items": removed,
            },
        )
        return removed

    # ---------------------------------------------------------------- schedule

    def run_schedule(self, context: LambdaContext | None = None) -> ScheduledRun:
        """One bounded sweep step, resumed from and saving the store's sweep cursor.

        Raises:
            StoreUnavailable: the store cannot be reached (the run changes nothing
                it cannot redo: the cursor is saved only after the step).
            EventPublishFailed: expired sessions could not be announced; they are
                kept for the next run.
        """
        deadline = _deadline(context, self.sweep_time_budget_secs)
        cursor = self.store.load_sweep_cursor()
        restarted = False
        try:
            report = self._sweep(cursor, deadline)
        except InvalidCursor:
            # Say, a cursor saved before the store moved: start the pass over.
            logger.warning("the saved sweep cursor is unusable; starting a new pass")
            restarted = True
            report = self._sweep(None, deadline)
        self.store.save_sweep_cursor(report.next_cursor)
        run = ScheduledRun(report, restarted)
        logger.info("scheduled cleanup", extra=run.summary())
        return run

    def _sweep(self, cursor: str | None, deadline: float) -> SweepReport:
        return self.store.sweep(
            max_items=self.sweep_max_items,
            deadline=deadline,
            cursor=cursor,
            on_expired=self._announce_expired if self.lifecycle_events is not None else None,
        )

    def _announce_expired(self, sessions: Sequence[EndedSession]) -> None:
        if self.lifecycle_events is not None:
            self.lifecycle_events.session_expired(sessions)


@dataclass(frozen=True, slots=True)
class TtlDeletion:
    """A session item that DynamoDB's TTL process deleted, as its stream record shows it."""

    tenant: str
    session_id: str
    incarnation: str
    message_count: int
    expired_at: float


def ttl_deletion_of(record: DynamoDBRecord) -> TtlDeletion | None:
    """The session a DynamoDB Streams record reports deleted by TTL; None for every
    other record: writes, deletes by clients (explicit deletes, the sweep), TTL
    deletions of items that are not sessions (rate counters).

    Raises:
        ValidationFailed: a TTL deletion of a session item without a usable old image
            (the stream must carry old images).
    """
    # Stream records only ever come from DynamoDB, whose store package knows the item
    # layout; importing it here keeps boto3 out of Redis-backed containers.
    from turnwall.stores.dynamodb.layout import SESSION_SORT_KEY, SORT_KEY, TTL_SERVICE_PRINCIPAL

    identity = record.user_identity
    if (
        record.event_name is not DynamoDBRecordEventName.REMOVE
        or identity.get("type") != "Service"
        or identity.get("principalId") != TTL_SERVICE_PRINCIPAL
    ):
        return None
    change = record.dynamodb
    if change is None or change.keys.get(SORT_KEY) != SESSION_SORT_KEY:
        return None
    try:
        old = change.old_image
        return TtlDeletion(
            tenant=old["tenant"],
            session_id=old["session_id"],
            incarnation=old["incarnation"],
            message_count=int(old["message_count"]),
            expired_at=float(old["expires_at_exact"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValidationFailed(
            "a TTL deletion of a session item came without its old image; the table's "
            "stream must be NEW_AND_OLD_IMAGES",
            details={"field": "dynamodb.OldImage"},
        ) from exc


def _deadline(context: LambdaContext | None, budget_secs: float | None) -> float:
    """A ``time.monotonic()`` instant to stop starting work at: the budget, cut short
    to leave a safety margin before the invocation's own timeout."""
    seconds = float("inf") if budget_secs is None else budget_secs
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        seconds = min(seconds, max(0.0, remaining_ms() / 1000 - _SAFETY_MARGIN_SECS))
    return time.monotonic() + seconds
