"""The signature catalog, indexed for the prefilter.

A signature is a few regular expressions over a normalized view of the text (or, for
case-sensitive secrets, over the raw text), or the name of a detector in code. Every
pattern of a direction goes into one `Prefilter`, so a scan looks up the words of a text
once and runs only the patterns whose required words are all there.

A rule that cannot leave its sentence is searched in the sentences holding its words;
the others in windows around the places where all their words lie within reach of one
another. `turnwall.scan.loader` builds the catalog from the data files (`default_catalog`);
`turnwall.scan.patterns` compiles each pattern on first use.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from turnwall.scan.normalize import (
    Sentences,
    ascii_runs,
    char_table,
    chunk,
    translate,
    word_set,
)
from turnwall.scan.patterns import (
    LazyPattern,
    compile_pattern,
    index_key,
    reach_of,
    sentence_bounded,
    shipped_analyses,
    word_list_entries,
)
from turnwall.scan.prefilter import PREFIX_CHARS, Prefilter, analyse, needle_sets, needles
from turnwall.scan.reach import MAX_REACH

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from turnwall.scan.models import Category, Direction


Kind = Literal["pattern", "topic", "contested", "detector"]
# Kinds that only describe what a turn is about: capped in scoring, remembered by sessions.
TOPICAL: Final = frozenset({"topic", "contested"})
# What a signature may require besides a category: a harm topic of the same text (a
# CS-T-* entry), for a rule that reads harm only beside one.
HARM_TOPIC: Final = "harm_topic"
Action = Literal["flag", "block"]
_MAX_WIDTH: Final = 400
# Jumping between the starts of a rule costs a str.find per start and a match where one
# is found; a search costs a little at every position. Below this many positions of the
# window per start, the search is the cheaper (whatever the starts: on the inputs of
# ../shared/eval, the searches of rules with starts took 84 ms in all this way, 136 ms
# when only rules without a start shorter than 4 letters jumped, 79 ms at best).
_POSITIONS_PER_START: Final = 8


@dataclass(frozen=True, slots=True, eq=False)
class Signature:
    """One compiled catalog entry (see `signatures/README.md` for the fields)."""

    id: str
    name: str
    category: Category
    directions: frozenset[Direction]
    score: float
    action: Action
    kind: Kind
    patterns: tuple[LazyPattern, ...]
    compacts: tuple[LazyPattern | None, ...]
    unless: LazyPattern | None
    raw: bool
    requires: frozenset[str]
    detector: str | None
    damp_quoted: bool
    prompt_score: float | None
    sources: tuple[str, ...] = ()
    # A topic (harm or contested subject): it describes a turn, never decides it.
    topical: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern of a signature, as the prefilter numbers it."""

    signature: Signature
    pattern: LazyPattern
    compact: LazyPattern | None
    # Written in a script without spaces, so no word can gate it: run it on such text only.
    non_ascii: bool = False
    # Word prefixes every match starts with (None: a match may start anywhere).
    starts: tuple[str, ...] | None = None
    # The longest text a match can span (None: unbounded or very long).
    width: int | None = None
    # Cannot match across a sentence end, so each sentence can be searched on its own.
    bounded: bool = False
    groups: int = 0
    # The most one match attempt reads from where it starts (`reach.reach`).
    reach: int = MAX_REACH
    # Searched sentence by sentence (bounded, with required words) rather than in windows.
    in_sentences: bool = False

    def settles(self, match: re.Match[str], end: int, size: int) -> bool:
        """Whether a match found in a window ending at `end` of a text of `size` is what
        the whole text holds there: the window showed the attempt all it reads. Else the
        window holds no match that counts (a leftmost match starts later)."""
        return end >= size or match.start() + self.reach <= end

    def search(
        self, text: str, start: int, end: int, *, plain: bool = False
    ) -> re.Match[str] | None:
        """The leftmost match in `text[start:end]`, trying only where one could begin.
        `plain`: the text is `plain_ascii`, so the ASCII methods of the pattern may
        search it."""
        pattern = self.pattern
        if self.starts is None or len(self.starts) * _POSITIONS_PER_START > end - start:
            return (pattern.ascii_search if plain else pattern.search)(text, start, end)
        match = pattern.ascii_match if plain else pattern.match
        best: re.Match[str] | None = None
        for word in self.starts:
            position = text.find(word, start, end)
            while position >= 0 and (best is None or position < best.start()):
                found = match(text, position, end)
                if found is not None:
                    best = found
                    break
                position = text.find(word, position + 1, end)
        return best

    def finditer(
        self, text: str, start: int, end: int, *, plain: bool = False
    ) -> Iterator[re.Match[str]]:
        """The matches `pattern.finditer(text, start, end)` yields, each found by `search`
        (`plain` as there).

        A search from where the last match ended finds the next one that finditer
        would; only after an empty match do the two differ (finditer then steps one
        position on), so from there on finditer itself takes over."""
        finditer = self.pattern.ascii_finditer if plain else self.pattern.finditer
        if self.starts is None:
            yield from finditer(text, start, end)
            return
        while (match := self.search(text, start, end, plain=plain)) is not None:
            if match.end() == match.start():
                yield from finditer(text, match.start(), end)
                return
            yield match
            start = match.end()


@dataclass(frozen=True, slots=True)
class _Index:
    rules: tuple[Rule, ...]
    prefilter: Prefilter  # numbers `rules` in order
    # Each rule's `_unseen_sets`, filled in as rules are first readied (None: not yet).
    unseen: list[tuple[tuple[str, ...], ...] | None]


@dataclass(frozen=True, slots=True)
class _Direction:
    # Rules that need words and cannot match across a full stop: each sentence is
    # checked for their words and searched on its own.
    sentences: _Index
    # The others: checked against the words of the whole text, searched in all of it.
    texts: _Index
    raw: tuple[Signature, ...]
    detectors: tuple[Signature, ...]


class Catalog:
    """Every signature of the data files, indexed per direction for the prefilter."""

    def __init__(self, signatures: Iterable[Signature]) -> None:
        self.signatures: tuple[Signature, ...] = tuple(signatures)
        self.by_id: dict[str, Signature] = {sig.id: sig for sig in self.signatures}
        self._needles: dict[str, tuple[tuple[str, ...], bool] | None] = {}
        self._unseen: dict[str, tuple[tuple[str, ...], ...]] = {}
        # The last text case-folded for the strings of raw-view patterns: they all look in it.
        self._folded: tuple[str, str] | None = None
        self._directions: dict[Direction, _Direction] = {
            direction: _index([sig for sig in self.signatures if direction in sig.directions])
            for direction in ("input", "output")
        }

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        """Every rule the prefilter indexes for `direction`."""
        index = self._directions[direction]
        return index.sentences.rules + index.texts.rules

    def plan(
        self,
        text: str,
        direction: Direction,
        *,
        run_together: bool = False,
        sentences: Sentences | None = None,
    ) -> Iterator[tuple[Rule, int, int]]:
        """Which rules to search, and where: `(rule, start, end)` ranges of `text`, in the
        order to search them; made as they are taken, so that a megabyte's tens of
        thousands of ranges are never all held at once (each held object adds to what
        the garbage collector walks).

        A rule whose pattern cannot match a full stop is searched only in the chunks
        (`sentences.changed`) that hold all its required words. The others are searched
        around the places where all their required words lie within their reach of one
        another, in order; a match there counts only if it starts where the window shows
        the whole of what the attempt reads (see `Rule.settles`). With `run_together`,
        words may have been written without spaces between them ("ignoreallprevious"), so
        every position inside a long word may start one, and those rules search the
        whole text. `sentences` are `NormalizedText.sentences(view)` when at hand.
        """
        if sentences is None:
            chunks = chunk(text)
            sentences = Sentences(chunks, chunks, frozenset().union(*(w for _, _, w in chunks)))
        direction_index = self._directions[direction]
        in_sentences, texts = direction_index.sentences, direction_index.texts
        words = sentences.words
        known = sentences.held
        if run_together:
            every_word: list[frozenset[str]] = []
            for start, end, chunk_words in sentences.changed:
                # The prefilter reads no more than a word's first PREFIX_CHARS characters,
                # so a suffix is cut there: a long run-together word stays linear.
                chunk_words = frozenset(
                    w[i : i + PREFIX_CHARS]
                    for w in chunk_words
                    for i in range(len(w) if len(w) > 12 else 1)
                )
                every_word.append(chunk_words)
                for number in in_sentences.prefilter.ready(chunk_words):
                    yield in_sentences.rules[number], start, end
            words = frozenset().union(*every_word)
        else:
            ready_anywhere, useful = in_sentences.prefilter.gate(words)
            if ready_anywhere:
                hopeless = self._lacking_strings(in_sentences, ready_anywhere, text, known)
                # A text full of trigger words holds the same few of them in sentence after
                # sentence: the rules each such set readies are worked out once.
                rules_for: dict[frozenset[str], list[Rule]] = {}
                for start, end, present in sentences.holding(useful, changed=True):
                    rules = rules_for.get(present)
                    if rules is None:
                        rules = rules_for[present] = [
                            in_sentences.rules[number]
                            for number in in_sentences.prefilter.ready_for(present)
                            if number not in hopeless
                        ]
                    for rule in rules:
                        yield rule, start, end
        ascii_text = text.isascii()
        ready, useful = texts.prefilter.gate(words)
        if ascii_text:
            ready = [number for number in ready if not texts.rules[number].non_ascii]
        if not run_together:
            # The despaced view is searched with the compact variants, whose strings differ.
            lacking = self._lacking_strings(texts, ready, text, known)
            ready = [number for number in ready if number not in lacking]
        if ready and not run_together:
            windows = _windows(texts.prefilter, ready, texts.rules, sentences, len(text), useful)
            for number in ready:
                rule = texts.rules[number]
                for start, end in windows[number]:
                    yield rule, start, end
        else:
            for number in ready:
                yield texts.rules[number], 0, len(text)
        for number in texts.prefilter.always:
            rule = texts.rules[number]
            # No word gates these rules (written without spaces): the strings every match
            # holds do, and finding none is far cheaper than a search of the whole text.
            if not (ascii_text and rule.non_ascii) and self.may_match(rule.pattern, text):
                yield rule, 0, len(text)

    def split_rules(self, pieces: list[str], direction: Direction) -> list[tuple[Rule, int, int]]:
        """Searches of `" ".join(pieces)` where a match across pieces could be: the
        sentence spanning the newest seam (earlier seams were searched when their later
        piece was the newest)."""
        sentences = self._directions[direction].sentences
        joined = " ".join(pieces)
        seams: list[int] = []
        offset = 0
        for piece in pieces[:-1]:
            offset += len(piece) + 1
            seams.append(offset)
        searches: list[tuple[Rule, int, int]] = []
        if not seams:
            return searches
        last = seams[-1]
        start = joined.rfind(".", 0, last) + 1
        end = joined.find(".", last)
        end = len(joined) if end < 0 else end
        for number in sentences.prefilter.ready(word_set(joined, start, end)):
            rule = sentences.rules[number]
            if rule.signature.kind == "pattern":
                searches.append((rule, start, end))
        return searches

    def raw_signatures(self, direction: Direction) -> tuple[Signature, ...]:
        """Signatures that run on the untouched text (secrets are case-sensitive)."""
        return self._directions[direction].raw

    def may_match(self, pattern: LazyPattern, text: str) -> bool:
        """False when `text` lacks every string a match of `pattern` must contain (see
        `prefilter.needles`): a pattern no word gates (a raw-view pattern, or one written
        without spaces) is then skipped."""
        found = self._haystack(pattern, text)
        if found is None:
            return True
        strings, haystack = found
        return _holds_any(haystack, strings, {})

    def first_match(self, pattern: LazyPattern, text: str) -> re.Match[str] | None:
        """`pattern.search(text)`, searching only where a match could start: within its
        reach before a string every match contains. A raw-view pattern would otherwise
        search all of a long text for a secret that is seldom there.

        An attempt starting at s reads the characters before s + reach and may test
        for a word or line end at that position (`\\b`, `$`), so in a window ending one
        past `reach` after the last start it may take, it matches exactly as in the
        whole text (a search from a position still sees what lies before it); a match
        the window shows starting later may owe itself to the cut, and is not taken."""
        found = self._haystack(pattern, text)
        if found is None:
            return pattern.search(text)
        strings, haystack = found
        held = [needle for needle in strings if _holds(haystack, needle)]
        if not held:
            return None
        size = len(text)
        reach = reach_of(pattern.pattern)
        if sum(haystack.count(needle) for needle in held) * (reach + 1) * 2 > size:
            return pattern.search(text)  # the windows would cover much of the text
        places: list[int] = []
        for needle in held:
            place = haystack.find(needle)
            while place >= 0:
                places.append(place)
                place = haystack.find(needle, place + 1)
        places.sort()
        first = last = -1
        for place in [*places, size + reach]:
            if first >= 0 and place - reach <= last:
                last = place
                continue
            if first >= 0:
                match = pattern.search(text, first, min(size, last + reach + 1))
                if match is not None and match.start() <= last:
                    return match
            first, last = max(0, place - reach + 1), place
        return None

    def _lacking_strings(
        self,
        index: _Index,
        numbers: list[int],
        text: str,
        known: dict[str, bool],
    ) -> set[int]:
        """Those of `numbers` whose rule cannot match `text`: it lacks every string of one
        of the sets that a match of the rule holds one of (`prefilter.needle_sets`), among
        the sets no word can stand for ("@", "://", "[", a CJK phrase...). The prefilter,
        reading words, cannot tell that such a part is missing, and a rule whose words
        abound may be costly to search. `known` keeps whether `text` holds each string
        looked for."""
        lacking: set[int] = set()
        unseen = index.unseen
        for number in numbers:
            sets = unseen[number]
            if sets is None:
                sets = unseen[number] = self._unseen_of(index.rules[number].pattern.pattern)
            if not sets:
                continue  # most rules have none
            for strings in sets:
                if not _holds_any(text, strings, known):
                    lacking.add(number)
                    break
        return lacking

    def _unseen_of(self, pattern: str) -> tuple[tuple[str, ...], ...]:
        """`_unseen_sets(pattern)`, worked out once for a pattern of both directions."""
        sets = self._unseen.get(pattern)
        if sets is None:
            sets = self._unseen[pattern] = _unseen_sets(pattern)
        return sets

    def _haystack(self, pattern: LazyPattern, text: str) -> tuple[tuple[str, ...], str] | None:
        """The strings one of which every match of `pattern` holds, and `text` as they
        are to be found in it (case-folded when the pattern ignores case there); None
        when no such strings are known."""
        if pattern.pattern not in self._needles:
            found = needles(pattern.pattern)
            self._needles[pattern.pattern] = (
                None if found is None else (_shortest_first(found[0]), found[1])
            )
        gate = self._needles[pattern.pattern]
        if gate is None:
            return None
        strings, lowered = gate
        if not lowered:
            return strings, text
        if not all(string.isascii() for string in strings):
            return None  # a letter beyond ASCII has case forms .lower() does not give
        folded = self._folded  # one read: another thread may replace it meanwhile
        if folded is None or folded[0] is not text:
            folded = (text, _fold_ascii_case(text))
            self._folded = folded
        return strings, folded[1]

    def detectors(self, direction: Direction) -> tuple[Signature, ...]:
        """Signatures backed by code in `turnwall.scan.detectors` rather than patterns."""
        return self._directions[direction].detectors


def _unseen_sets(pattern: str) -> tuple[tuple[str, ...], ...]:
    """The sets of strings one of which a match of `pattern` holds (`prefilter.needle_sets`)
    that hold a string without a letter or digit: no word can stand for those."""
    return tuple(
        _shortest_first(strings)
        for strings in needle_sets(pattern)
        if any(not any(char.isalnum() for char in string) for string in strings)
    )


def _holds(text: str, string: str) -> bool:
    """`string in text`, told at once when its first character is nowhere in the text: a
    search for one character runs several times faster than one for a few of them, and
    these strings ("###", "://", "@") often start with one that a text lacks."""
    return string[:1] in text and string in text


def _holds_any(text: str, strings: tuple[str, ...], known: dict[str, bool]) -> bool:
    """Whether `text` holds one of `strings`, each looked for at most once per `known`
    (what was found of each string in `text`), in a plain loop: a scan asks this of a few
    dozen sets, and a generator under any() cost more than the searches."""
    for needle in strings:
        held = known.get(needle)
        if held is None:
            held = known[needle] = _holds(text, needle)
        if held:
            return True
    return False


def _shortest_first(strings: frozenset[str]) -> tuple[str, ...]:
    """`strings` in the order to look for any of them in a text: a short string is the
    likelier to be there, and every one looked for in vain costs a pass over the text."""
    return tuple(sorted(strings, key=lambda string: (len(string), string)))


def _fold_ascii_case(text: str) -> str:
    """`text` with every character that a case-insensitive pattern takes for an ASCII
    letter made that letter in lower case, one character for one: offsets stay those of
    `text`. Besides A-Z, a few others count (the Kelvin sign for k, the long s, dotless
    i), which `str.lower` would miss or turn into two characters."""
    runs = ascii_runs(text)
    if runs is None:
        return text.lower()
    return translate(text, char_table(text, _ASCII_LOWER, _ascii_letter, runs), runs)


_ASCII_LOWER: Final = {ord(upper): upper.lower() for upper in string.ascii_uppercase}


@functools.cache
def _ascii_letter(char: str) -> str | None:
    """The ASCII letter a case-insensitive pattern matches `char` as, if any."""
    return next(
        (letter for letter in string.ascii_lowercase if re.fullmatch(f"(?i:{letter})", char)),
        None,
    )


def _index(signatures: list[Signature]) -> _Direction:
    rules: list[Rule] = []
    requirements: list[list[frozenset[str]]] = []
    for sig in signatures:
        if sig.kind == "detector" or sig.raw:
            continue
        parts: list[tuple[LazyPattern, LazyPattern | None, str]] = []
        for pattern, compact, source in zip(sig.patterns, sig.compacts, sig.sources, strict=True):
            pieces = word_list_entries(source)
            if pieces is None:
                parts.append((pattern, compact, source))
                continue
            # One rule per word list entry: each runs only when its own words are there.
            for piece, compact_piece in pieces:
                parts.append(
                    (
                        compile_pattern(sig.id, piece),
                        None if compact_piece is None else compile_pattern(sig.id, compact_piece),
                        piece,
                    )
                )
        for pattern, compact, source in parts:
            analysis = shipped_analyses().get(index_key(source)) or analyse(source)
            groups, starts, width = analysis.groups, analysis.starts, analysis.width
            rules.append(
                Rule(
                    sig,
                    pattern,
                    compact,
                    non_ascii=not groups and not source.isascii(),
                    starts=None if starts is None else tuple(sorted(starts)),
                    width=width if width is not None and width <= _MAX_WIDTH else None,
                    bounded=sentence_bounded(source),
                    groups=len(groups),
                    reach=reach_of(source),
                    in_sentences=sentence_bounded(source) and bool(groups),
                )
            )
            requirements.append(groups)
    in_sentences = [rule.in_sentences for rule in rules]
    return _Direction(
        sentences=_part(rules, requirements, in_sentences, wanted=True),
        texts=_part(rules, requirements, in_sentences, wanted=False),
        raw=tuple(sig for sig in signatures if sig.raw and sig.kind != "detector"),
        detectors=tuple(sig for sig in signatures if sig.kind == "detector"),
    )


def _part(
    rules: list[Rule], requirements: list[list[frozenset[str]]], flags: list[bool], *, wanted: bool
) -> _Index:
    chosen = [number for number, flag in enumerate(flags) if flag is wanted]
    return _Index(
        rules=tuple(rules[number] for number in chosen),
        prefilter=Prefilter([requirements[number] for number in chosen]),
        unseen=[None] * len(chosen),
    )


def _windows(
    prefilter: Prefilter,
    ready: list[int],
    rules: tuple[Rule, ...],
    sentences: Sentences,
    size: int,
    useful: frozenset[str],
) -> dict[int, list[tuple[int, int]]]:
    """For each ready rule, the ranges of the text where a match could be: the chunks
    holding its required words, grouped while each lies within the rule's reach of the
    last, each group holding all of them, widened by the reach on both sides.

    A match reads at most `reach` characters and holds a word of every required group,
    so all of those lie in one group; a window starting `reach` before the group and
    ending `reach` after its last chunk shows every attempt that starts up to that chunk
    all it reads (`Rule.settles`)."""
    windows: dict[int, list[tuple[int, int]]] = {number: [] for number in ready}
    # Each rule's group in the making, as [start of its first chunk, end of its last,
    # groups satisfied], closed as soon as a chunk lies beyond the rule's reach: a
    # megabyte of look-alikes holds some 290,000 (chunk, rule) hits, none kept.
    groups: dict[int, list[int]] = {}
    reaches = {number: rules[number].reach for number in ready}
    fulls = {number: prefilter.full(number) for number in ready}
    # The same few words recur chunk after chunk: what each set of them satisfies is
    # worked out once.
    satisfied_by: dict[frozenset[str], list[tuple[int, int]]] = {}

    def close(number: int, first: int, last: int, bits: int) -> None:
        """Keep a closed group's window if the group holds every required word."""
        if bits == fulls[number]:
            reach = reaches[number]
            windows[number].append((max(0, first - reach), min(size, last + reach)))

    for start, end, present in sentences.holding(useful):
        satisfied = satisfied_by.get(present)
        if satisfied is None:
            satisfied = satisfied_by[present] = prefilter.satisfied_among(present, ready)
        for number, hit in satisfied:
            group = groups.get(number)
            if group is None:
                groups[number] = [start, end, hit]
            elif start - group[1] < reaches[number]:
                group[1] = end
                group[2] |= hit
            else:
                close(number, *group)
                groups[number] = [start, end, hit]
    for number, group in groups.items():
        close(number, *group)
    return windows
