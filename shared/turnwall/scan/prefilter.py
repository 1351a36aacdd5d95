"""The prefilter: which patterns could match a text, decided from its words alone.

Every pattern is parsed once to find the words it cannot match without: `\\bignore\\s+all`
needs a word starting with "ign" and one starting with "all". Alternatives contribute one
group ("ignore|disregard" needs either). All groups of all patterns go into one index by
their first three letters, so a scan looks up each distinct word of the text once and then
runs only the patterns whose every group is present. Benign text typically runs none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

_MIN: Final = 3
_MAX: Final = 6
# The longest word prefix the index holds: no lookup reads further into a word.
PREFIX_CHARS: Final = _MAX
_WORD_CHAR = re.compile(r"[a-z0-9]")
_Items = list[tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the prefilter needs to know of one pattern (see the functions below)."""

    groups: list[frozenset[str]]
    starts: frozenset[str] | None
    width: int | None


def analyse(pattern: str) -> Analysis:
    """From one parse of the pattern (parsing dominates the cost of compiling the
    catalog at a cold start): its `required_groups`; the word prefixes every match starts
    with, or None when a match may start otherwise (a scan can then jump to them with
    `str.find`); and the longest text it can match, or None when unbounded."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return Analysis([], None, None)
    items = list(parsed)
    _low, high = parsed.getwidth()
    return Analysis(
        groups=_groups(items, at_word_start=False),
        starts=_starts(items),
        width=None if high >= sre.MAXREPEAT else int(high),
    )


def required_groups(pattern: str) -> list[frozenset[str]]:
    """Groups of word prefixes the pattern needs: one of each group must start a word.

    Conservative: a group is only derived where the parse proves a word starts there, so
    a text without it cannot match. An empty list means "no proof, always run".
    """
    return analyse(pattern).groups


def _starts(items: _Items) -> frozenset[str] | None:
    while len(items) == 1 and items[0][0] is sre.SUBPATTERN and items[0][1][3] is not None:
        items = list(items[0][1][3])
    found = _prefixes(items, "")
    return None if found is None else frozenset(found)


def _groups(items: _Items, *, at_word_start: bool) -> list[frozenset[str]]:
    groups: list[frozenset[str]] = []
    boundary = at_word_start
    for index, (op, arg) in enumerate(items):
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            continue  # consumes nothing: a word start before it is one after it
        if boundary and (
            (op is sre.LITERAL and _is_word(arg)) or op in (sre.BRANCH, sre.SUBPATTERN)
        ):
            found = _prefixes(items[index:], "", whole=1)
            if found is not None:
                groups.append(frozenset(found))
        if op is sre.BRANCH:
            alternatives = [_groups(list(alt), at_word_start=boundary) for alt in arg[1]]
            merged = _merge(alternatives)
            if merged is not None:
                groups.append(merged)
        if op is sre.SUBPATTERN and arg[3] is not None:
            groups.extend(_groups(list(arg[3]), at_word_start=boundary))
        if op in _REPEATS and arg[0] == 0:
            # Optional: afterwards a word starts if it did before and the optional part
            # cannot end inside a word.
            boundary = boundary and _ends_non_word(list(arg[2]))
            continue
        boundary = _leaves_word_start(op, arg)
    return _dedupe(groups)


def _ends_non_word(items: _Items) -> bool:
    """Whether a match of `items` (non-empty) always ends on a non-word character."""
    if not items:
        return False
    op, arg = items[-1]
    if op is sre.BRANCH:
        return all(_ends_non_word(list(alt)) for alt in arg[1])
    if op is sre.SUBPATTERN and arg[3] is not None:
        return _ends_non_word(list(arg[3]))
    return _leaves_word_start(op, arg)


def _merge(alternatives: list[list[frozenset[str]]]) -> frozenset[str] | None:
    """One group for an alternation: the most selective group of each alternative."""
    chosen: set[str] = set()
    for groups in alternatives:
        if not groups:
            return None
        best = max(groups, key=lambda group: (min(len(word) for word in group), -len(group)))
        chosen.update(best)
    return frozenset(chosen)


def _prefixes(items: _Items, acc: str, *, whole: int = 2) -> set[str] | None:
    """Every literal word prefix a match must start with at this point: 3-6 characters,
    or a whole word of at least `whole` characters (which the index then matches
    exactly): a group may be "i" or "we", a start to jump to is never one letter."""
    if len(acc) >= _MAX:
        return {acc}
    if not items:
        return {acc} if len(acc) >= _MIN else None
    op, arg = items[0]
    rest = items[1:]
    if (op is sre.AT and arg is sre.AT_BOUNDARY and not acc) or op in (sre.ASSERT, sre.ASSERT_NOT):
        return _prefixes(rest, acc, whole=whole)
    if op is sre.LITERAL and _is_word(arg):
        return _prefixes(rest, acc + chr(arg), whole=whole)
    if _leaves_word_start(op, arg) and op not in _REPEATS:
        return {acc} if len(acc) >= whole else None  # the word ends here
    if op is sre.BRANCH:
        found: set[str] = set()
        for alternative in arg[1]:
            part = _prefixes(list(alternative) + rest, acc, whole=whole)
            if part is None:
                return None
            found |= part
        return found
    if op is sre.SUBPATTERN and arg[3] is not None:
        return _prefixes(list(arg[3]) + rest, acc, whole=whole)
    if op in _REPEATS:
        low, _high, body = arg
        if low == 0:
            if len(acc) >= _MIN:
                return {acc}
            skipped = _prefixes(rest, acc, whole=whole)
            taken = _prefixes(list(body) + rest, acc, whole=whole)
            if skipped is None or taken is None:
                return None
            return skipped | taken
        return _prefixes(list(body) + rest, acc, whole=whole)
    return {acc} if len(acc) >= _MIN else None


def _leaves_word_start(op: Any, arg: Any) -> bool:
    """Whether whatever follows this item must begin a new word."""
    if op is sre.AT:
        return arg in (sre.AT_BOUNDARY, sre.AT_BEGINNING, sre.AT_BEGINNING_LINE)
    if op is sre.LITERAL:
        return not _is_word(arg)
    if op is sre.IN:
        return _non_word_class(arg)
    if op in _REPEATS:
        low, _high, body = arg
        body_items = list(body)
        return low >= 1 and len(body_items) == 1 and _leaves_word_start(*body_items[0])
    return False


_REPEATS: Final = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def _non_word_class(members: Any) -> bool:
    if not members or members[0][0] is sre.NEGATE:
        return False
    for op, arg in members:
        if op is sre.CATEGORY and arg in (sre.CATEGORY_SPACE, sre.CATEGORY_NOT_WORD):
            continue
        if op is sre.LITERAL and not _is_word(arg):
            continue
        return False
    return True


def _is_word(code: int) -> bool:
    """Letters and digits of scripts written with spaces: those start and end tokens."""
    char = chr(code)
    if char.isascii():
        return bool(_WORD_CHAR.match(char))
    return char.isalnum() and not _unspaced(code)


def _unspaced(code: int) -> bool:
    return (
        0x0E00 <= code <= 0x0E7F
        or 0x1100 <= code <= 0x11FF
        or 0x3040 <= code <= 0x30FF
        or 0x3130 <= code <= 0x318F
        or 0x3400 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
    )


def _dedupe(groups: list[frozenset[str]]) -> list[frozenset[str]]:
    """Distinct groups. A group of frequent words ("your", "what", "did") is kept: it
    gates little on its own, but a rule needs all its groups, and "what did your
    developer ..." is then searched only in sentences holding "did" as well. On a 1 KB
    turn this halved the searches (83 to 43 on bench_scan's attack text) and took a
    tenth off the scan; the frequent words' extra bits cost less than the searches."""
    unique: list[frozenset[str]] = []
    for group in groups:
        if group and group not in unique:
            unique.append(group)
    return unique


class Prefilter:
    """Index of the required words of many patterns (rules), numbered 0..n-1."""

    _CACHE_LIMIT: Final = 65_536

    def __init__(self, rules: Iterable[list[frozenset[str]]]) -> None:
        self._full: list[int] = []
        self.always: tuple[int, ...] = ()
        always: list[int] = []
        by_prefix: dict[str, dict[int, int]] = {}
        # Every rule's groups also have bits of their own in one big integer: a block per
        # rule, then a guard bit. A text's words OR their bits together, and adding one at
        # the bottom of every block carries into a rule's guard only when all of its
        # groups are set: the ready rules come out of a few big-integer operations in C.
        self._offset: list[int] = []
        self._guards: dict[int, int] = {}  # guard bit position -> rule
        blocks = bottoms = guards = 0
        for number, groups in enumerate(rules):
            self._full.append((1 << len(groups)) - 1)
            offset = (blocks | guards).bit_length()
            self._offset.append(offset)
            if not groups:
                always.append(number)
            else:
                blocks |= self._full[number] << offset
                bottoms |= 1 << offset
                guards |= 1 << (offset + len(groups))
                self._guards[offset + len(groups)] = number
            for bit, group in enumerate(groups):
                for prefix in group:
                    bits = by_prefix.setdefault(prefix, {})
                    bits[number] = bits.get(number, 0) | (1 << bit)
        self._bottoms, self._guard_bits = bottoms, guards
        # Each rule's groups in place in the big integer (what `gate` ORs per ready rule).
        self._blocks: list[int] = [
            full << offset for full, offset in zip(self._full, self._offset, strict=True)
        ]
        self.always = tuple(always)
        self._index: dict[str, dict[int, int]] = by_prefix
        self._lengths: tuple[int, ...] = tuple(
            sorted({len(prefix) for prefix in by_prefix if len(prefix) > 2})
        )
        self._heads: frozenset[str] = frozenset(prefix[:3] for prefix in by_prefix)
        # Words repeat across texts, so what each word satisfies is worked out once; most
        # satisfy nothing, and a set difference drops those before any per-word work.
        self._cache: dict[str, tuple[tuple[int, int], ...]] = {}
        self._masks: dict[str, int] = {}
        self._barren: set[str] = set()
        self._ready_for: dict[frozenset[str], list[int]] = {}

    def gate(self, tokens: AbstractSet[str]) -> tuple[list[int], frozenset[str]]:
        """`ready(tokens)`, and those of `tokens` that satisfy a group of a ready rule.
        A part of the text has the same ready rules as its words' intersection with the
        latter, which a sentence usually does not meet at all: then it costs one set
        intersection in C."""
        found: list[tuple[str, int]] = []
        ready = self._ready(self._mask(tokens, found))
        groups = 0
        blocks = self._blocks
        for rule in ready:
            groups |= blocks[rule]
        return ready, frozenset(token for token, mask in found if mask & groups)

    def full(self, rule: int) -> int:
        """The bit set of `rule` with every group satisfied."""
        return self._full[rule]

    def ready(self, tokens: AbstractSet[str]) -> list[int]:
        """Rules with required words whose every group has a word in `tokens`, in order."""
        return self._ready(self._mask(tokens))

    def ready_for(self, present: frozenset[str]) -> list[int]:
        """`ready(present)` for a sentence's trigger words (`gate`'s useful words it
        holds): they are few and recur from text to text, so the answer is kept. The
        list is shared: callers must not change it."""
        ready = self._ready_for.get(present)
        if ready is None:
            if len(self._ready_for) >= self._CACHE_LIMIT:
                self._ready_for.clear()
            ready = self._ready_for[present] = self._ready(self._mask(present))
        return ready

    def _ready(self, mask: int) -> list[int]:
        carried = (mask + self._bottoms) & self._guard_bits
        guards = self._guards
        ready = []
        while carried:
            # Highest bit first: clearing it leaves a shorter integer for the next step,
            # where clearing the lowest would copy the whole one each time.
            top = carried.bit_length() - 1
            ready.append(guards[top])
            carried ^= 1 << top
        ready.reverse()
        return ready

    def _mask(self, tokens: AbstractSet[str], found: list[tuple[str, int]] | None = None) -> int:
        """The group bits of every rule that some word of `tokens` satisfies; `found`, if
        given, gets each word that satisfies any, with its bits."""
        mask = 0
        masks, offset = self._masks, self._offset
        for token in tokens - self._barren:
            bits = masks.get(token)
            if bits is None:
                bits = 0
                for rule, groups in self.satisfied({token}).items():
                    bits |= groups << offset[rule]
                if not bits:
                    continue  # satisfied() has put it among the barren words
                if len(masks) >= self._CACHE_LIMIT:
                    masks.clear()
                masks[token] = bits
            if found is not None:
                found.append((token, bits))
            mask |= bits
        return mask

    def satisfied_among(
        self, tokens: AbstractSet[str], rules: Iterable[int]
    ) -> list[tuple[int, int]]:
        """`satisfied(tokens)` for `rules` only, read from the words' big integers: a
        common word satisfies groups of hundreds of rules, and a text readies a few."""
        mask = self._mask(tokens)
        full, offset = self._full, self._offset
        return [(rule, bits) for rule in rules if (bits := (mask >> offset[rule]) & full[rule])]

    def satisfied(self, tokens: AbstractSet[str]) -> dict[int, int]:
        """For each rule, the bit set of its groups that some word in `tokens` satisfies."""
        seen: dict[int, int] = {}
        get = seen.get
        cache, barren = self._cache, self._barren
        for token in tokens - barren:
            satisfied = cache.get(token)
            if satisfied is None:
                satisfied = self._satisfied(token)
                if not satisfied:
                    if len(barren) >= self._CACHE_LIMIT:
                        barren.clear()
                    barren.add(token)
                    continue
                if len(cache) >= self._CACHE_LIMIT:
                    cache.clear()
                cache[token] = satisfied
            for rule, bits in satisfied:
                seen[rule] = get(rule, 0) | bits
        return seen

    def _satisfied(self, token: str) -> tuple[tuple[int, int], ...]:
        if token[:3] not in self._heads:
            return ()  # most words start no required word at all
        if len(token) <= 2:
            keys = [token]
        else:
            keys = [token[:length] for length in self._lengths if length <= len(token)]
        merged: dict[int, int] = {}
        for key in keys:
            for rule, bits in self._index.get(key, {}).items():
                merged[rule] = merged.get(rule, 0) | bits
        return tuple(merged.items())


def needles(pattern: str) -> tuple[frozenset[str], bool] | None:
    """Strings one of which every match of `pattern` contains, and whether they are
    lowercased (the pattern ignores case there); None when the parse proves none. A
    raw-view pattern, which no word gates, is thus skipped in C on a text holding none."""
    try:
        items = list(sre_parse.parse(pattern))
    except re.error:
        return None
    return _needles(items, ignore_case=False)


def needle_sets(pattern: str) -> list[frozenset[str]]:
    """For each mandatory part of `pattern` that yields any, the strings one of which
    every match contains there, as written: a text lacking all of one set cannot match.
    Parts where the pattern ignores case are left out; [] when the parse proves none."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return []
    if parsed.state.flags & re.I:
        return []
    every: list[_Needles] = []
    _needles(list(parsed), ignore_case=False, every=every)
    return [strings for strings, lowered in every if not lowered]


_Needles = tuple[frozenset[str], bool]


def _needles(
    items: _Items, *, ignore_case: bool, every: list[_Needles] | None = None
) -> _Needles | None:
    """Each mandatory part of a sequence yields candidates; the most selective wins.
    `every`, when given, receives every candidate of this sequence."""
    best: _Needles | None = None
    run = ""

    def consider(found: _Needles | None) -> None:
        nonlocal best
        if every is not None and found and found[0]:
            every.append(found)
        if (
            found
            and found[0]
            and (best is None or min(map(len, found[0])) > min(map(len, best[0])))
        ):
            best = found

    for op, arg in items:
        if op is sre.LITERAL:
            run += chr(arg).lower() if ignore_case else chr(arg)
            continue
        consider((frozenset({run}), ignore_case) if run else None)
        run = ""
        if op is sre.SUBPATTERN and arg[3] is not None:
            consider(_needles(list(arg[3]), ignore_case=ignore_case or bool(arg[1] & re.I)))
        elif op is sre.BRANCH:
            alternatives = [_needles(list(alt), ignore_case=ignore_case) for alt in arg[1]]
            if all(alternatives):
                folded = any(alt[1] for alt in alternatives if alt)
                consider(
                    (
                        frozenset(
                            needle.lower() if folded else needle
                            for alt in alternatives
                            if alt
                            for needle in alt[0]
                        ),
                        folded,
                    )
                )
        elif op in _REPEATS and arg[0] >= 1:
            consider(_needles(list(arg[2]), ignore_case=ignore_case))
    consider((frozenset({run}), ignore_case) if run else None)
    return best
