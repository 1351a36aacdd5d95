"""Message items: how a batch of sealed messages becomes items that fit DynamoDB's
limits, and how items read back in key order become messages again.

Normally one item per message (``sk = M#<incarnation>#<seq:010d>``). A blob too big
for one item continues in part items (``<sk>#001``, ...); a batch that would need more
items than one transaction allows puts its smallest neighbouring messages two to an
item (the later one under ``paired``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from turnwall.errors import ValidationFailed
from turnwall.stores.dynamodb.layout import PARTITION_KEY, SORT_KEY, message_sort_key, partition
from turnwall.stores.records import StoredMessage

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from turnwall.stores.dynamodb.client import Item, SessionsTable
    from turnwall.stores.records import SessionRecord

# DynamoDB limits: an item holds at most 400 KB (names and values), a transaction at
# most 100 actions and 4 MB in all.
ITEM_BLOB_BYTES: Final = 350_000
MAX_TRANSACTION_ACTIONS: Final = 100
_ITEM_OVERHEAD_BYTES: Final = 512
_MAX_TRANSACTION_BYTES: Final = 4_000_000


def chunks_of(blob: bytes) -> list[bytes]:
    """`blob` cut into the pieces its items hold (one, empty, for an empty blob)."""
    return [
        blob[offset : offset + ITEM_BLOB_BYTES] for offset in range(0, len(blob), ITEM_BLOB_BYTES)
    ] or [b""]


def message_items(head: SessionRecord, messages: list[StoredMessage], room: int) -> list[Item]:
    """The items that store `messages`, at most `room` of them.

    Normally one item per message. A blob too big for one item continues in part
    items (``<sk>#001``, ...). Only when that makes more items than the transaction
    has room for (100 messages + the session update = 101 actions) do the smallest
    adjacent pairs of messages share an item, the later one under ``paired``, until
    the batch fits. The smallest pairs, not simply the last two: two messages of
    escaped JSON may not fit one item together, while the 4 MB bound on the whole
    transaction guarantees small enough pairs exist whenever the batch can commit.
    Readers therefore start one item before the first seq they want.

    Raises:
        ValidationFailed: the batch is too large for one DynamoDB transaction.
    """
    sizes = [len(message.blob) for message in messages]
    parts = [max(1, math.ceil(size / ITEM_BLOB_BYTES)) for size in sizes]
    excess = sum(parts) - room
    paired: set[int] = set()  # indexes whose item also carries the next message
    if excess > 0:
        pairs = sorted(
            (sizes[i] + sizes[i + 1], i)
            for i in range(len(messages) - 1)
            if parts[i] == parts[i + 1] == 1 and sizes[i] + sizes[i + 1] <= ITEM_BLOB_BYTES
        )
        taken: set[int] = set()
        for _, i in pairs:
            if len(paired) == excess:
                break
            if i not in taken and i + 1 not in taken:
                paired.add(i)
                taken.update((i, i + 1))
    total_bytes = sum(sizes) + _ITEM_OVERHEAD_BYTES * (sum(parts) + 1)
    if len(paired) < excess or total_bytes > _MAX_TRANSACTION_BYTES:
        raise ValidationFailed(
            "these messages are too large to append atomically in one request; "
            "send them in smaller batches",
            details={"field": "messages"},
        )

    pk = partition(head.tenant, head.session_id)
    items: list[Item] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        sort_key = message_sort_key(head.incarnation, message.seq)
        item: Item = {PARTITION_KEY: pk, SORT_KEY: sort_key, **_message_fields(message)}
        if index in paired:
            item["paired"] = _message_fields(messages[index + 1])
            items.append(item)
            index += 2
            continue
        chunks = chunks_of(message.blob)
        item["blob"] = chunks[0]
        if len(chunks) > 1:
            item["parts"] = len(chunks)
        items.append(item)
        items += [
            {PARTITION_KEY: pk, SORT_KEY: f"{sort_key}#{part:03d}", "part": part, "blob": chunk}
            for part, chunk in enumerate(chunks[1:], start=1)
        ]
        index += 1
    return items


def unpack_messages(items: Iterable[Mapping[str, Any]]) -> Iterator[StoredMessage]:
    """Messages from message items in key order (see `message_items`)."""
    pending: _Assembly | None = None
    for item in items:
        if "part" in item:
            if pending is not None and int(item["part"]) == len(pending.chunks):
                pending.chunks.append(item["blob"])
            continue
        if pending is not None and (message := pending.finish()) is not None:
            yield message
        pending = _Assembly.start(item)
        if "paired" in item:
            yield from filter(None, (pending.finish(), _Assembly.start(item["paired"]).finish()))
            pending = None
    if pending is not None and (message := pending.finish()) is not None:
        yield message


def _message_fields(message: StoredMessage) -> Item:
    return {
        "seq": message.seq,
        "role": message.role,
        "created_at": message.created_at,
        "blob": message.blob,
    }


@dataclass
class _Assembly:
    """A message whose blob may still be waiting for continuation parts."""

    seq: int
    role: str
    created_at: float
    parts: int
    chunks: list[bytes] = field(default_factory=list)

    @classmethod
    def start(cls, fields: Mapping[str, Any]) -> _Assembly:
        return cls(
            seq=int(fields["seq"]),
            role=fields["role"],
            created_at=float(fields["created_at"]),
            parts=int(fields.get("parts", 1)),
            chunks=[fields["blob"]],
        )

    def finish(self) -> StoredMessage | None:
        # A missing part means a concurrent delete is sweeping the session.
        if len(self.chunks) != self.parts:
            return None
        return StoredMessage(
            seq=self.seq, role=self.role, created_at=self.created_at, blob=b"".join(self.chunks)
        )


def read_message_items(
    table: SessionsTable, record: SessionRecord, first_seq: int, last_seq: int
) -> list[Item]:
    """The message items that may hold seqs `first_seq`..`last_seq`, read consistently.

    Starts one item early, since an item may carry its successor (see
    `message_items`), and its upper bound takes in the continuation parts of the
    last message.
    """
    return table.query_all(
        "#pk = :pk AND #sk BETWEEN :low AND :high",
        {
            ":pk": partition(record.tenant, record.session_id),
            ":low": message_sort_key(record.incarnation, max(first_seq - 1, 1)),
            ":high": message_sort_key(record.incarnation, last_seq) + "#~",
        },
    )
