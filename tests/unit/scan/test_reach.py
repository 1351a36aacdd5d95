"""Every repeat gets a bound, and the parse tree proves it: the linear-time guarantee."""

from __future__ import annotations

import pytest

from turnwall.errors import ConfigurationError
from turnwall.scan.loader import compile_entries, compiled_sources, default_catalog
from turnwall.scan.reach import LOOKBEHIND_CHARS, bound_repeats, lookbehind, reach


@pytest.mark.parametrize(
    ("source", "bounded"),
    [
        # The reported quadratic rule: separator runs next to each other.
        (r"\w*[\s_-]+(?:off\s+)?[\s_-]*x", r"\w{0,24}[\s_-]{1,8}(?:off\s{1,8})?[\s_-]{0,8}x"),
        (r".*?a.+b", r".{0,80}?a.{1,80}b"),
        (r"[^.\n]{5,}", r"[^.\n]{5,80}"),
        (r"(?:\w+\s+)*x", r"(?:\w{1,24}\s{1,8}){0,8}x"),
        (r"a{2}b{3,7}c?", r"a{2}b{3,7}c?"),  # already bounded: untouched
        (r"[+*]+\*+", r"[+*]{1,8}\*{1,80}"),  # quantifier characters inside a class or escaped
        (r"x*+y++", r"x{0,80}+y{1,80}+"),  # possessive repeats keep their marker
    ],
)
def test_every_repeat_gets_an_upper_bound(source: str, bounded: str) -> None:
    assert bound_repeats(source) == bounded
    assert reach(bound_repeats(source)) is not None


def test_raw_view_patterns_keep_room_for_long_secrets() -> None:
    bounded = bound_repeats(r"sk-[A-Za-z0-9_-]{32,}\s*", raw=True)

    assert bounded == r"sk-[A-Za-z0-9_-]{32,256}\s{0,32}"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"abc", 3),
        (r"a{2,5}", 5),
        (r"(?:ab|c){0,3}", 6),
        (r"(?<!x)a(?=bc)", 4),  # lookarounds read characters too
        (r"a+", None),
        (r"(?=.*x)a", None),  # an unbounded lookahead is as bad as an unbounded repeat
        (r"(a)\1", None),  # backreferences: no bound vouched for
        (r"(unclosed", None),
    ],
)
def test_reach_is_read_from_the_parse_tree(pattern: str, expected: int | None) -> None:
    assert reach(pattern) == expected


def test_a_pattern_without_a_provable_bound_fails_the_load() -> None:
    entry = {"id": "T-1", "category": "injection", "score": 0.5, "patterns": [r"(\w)\1"]}

    with pytest.raises(ConfigurationError, match="unbounded"):
        compile_entries([("test.yaml", entry)])


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"abc", 0),
        (r"(?<!glue )gun", 5),
        (r"(?:x(?<=ab))+", 2),
        (r"(?<![^\W_])'|'(?![^\W_])", 1),
        (r"(unclosed", None),
    ],
)
def test_lookbehind_is_the_widest_look_back(pattern: str, expected: int | None) -> None:
    assert lookbehind(pattern) == expected


def test_shipped_patterns_look_back_no_further_than_the_leet_view_allows() -> None:
    sources = compiled_sources(default_catalog().signatures)

    assert max(lookbehind(source) or 0 for source in sources) <= LOOKBEHIND_CHARS


def test_a_pattern_looking_far_back_fails_the_load() -> None:
    entry = {"id": "T-1", "category": "injection", "score": 0.5, "patterns": [r"(?<!x{40})y"]}

    with pytest.raises(ConfigurationError, match="further back"):
        compile_entries([("test.yaml", entry)])
