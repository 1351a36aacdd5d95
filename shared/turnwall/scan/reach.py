"""Linear-time matching by construction: every catalog pattern reads a bounded window.

Python's `re` backtracks, and that is only dangerous when a repeat is unbounded: then one
match attempt can walk to the end of the text and try every way of sharing it between
neighbouring repeats (`[\\s_-]+` next to `[\\s_-]*` makes `"prefix" + "_" * 16000`
quadratic). The catalog closes that whole class in two steps a reviewer can check:

1. `bound_repeats` rewrites every `*`, `+` and `{n,}` of a pattern into a bounded
   repeat before it is compiled (whitespace runs 8, words 24, groups 8 times, anything
   else 80 characters; case-sensitive raw-view patterns, which look for long secrets,
   32 and 256), so every pattern has a longest possible match.
2. `reach` reads the compiled parse tree (not the source text) and returns how many
   characters around its start one match attempt can look at, lookarounds included;
   None if any repeat is still unbounded or the pattern uses a backreference. The
   catalog refuses to load a pattern without a reach (`ConfigurationError`).

An attempt that can only read `reach` characters can only try a number of paths that
depends on the pattern, never on the text, so searching n characters costs at most
n times a constant of the pattern: linear. The constants themselves are measured by
`tests/unit/scan/test_worst_case.py` with adversarial fillers at 1, 16 and 128 KB.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Final

# Normalized text has no whitespace run longer than 8 (normalize.MAX_SPACE_RUN).
SPACE_RUN: Final = 8
WORD_RUN: Final = 24
GAP_RUN: Final = 80
GROUP_RUN: Final = 8
RAW_SPACE_RUN: Final = 32
RAW_TOKEN_RUN: Final = 256
# The most one attempt of a shipped pattern may read; keeps the per-position constant sane.
MAX_REACH: Final = 4_096
# The most a lookbehind of a shipped pattern may read before where it is tried: a view
# that differs from the base only in places lets the scan skip sentences further away.
LOOKBEHIND_CHARS: Final = 32

_OPEN_REPEAT = re.compile(r"\{(\d*),\}")
_CLOSED_REPEAT = re.compile(r"\{\d*(?:,\d*)?\}")
_ESCAPE_LENGTHS: Final = {"x": 4, "u": 6, "U": 10, "0": 2}
_SPACE_ATOMS: Final = frozenset({r"\s", " ", r"\t", r"\n"})
_WORD_ATOMS: Final = frozenset({r"\w", r"\d"})


def bound_repeats(source: str, *, raw: bool = False) -> str:
    """`source` with every unbounded repeat given an upper bound fitting what it repeats."""
    out: list[str] = []
    atom = ""  # the last thing a quantifier would apply to
    after_quantifier = False
    index = 0
    while index < len(source):
        char = source[index]
        quantifier = False
        if char == "\\":
            length = _ESCAPE_LENGTHS.get(source[index + 1 : index + 2], 2)
            if source.startswith("N{", index + 1):
                length = source.index("}", index) + 1 - index
            atom = source[index : index + length]
            out.append(atom)
            index += length
        elif char == "[":
            end = _class_end(source, index)
            atom = source[index:end]
            out.append(atom)
            index = end
        elif char in "*+" and not after_quantifier:
            low = 0 if char == "*" else 1
            out.append(f"{{{low},{_limit(atom, raw=raw)}}}")
            quantifier = True
            index += 1
        elif char == "{" and (found := _OPEN_REPEAT.match(source, index)) and not after_quantifier:
            low = int(found.group(1) or 0)
            out.append(f"{{{low},{max(low, _limit(atom, raw=raw))}}}")
            quantifier = True
            index = found.end()
        elif char == "{" and (found := _CLOSED_REPEAT.match(source, index)):
            out.append(found.group())
            quantifier = True
            index = found.end()
        else:
            # "?" after an atom is a bounded repeat; after a repeat it makes it lazy, and
            # "+" after a repeat makes it possessive: both are copied as they are.
            quantifier = char == "?" and not after_quantifier and bool(atom)
            atom = "" if char in "(|" else ("group" if char == ")" else char)
            out.append(char)
            index += 1
        after_quantifier = quantifier
    return "".join(out)


def _class_end(source: str, start: int) -> int:
    index = start + 1
    if source.startswith("^", index):
        index += 1
    if source.startswith("]", index):
        index += 1
    while index < len(source) and source[index] != "]":
        index += 2 if source[index] == "\\" else 1
    return index + 1


def _limit(atom: str, *, raw: bool) -> int:
    if atom == "group":
        return GROUP_RUN  # "(?:\\s+(?:full|entire|...))*": a few words, not a paragraph
    spaces = atom in _SPACE_ATOMS or _separator_class(atom)
    if raw:
        return RAW_SPACE_RUN if spaces else RAW_TOKEN_RUN
    if spaces:
        return SPACE_RUN
    if atom in _WORD_ATOMS or _word_class(atom):
        return WORD_RUN
    return GAP_RUN


def _separator_class(atom: str) -> bool:
    """`[\\s_-]`: a class of whitespace and punctuation only, no letters or digits."""
    if not atom.startswith("[") or atom.startswith("[^"):
        return False
    members = atom[1:-1].replace(r"\s", "")
    return not re.search(r"\\[wWdDSbB]|[^\W_]|\\[A-Za-z0-9]", members.replace("\\-", ""))


def _word_class(atom: str) -> bool:
    """`[a-z0-9]`, `[\\w']`: letters and digits (and a little punctuation), not negated."""
    return atom.startswith("[") and not atom.startswith("[^") and "." not in atom


def reach(pattern: str) -> int | None:
    """How many characters one match attempt of `pattern` can read, counting those its
    lookarounds read; None when unbounded (an open repeat, a backreference) or
    unparseable."""
    items = _parse(pattern)
    return None if items is None else _reach(items)


def _parse(pattern: str) -> list[tuple[Any, Any]] | None:
    try:
        return list(sre_parse.parse(pattern))
    except re.error:
        return None


def _reach(items: list[tuple[Any, Any]]) -> int | None:
    total = 0
    for op, arg in items:
        width = _item_reach(op, arg)
        if width is None:
            return None
        total += width
    return total


def _item_reach(op: Any, arg: Any) -> int | None:
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.RANGE, sre.CATEGORY):
        return 1
    if op in (sre.AT, sre.SUCCESS, sre.FAILURE):
        return 0
    if op is sre.BRANCH:
        widths = [_reach(list(alternative)) for alternative in arg[1]]
        return None if None in widths else max(w for w in widths if w is not None)
    if op is sre.SUBPATTERN:
        return _reach(list(arg[3]))
    if op is sre.ATOMIC_GROUP:
        return _reach(list(arg))
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return _reach(list(arg[1]))  # reads beyond (or before) the match: counted in full
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        _low, high, body = arg
        width = _reach(list(body))
        if high >= sre.MAXREPEAT or width is None:
            return None
        return int(high) * width
    return None  # backreferences, conditionals: no bound this module can vouch for


def lookbehind(pattern: str) -> int | None:
    """How many characters before the position it is tried at one match attempt of
    `pattern` can read (its widest lookbehind); None when unbounded or unparseable."""
    items = _parse(pattern)
    return None if items is None else _lookbehind(items)


def _lookbehind(items: list[tuple[Any, Any]]) -> int | None:
    widest = 0
    for op, arg in items:
        inner: list[list[tuple[Any, Any]]] = []
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            if arg[0] < 0:
                width = _reach(list(arg[1]))
                if width is None:
                    return None
                widest = max(widest, width)
            inner = [list(arg[1])]
        elif op is sre.BRANCH:
            inner = [list(alternative) for alternative in arg[1]]
        elif op is sre.SUBPATTERN:
            inner = [list(arg[3])]
        elif op is sre.ATOMIC_GROUP:
            inner = [list(arg)]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            inner = [list(arg[2])]
        for part in inner:
            width = _lookbehind(part)
            if width is None:
                return None
            widest = max(widest, width)
    return widest
