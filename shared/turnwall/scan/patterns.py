"""Catalog patterns: compiled on first use, vouched for by the shipped index.

A pattern is compiled the first time a text needs it, so a cold start compiles almost
nothing. `signatures/prefilter-index.json` (written by `make index`) holds each shipped
pattern's prefilter analysis and its proof of a bounded reach (`turnwall.scan.reach`);
a pattern missing from it is analysed and checked when it is compiled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, cast

from turnwall.errors import ConfigurationError
from turnwall.scan.normalize import compact_pattern, fold
from turnwall.scan.prefilter import Analysis
from turnwall.scan.reach import LOOKBEHIND_CHARS, MAX_REACH, bound_repeats, lookbehind, reach

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


_GLOBAL_FLAGS = re.compile(r"^\(\?([imsx]+)\)")
# Inline flags under which re.ASCII could change what a pattern matches on ASCII text:
# case folding (i), and the flags that choose the classes themselves (a, u, L).
_CLASS_FLAGS = re.compile(r"\(\?[a-zA-Z-]*[aiuL]")
# The ASCII characters that Unicode counts as white space and re.ASCII does not.
_UNICODE_SPACES: Final = "\x1c\x1d\x1e\x1f"
# Negated classes that exclude "." stop at a sentence end: they keep a match inside one.
_SENTENCE_GAP = re.compile(r"\[\^(?:[^\]\\]|\\.)*\.(?:[^\]\\]|\\.)*\]")
# Prefilter analyses of the shipped patterns, precomputed: parsing every pattern again
# is half of what compiling the catalog costs a cold start.
INDEX_FILE: Final = "prefilter-index.json"
# The YAML files compiled: what a cold start loads instead of parsing them.
COMPILED_FILE: Final = "compiled-catalog.json"


class LazyPattern:
    """A regular expression compiled on first use, with the methods the engine calls.

    `search`, `match` and `finditer` are the compiled pattern's own bound methods, set
    when first asked for: loading costs nothing per pattern, and a warm scan pays no
    indirection for the laziness. `ascii_search`, `ascii_match` and `ascii_finditer`
    are those of the pattern compiled with re.ASCII, for `plain_ascii` text: they match
    there exactly as the others do, but their \\b, \\w, \\s and \\d look a character
    up in a table rather than in the Unicode database (on the lexical scan of a 1 KB
    turn, those lookups were a thirtieth of all instructions). Where inline flags could
    make the two differ (case folding, a class flag), they are the others.
    """

    __slots__ = (
        "_compiled",
        "ascii_finditer",
        "ascii_match",
        "ascii_search",
        "finditer",
        "match",
        "pattern",
        "search",
    )
    search: Callable[..., re.Match[str] | None]
    match: Callable[..., re.Match[str] | None]
    finditer: Callable[..., Iterator[re.Match[str]]]
    ascii_search: Callable[..., re.Match[str] | None]
    ascii_match: Callable[..., re.Match[str] | None]
    ascii_finditer: Callable[..., Iterator[re.Match[str]]]

    def __init__(self, pattern: str, compiled: re.Pattern[str] | None = None) -> None:
        self.pattern = pattern
        self._compiled = compiled
        if compiled is not None:
            self._bind(compiled)

    def __getattr__(self, name: str) -> Any:
        # Only reached while a slot is unset, i.e. before the first use.
        if name in ("search", "match", "finditer"):
            return getattr(self._bind(self.compiled), name)
        if name in ("ascii_search", "ascii_match", "ascii_finditer"):
            return getattr(self._bind_ascii(), name)
        raise AttributeError(name)

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def _bind(self, compiled: re.Pattern[str]) -> LazyPattern:
        self.search, self.match, self.finditer = compiled.search, compiled.match, compiled.finditer
        return self

    def _bind_ascii(self) -> LazyPattern:
        # A pattern given compiled may carry flags of its own: the twin keeps them.
        flags = 0 if self._compiled is None else self._compiled.flags & ~re.UNICODE
        if _CLASS_FLAGS.search(self.pattern) or flags & (re.IGNORECASE | re.LOCALE):
            compiled = self.compiled
        else:
            compiled = re.compile(self.pattern, flags | re.ASCII)
        self.ascii_search, self.ascii_match = compiled.search, compiled.match
        self.ascii_finditer = compiled.finditer
        return self

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r})"


def plain_ascii(text: str) -> bool:
    """Whether `text` is ASCII without the separators \\x1c-\\x1f: on such text \\w,
    \\d, \\s and \\b mean the same under re.ASCII as under Unicode, so a pattern
    without case folding matches alike compiled either way (`LazyPattern.ascii_search`)."""
    return text.isascii() and not any(separator in text for separator in _UNICODE_SPACES)


def word_list_entries(source: str) -> list[tuple[str, str | None]] | None:
    """The entries of a top-level word list with their despaced variants (shipped in
    the compiled catalog), or None when `source` is not one."""
    shipped = shipped_file(COMPILED_FILE).get("splits", {})
    if source in shipped:
        entries = shipped[source]
        return None if entries is None else [(piece, compact) for piece, compact in entries]
    return split_word_list(source)


def split_word_list(source: str) -> list[tuple[str, str | None]] | None:
    pieces = alternatives(source)
    if len(pieces) == 1:
        return None
    entries: list[tuple[str, str | None]] = []
    for piece in pieces:
        compact = compact_variant(source, piece)
        entries.append((piece, None if compact is None else compact.pattern))
    return entries


def index_key(source: str) -> str:
    return hashlib.blake2b(source.encode("utf-8"), digest_size=10).hexdigest()


def _shipped_index() -> dict[str, Any]:
    return shipped_file(INDEX_FILE)


@functools.cache
def shipped_file(name: str) -> dict[str, Any]:
    item = resources.files("turnwall.scan").joinpath("signatures", name)
    try:
        loaded = json.loads(item.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


@functools.cache
def shipped_analyses() -> dict[str, Analysis]:
    """The precomputed analyses in `signatures/prefilter-index.json`, by pattern digest.
    A pattern missing from it (an edited catalog) is analysed when it is compiled."""
    raw = _shipped_index()
    return {
        key: Analysis(
            [frozenset(group) for group in groups],
            None if starts is None else frozenset(starts),
            width,
        )
        for key, (groups, starts, width) in raw.get("patterns", {}).items()
    }


@functools.cache
def shipped_reaches() -> dict[str, int | None]:
    """The reach of every shipped pattern, proven by `make index` (see `reach.reach`)."""
    return cast("dict[str, int | None]", _shipped_index().get("reach", {}))


def alternatives(source: str) -> list[str]:
    """`\\b(?:a|b|c)\\b` as [`\\b(?:a)\\b`, ...]; any other pattern as itself."""
    if not (source.startswith("\\b(?:") and source.endswith(")\\b")):
        return [source]
    inner = source[5:-3]
    pieces: list[str] = []
    depth = 0
    in_class = False
    current: list[str] = []
    index = 0
    while index < len(inner):
        char = inner[index]
        if char == "\\":
            current.append(inner[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return [source]  # the outer group closes early: not one alternation
        elif char == "|" and depth == 0:
            pieces.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    pieces.append("".join(current))
    if depth != 0 or len(pieces) < 2:
        return [source]
    return [f"\\b(?:{piece})\\b" for piece in pieces]


def sentence_bounded(source: str) -> bool:
    """Whether nothing in the pattern can match "." (judged from its text)."""
    stripped = _SENTENCE_GAP.sub("", source)
    for syntax in ("(?<!", "(?<=", "(?!", "(?=", "(?:", "(?i:", "(?m:", "(?s:"):
        stripped = stripped.replace(syntax, "")
    return not any(marker in stripped for marker in (".", "\\W", "\\S", "\\D", "[^"))


def pattern_source(pattern: str, *, raw: bool) -> str:
    """The pattern as it is compiled: flags scoped, non-ASCII literals folded like text."""
    flags = _GLOBAL_FLAGS.match(pattern)
    if flags:
        # Scoped so patterns can be joined (and the prefilter parse sees the same thing).
        pattern = f"(?{flags.group(1)}:{pattern[flags.end() :]})"
    # Every repeat gets a bound, so a match attempt reads a bounded window (see `reach`).
    pattern = bound_repeats(pattern, raw=raw)
    if raw:
        return pattern
    # Normalized views are folded, so non-ASCII literals must be folded too; ASCII stays
    # as written because lowercasing it would turn escapes such as \S into \s.
    return "".join(c if c.isascii() else fold(c) for c in pattern)


def compile_pattern(where: str, source: str) -> LazyPattern:
    """A pattern with a proven bounded reach, compiled now or, when the shipped index
    already vouches for it, on first use."""
    key = index_key(source)
    shipped = shipped_reaches()
    if key in shipped:
        found = shipped[key]
        compiled = None
    else:
        try:
            compiled = re.compile(source)
        except re.error as exc:
            raise ConfigurationError(f"{where}: bad pattern: {exc}") from exc
        found = reach(source)
        behind = lookbehind(source)
        if behind is None or behind > LOOKBEHIND_CHARS:
            raise ConfigurationError(
                f"{where}: pattern {source[:60]!r} looks further back than "
                f"{LOOKBEHIND_CHARS} characters"
            )
    if found is None or found > MAX_REACH:
        raise ConfigurationError(
            f"{where}: pattern {source[:60]!r} can read an unbounded or over-long window "
            f"(reach {found}, at most {MAX_REACH}): give every repeat an upper bound"
        )
    return LazyPattern(source, compiled)


def reach_of(source: str) -> int:
    key = index_key(source)
    shipped = shipped_reaches()
    found = shipped[key] if key in shipped else reach(source)
    return MAX_REACH if found is None else found


def compact_variant(where: str, source: str) -> LazyPattern | None:
    """The despaced-view variant; a pattern that cannot be loosened just goes without."""
    try:
        return compile_pattern(where, bound_repeats(compact_pattern(source)))
    except ConfigurationError:
        return None
