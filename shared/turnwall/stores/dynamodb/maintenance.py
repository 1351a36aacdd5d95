"""Maintenance of the sessions table: the scheduled sweep, the purge after an expiry,
the pass over live sessions, restores, and re-encryption in place.

The sweep scans the table page by page: session items expired but not yet deleted by
TTL are purged, and message items whose incarnation is not the stored session's
(recreated sessions, deletes that failed part-way) are deleted. Messages of the stored
incarnation are never touched, so a live session keeps everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from turnwall.stores.dynamodb.client import ConditionFailed
from turnwall.stores.dynamodb.items import put_session, read_session, session_record
from turnwall.stores.dynamodb.layout import (
    MESSAGE_SORT_KEY_PREFIX,
    PARTITION_KEY,
    SESSION_SORT_KEY,
    SORT_KEY,
    SWEEP_CURSOR_KEY,
    decode_scan_cursor,
    encode_scan_cursor,
    incarnation_of,
    partition,
    primary_key,
    session_key,
)
from turnwall.stores.dynamodb.messages import chunks_of, read_message_items
from turnwall.stores.maintenance import SweepReport, out_of_time
from turnwall.stores.records import EndedSession, SealedField, SessionRecord

if TYPE_CHECKING:
    from turnwall.stores.dynamodb.client import Item, SessionsTable
    from turnwall.stores.maintenance import ExpiryCallback

_SWEEP_PAGE_ITEMS: Final = 500
# The session item attribute that holds each sealed SessionRecord field.
_ATTRIBUTES: Final[dict[SealedField, str]] = {
    "metadata_blob": "metadata",
    "risk_blob": "risk",
    "model": "model",
}


class DynamoDBMaintenance:
    """The sweep, purge, restore and re-encryption hooks of `DynamoDBSessionStore`."""

    table: SessionsTable

    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        removed = 0
        current = read_session(self.table, tenant, session_id)
        if current is not None and current.incarnation == incarnation:
            if current.is_live(now):
                return 0
            # An expired incarnation never comes back to life (every write is
            # conditioned on a live expiry), so only a recreate can fail this condition,
            # and that leaves this incarnation's messages orphaned all the same.
            try:
                self.table.delete(
                    session_key(tenant, session_id),
                    condition="#incarnation = :incarnation AND #expires_at_exact <= :now",
                    values={":incarnation": incarnation, ":now": now},
                )
                removed = 1
            except ConditionFailed:
                pass
        keys = self.table.query_all(
            "#pk = :pk AND #sk BETWEEN :low AND :high",
            {
                ":pk": partition(tenant, session_id),
                ":low": f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#",
                ":high": f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#~",
            },
            projection="#pk, #sk",
        )
        self.table.delete_many(keys)
        return removed + len(keys)

    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        start = decode_scan_cursor(cursor) if cursor else None
        wanted = "(#sk = :session AND #expires_at_exact <= :now) OR begins_with(#sk, :message)"
        projection = (
            "#pk, #sk, #tenant, #session_id, #incarnation, #message_count, #expires_at_exact"
        )
        values = {":session": SESSION_SORT_KEY, ":now": now, ":message": MESSAGE_SORT_KEY_PREFIX}
        ended: list[EndedSession] = []
        removed = examined = 0
        while True:
            # Limit bounds the items read before the filter: the sweep's unit of work.
            page = self.table.scan(
                wanted,
                values,
                limit=max(1, min(_SWEEP_PAGE_ITEMS, max_items - examined)),
                projection=projection,
                start=start,
            )
            examined += page.scanned
            expired = [item for item in page.items if item[SORT_KEY] == SESSION_SORT_KEY]
            if expired:
                sessions = [
                    EndedSession(
                        tenant=item["tenant"],
                        session_id=item["session_id"],
                        message_count=int(item["message_count"]),
                        ended_at=float(item["expires_at_exact"]),
                    )
                    for item in expired
                ]
                on_expired(sessions)
                for item, session in zip(expired, sessions, strict=True):
                    removed += self._purge(
                        session.tenant, session.session_id, item["incarnation"], now
                    )
                ended += sessions
            # Messages of the sessions purged just now went with them.
            purged = {item[PARTITION_KEY] for item in expired}
            removed += self._delete_orphans(
                [
                    item
                    for item in page.items
                    if item[SORT_KEY].startswith(MESSAGE_SORT_KEY_PREFIX)
                    and item[PARTITION_KEY] not in purged
                ]
            )
            start = page.last_key
            if start is None:
                return SweepReport(tuple(ended), removed, examined, None)
            if examined >= max_items or out_of_time(deadline):
                return SweepReport(tuple(ended), removed, examined, encode_scan_cursor(start))

    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        # The sweep's page-by-page table scan, keeping only live session items. A scan
        # may resume from any primary key, so a page is cut at the last session taken.
        start = decode_scan_cursor(cursor) if cursor else None
        records: list[SessionRecord] = []
        while True:
            page = self.table.scan(
                "#sk = :session AND #expires_at_exact > :now",
                {":session": SESSION_SORT_KEY, ":now": now},
                limit=_SWEEP_PAGE_ITEMS,
                start=start,
                consistent=True,
            )
            taken = page.items[: limit - len(records)]
            records += map(session_record, taken)
            if len(taken) < len(page.items) or (
                len(records) >= limit and page.last_key is not None
            ):
                return records, encode_scan_cursor(taken[-1])
            start = page.last_key
            if start is None:
                return records, None

    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        return put_session(
            self.table,
            record,
            "#incarnation = :incarnation AND #message_count = :count",
            {":incarnation": record.incarnation, ":count": record.message_count},
        )

    def _replace_sealed_field(
        self, record: SessionRecord, field: SealedField, old: bytes | str, new: bytes | str
    ) -> bool:
        name = _ATTRIBUTES[field]
        try:
            self.table.update(
                session_key(record.tenant, record.session_id),
                f"SET #{name} = :new",
                condition=f"#incarnation = :incarnation AND #{name} = :old",
                values={":incarnation": record.incarnation, ":old": old, ":new": new},
            )
        except ConditionFailed:
            return False
        return True

    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        items = read_message_items(self.table, record, seq, seq)
        for item in items:
            paired = item.get("paired")
            if paired is not None and int(paired["seq"]) == seq:
                return self._replace_item_blob(item, "paired.blob", old, new)
            if "part" not in item and int(item["seq"]) == seq:
                parts = [part for part in items if part[SORT_KEY].startswith(item[SORT_KEY] + "#")]
                if not parts:
                    return self._replace_item_blob(item, "blob", old, new)
                return self._replace_parted_blob([item, *parts], old, new)
        return False

    def _get_sweep_cursor(self) -> str | None:
        item = self.table.get(SWEEP_CURSOR_KEY)
        return None if item is None else str(item["position"])

    def _put_sweep_cursor(self, cursor: str | None) -> None:
        if cursor is None:
            self.table.delete(SWEEP_CURSOR_KEY)
        else:
            self.table.put({**SWEEP_CURSOR_KEY, "position": cursor})

    # ---------------------------------------------------------------- helpers

    def _replace_item_blob(self, item: Item, path: str, old: bytes, new: bytes) -> bool:
        # The key holds the incarnation, and a failed condition also refuses to
        # recreate an item a concurrent delete removed.
        target = ".".join(f"#{name}" for name in path.split("."))
        try:
            self.table.update(
                primary_key(item),
                f"SET {target} = :new",
                condition=f"{target} = :old",
                values={":old": old, ":new": new},
            )
        except ConditionFailed:
            return False
        return True

    def _replace_parted_blob(self, items: list[Item], old: bytes, new: bytes) -> bool:
        """Replace a blob stored in parts, all of them in one transaction."""
        chunks = chunks_of(new)
        if b"".join(item["blob"] for item in items) != old or len(chunks) != len(items):
            # Resealing keeps a Fernet token's length, so the parts only differ when
            # the stored value changed since it was read.
            return False
        actions = [
            self.table.update_action(
                primary_key(item),
                "SET #blob = :new",
                condition="#blob = :old",
                values={":old": item["blob"], ":new": chunk},
            )
            for item, chunk in zip(items, chunks, strict=True)
        ]
        try:
            self.table.transact(actions)
        except ConditionFailed:
            return False
        return True

    def _delete_orphans(self, message_items: list[Item]) -> int:
        """Delete the items among `message_items` whose incarnation is not the one of
        the session now stored under their partition (or whose session is gone)."""
        if not message_items:
            return 0
        partitions = sorted({item[PARTITION_KEY] for item in message_items})
        # Strongly consistent: a message the scan saw was written together with its
        # session item, so this read sees that item or whatever replaced it.
        sessions = self.table.get_many(
            [{PARTITION_KEY: pk, SORT_KEY: SESSION_SORT_KEY} for pk in partitions],
            projection="#pk, #incarnation",
        )
        current = {item[PARTITION_KEY]: item["incarnation"] for item in sessions}
        orphans = [
            primary_key(item)
            for item in message_items
            if incarnation_of(item[SORT_KEY]) != current.get(item[PARTITION_KEY])
        ]
        self.table.delete_many(orphans)
        return len(orphans)
