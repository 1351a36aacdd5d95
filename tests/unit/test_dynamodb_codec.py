"""boto3's serializer writes numbers as the hand-written codec did: ints as str(),
floats as repr(), the shortest text that reads back as the same float."""

from __future__ import annotations

import random

import pytest

from turnwall.stores.dynamodb.client import from_attributes, to_attributes


@pytest.mark.parametrize(
    "value",
    [0, 1, 600, 1_700_000_602, 0.0, 600.0, 1_700_000_000.25, 1_764_842_400.123456, 0.1, 1e-4],
)
def test_numbers_keep_their_text(value: float) -> None:
    expected = str(value) if isinstance(value, int) else repr(value)

    assert to_attributes({"n": value}) == {"n": {"N": expected}}


def test_epoch_times_keep_their_text_and_read_back_exactly() -> None:
    rng = random.Random(14)
    for _ in range(10_000):
        value = rng.uniform(1_600_000_000, 2_000_000_000)

        [(_, attribute)] = to_attributes({"t": value}).items()

        assert attribute == {"N": repr(value)}
        assert float(from_attributes({"t": attribute})["t"]) == value


def test_strings_blobs_and_maps_keep_their_types() -> None:
    item = {"s": "x", "b": b"\x00sealed", "m": {"seq": 2, "blob": b"", "created_at": 1.5}}

    attributes = to_attributes(item)

    assert attributes == {
        "s": {"S": "x"},
        "b": {"B": b"\x00sealed"},
        "m": {"M": {"seq": {"N": "2"}, "blob": {"B": b""}, "created_at": {"N": "1.5"}}},
    }
    assert from_attributes(attributes) == item
