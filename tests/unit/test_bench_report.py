"""The benchmark tables: columns never run together, and every ratio with a target
shows the target and a verdict."""

from __future__ import annotations

import pytest

from tests.benchmarks.bench_lambda import import_breakdown
from tests.benchmarks.report import Table, at_most, verdict


def test_wide_values_stay_apart_from_their_neighbours() -> None:
    table = Table(("backend", "vs plain", "get"))
    table.add("redis", "1.55x", "159.3us")
    table.add("dynamodb (moto)", "2.01x", "10569.0us")

    lines = table.render().splitlines()

    assert [line.split("  ")[0].strip() for line in lines] == [
        "backend",
        "redis",
        "dynamodb (moto)",
    ]
    assert lines[2].split()[-2:] == ["2.01x", "10569.0us"]
    assert len({len(line) for line in lines}) == 1  # right-aligned to one width


def test_a_row_must_fill_every_column() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table(("a", "b", "c")).add("1", "2")


@pytest.mark.parametrize(
    ("ratio", "target", "expected"),
    [(1.20, 1.25, "pass"), (1.25, 1.25, "pass"), (1.26, 1.25, "FAIL"), (None, 1.5, "-")],
)
def test_verdict_compares_the_ratio_with_its_target(
    ratio: float | None, target: float, expected: str
) -> None:
    assert verdict(ratio, target) == expected


def test_target_reads_as_an_upper_bound() -> None:
    assert at_most(1.5) == "<= 1.50x"


def test_import_breakdown_counts_only_what_the_bare_app_does_not_import() -> None:
    bare = {"fastapi": 50.0, "pydantic": 30.0}
    function = {
        "fastapi": 50.0,
        "pydantic": 30.0,
        "redis": 20.0,
        "redis.client": 10.0,
        "turnwall.models": 5.0,
        "turnwall": 1.0,
    }

    assert import_breakdown(function, bare) == "   36 ms: redis 30, turnwall 6"


def test_latency_runs_give_every_call_a_text_of_its_own_of_the_same_size() -> None:
    # the scanner keeps the last text it normalized: a repeated text would time that once
    from tests.benchmarks.bench_scan import WARMUP, paired_timings_us, timings_us

    text = "x" * 40
    alone: list[str] = []
    ours: list[str] = []
    theirs: list[str] = []

    timings = timings_us(alone.append, text, 5)
    paired = paired_timings_us(ours.append, theirs.append, text, 5)

    assert len(timings) == 5 and [len(side) for side in paired] == [5, 5]
    assert len(alone) == len(ours) == len(theirs) == WARMUP + 5
    assert len(set(alone)) == len(alone)
    assert len(set(ours + theirs)) == len(ours) + len(theirs)
    assert {len(sent) for sent in alone + ours + theirs} == {len(text)}
