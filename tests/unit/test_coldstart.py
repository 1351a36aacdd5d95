"""A function's init runs with the cyclic collector off and ends with it on again and
everything init built frozen, whether init succeeds or fails."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest

from tests.support.cold_start import after_cold_start
from turnwall.coldstart import init_phase

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_off_during_init_and_on_after_with_init_frozen() -> None:
    with init_phase():
        assert not gc.isenabled()
        built = [[index] for index in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_failing_init_still_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError), init_phase():
        raise RuntimeError("the store refused to start")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with init_phase():
        pass
    assert not gc.isenabled()


@pytest.mark.parametrize("function", ["get", "scan", "cleanup"])
def test_a_cold_start_leaves_the_collector_on_and_its_objects_frozen(function: str) -> None:
    state = after_cold_start(
        function, '{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}'
    )
    assert state["enabled"] is True
    assert state["frozen"] > 50_000  # FastAPI, pydantic and turnwall: not a handful
