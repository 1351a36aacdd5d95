"""The store primitives written once: cursors and the jittered back-off."""

from __future__ import annotations

import pytest

from turnwall.errors import InvalidCursor
from turnwall.stores import retry
from turnwall.stores.cursors import (
    decode_listing_cursor,
    decode_position,
    decode_seq_cursor,
    encode_listing_cursor,
    encode_position,
)


def test_a_listing_cursor_round_trips_and_is_refused_by_another_listing() -> None:
    cursor = encode_listing_cursor("l", "chat-7")

    assert decode_listing_cursor(cursor, "l") == "chat-7"
    with pytest.raises(InvalidCursor, match="does not belong"):
        decode_listing_cursor(cursor, "asc")


@pytest.mark.parametrize("cursor", ["%%%", "YXNjOjA", "YXNjOng"])  # bad base64, seq 0, "x"
def test_a_history_cursor_must_name_a_seq_of_one_or_more(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_seq_cursor(cursor, "asc")


def test_a_position_round_trips_and_is_checked_against_its_shape() -> None:
    cursor = encode_position("node-1", 42, 0, "")

    assert decode_position(cursor, (str, int, int, str), "reencrypt") == ["node-1", 42, 0, ""]
    with pytest.raises(InvalidCursor, match="sweep cursor is malformed"):
        decode_position(cursor, (str, int, int), "sweep")
    with pytest.raises(InvalidCursor, match="sweep cursor is malformed"):
        decode_position(encode_position("a", -1), (str, int), "sweep")
    with pytest.raises(InvalidCursor, match="sweep cursor is malformed"):
        decode_position("not base64 json", (str, str), "sweep")


def test_the_back_off_is_full_jitter_under_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "random", lambda: 0.999)

    first = retry.jitter_delay(0)
    assert first < retry.OPTIMISTIC_BASE_SECS
    assert retry.jitter_delay(3) < 8 * retry.OPTIMISTIC_BASE_SECS
    assert retry.jitter_delay(10_000) < retry.OPTIMISTIC_CAP_SECS
    assert retry.jitter_delay(2, base_secs=0.01, cap_secs=0.5) < 0.04
    monkeypatch.setattr(retry.random, "random", lambda: 0.0)
    assert retry.jitter_delay(5) == 0.0
