"""Matched secrets never come back: not in the outcome, its repr, or the session state."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from typing import TYPE_CHECKING

import pytest

from turnwall.scan.detectors import _CARD

if TYPE_CHECKING:
    from turnwall.scan import Scanner

SECRETS = [
    "AKIAQWERTYUIOPASDFGH",
    "ghp_Zq8vN3xK5mB7cR2tY6uW9pL1sD4fG0hJ3kE5",
    "xoxb-123456789012-abcdefghijkl",
    "sk-proj-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5",
    "hunter2-Very-Secret!",
    "4539148803436467",
    "Zephyr-4471",
]


def _rendered(value: object) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_json = json.dumps(dataclasses.asdict(value), default=str)
    else:
        as_json = json.dumps(value, default=str)
    return repr(value) + as_json


@pytest.mark.parametrize("secret", SECRETS)
def test_secret_in_an_output_is_never_echoed(scanner: Scanner, secret: str) -> None:
    text = f"Sure, here it is: password = {secret} and also token {secret}."

    outcome, state = scanner.scan_output(text, {}, prompt=f"The access code is {secret}.")

    assert outcome.decision in ("flag", "block")
    for rendered in (_rendered(outcome), _rendered(state)):
        assert secret not in rendered
        assert secret.lower() not in rendered.lower()


def test_secret_in_an_input_is_not_stored_in_the_session_window(scanner: Scanner) -> None:
    secret = "AKIAQWERTYUIOPASDFGH"
    state: dict[str, object] = {}

    _, state = scanner.scan_input("Hi", state)
    _, state = scanner.scan_output(f"aws_secret = {secret}", state)

    assert secret.lower() not in json.dumps(state).lower()


def test_the_card_pattern_finds_what_its_lookbehind_led_form_finds() -> None:
    # GIVEN random runs of digits, spaces, dashes and other characters
    led = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
    chooser = random.Random(3)
    alphabet = [*"0123456789" * 3, " ", "-", "a", "\n", "--", "  ", "\u0663"]
    for _ in range(3_000):
        text = "".join(chooser.choice(alphabet) for _ in range(chooser.choice([20, 40, 80])))

        # WHEN the card pattern, written to begin with its digit, searches them
        found = [match.span() for match in _CARD.finditer(text)]

        # THEN it finds the runs the pattern led by its lookbehind finds
        assert found == [match.span() for match in led.finditer(text)], repr(text)
