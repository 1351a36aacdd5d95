"""The session object's JSON, written without building its models."""

from __future__ import annotations

import pytest

from turnwall.http.schemas import SessionPublic
from turnwall.models import RiskSummary, Session

_PLAIN = Session(
    tenant="acme",
    session_id="user:alice:plan",
    created_at=1_790_000_000.123,
    updated_at=1_790_000_100.5,
    expires_at=1_790_001_900.5,
    ttl_secs=1800,
    message_count=0,
    model=None,
    metadata={},
    risk=RiskSummary(),
    as_of=1_790_000_100.5,
)
_FULL = _PLAIN._replace(
    model="gpt-4o",
    metadata={"app": "bench", "n": 1, "x": 1.5e300, "nested": {"ü": [None, True, "é\u2028"]}},
    risk=RiskSummary(turns_scanned=3, flagged_turns=1, session_score=0.123456789, decision="flag"),
    message_count=7,
    ended_at=1_790_000_100.5,
)


@pytest.mark.parametrize("session", [_PLAIN, _FULL], ids=["plain", "full"])
def test_json_of_is_the_models_json(session: Session) -> None:
    # GIVEN a session as the store returns it
    # WHEN it is written straight to JSON and through the response models
    direct = SessionPublic.json_of(session)
    through_models = SessionPublic.of(session)
    # THEN the bytes are the same, and they validate as a SessionPublic
    assert direct == through_models.__pydantic_serializer__.to_json(through_models)
    assert SessionPublic.model_validate_json(direct) == through_models
