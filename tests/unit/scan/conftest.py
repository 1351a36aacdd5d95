"""Fixtures of the scan unit tests: one scanner per profile, built once."""

from __future__ import annotations

import pytest

from turnwall.scan import Scanner


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    return Scanner(profile="default")


@pytest.fixture(scope="session")
def monitor() -> Scanner:
    return Scanner(profile="monitor")


@pytest.fixture(scope="session")
def strict() -> Scanner:
    return Scanner(profile="strict")
