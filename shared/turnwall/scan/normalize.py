"""Normalization against evasion: every rendering of a text the signatures run on.

`normalize()` folds the text once (Unicode compatibility forms, accents, case, zero-width
and bidi controls, Unicode tag characters, homoglyphs) into the *base* view and derives
the cheap extra views only when the text shows a hint of needing them: leetspeak,
letters padded with spaces or punctuation, rot13, reversed text, and payloads encoded as
base64, hex, binary, URL escapes or code points. Each view can map a span back to the
original text, so matches report where they are without carrying the text itself.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Final

from turnwall.scan.decode import MAX_DECODED_CHARS, MAX_DECODED_TOTAL, decoded_segments
from turnwall.scan.lexicon import words
from turnwall.scan.reach import LOOKBEHIND_CHARS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    Locator = Callable[[int, int], tuple[int, int] | None]

Chunk = tuple[int, int, frozenset[str]]

# Bounds that keep one scan O(size of the text) with a small constant. The text itself
# is scanned whole: every pattern reads a bounded window (`reach`), so a longer text
# costs proportionally more, never quadratically more. Decoded payloads are bounded in
# number and size (`turnwall.scan.decode`) and in depth here.
MAX_DECODE_DEPTH: Final = 2
CHUNK_CHARS: Final = 40
# Up to this many words asked of a view are found in its text rather than its chunks
# (see `Sentences.holding`).
_FEW_WORDS: Final = 64
# Longer whitespace runs are squeezed to one character, so patterns can bound theirs.
MAX_SPACE_RUN: Final = 8
_LONG_SPACE = re.compile(rf"\s{{{MAX_SPACE_RUN + 1},}}")
_SPACE = re.compile(r"\s")
# On ASCII text, str.translate and str.split do in C what the word and whitespace
# patterns below do position by position: the same words, two to five times faster.
_ASCII_SPACES: Final = str.maketrans({chr(c): " " for c in range(128) if chr(c).isspace()})
_ASCII_NON_WORD: Final = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})

_HANGUL_FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Lowercase Cyrillic and Greek letters that render like Latin ones.
_CONFUSABLES: Final = str.maketrans(
    {
        "\u0430": "a",  # cyrillic small letter a
        "\u0432": "b",  # cyrillic small letter ve
        "\u0435": "e",  # cyrillic small letter ie
        "\u043a": "k",  # cyrillic small letter ka
        "\u043c": "m",  # cyrillic small letter em
        "\u043d": "h",  # cyrillic small letter en
        "\u043e": "o",  # cyrillic small letter o
        "\u043f": "n",  # cyrillic small letter pe
        "\u0440": "p",  # cyrillic small letter er
        "\u0441": "c",  # cyrillic small letter es
        "\u0442": "t",  # cyrillic small letter te
        "\u0443": "y",  # cyrillic small letter u
        "\u0445": "x",  # cyrillic small letter ha
        "\u044c": "b",  # cyrillic small letter soft sign
        "\u0455": "s",  # cyrillic small letter dze
        "\u0456": "i",  # cyrillic small letter byelorussian-ukrainian i
        "\u0458": "j",  # cyrillic small letter je
        "\u0501": "d",  # cyrillic small letter komi de
        "\u051b": "q",  # cyrillic small letter qa
        "\u051d": "w",  # cyrillic small letter we
        "\u04bb": "h",  # cyrillic small letter shha
        "\u04cf": "l",  # cyrillic small letter palochka
        "\u0475": "v",  # cyrillic small letter izhitsa
        "\u04af": "y",  # cyrillic small letter straight u
        "\u03b1": "a",  # greek small letter alpha
        "\u03b2": "b",  # greek small letter beta
        "\u03b3": "y",  # greek small letter gamma
        "\u03b5": "e",  # greek small letter epsilon
        "\u03b7": "n",  # greek small letter eta
        "\u03b9": "i",  # greek small letter iota
        "\u03ba": "k",  # greek small letter kappa
        "\u03bd": "v",  # greek small letter nu
        "\u03bf": "o",  # greek small letter omicron
        "\u03c1": "p",  # greek small letter rho
        "\u03c4": "t",  # greek small letter tau
        "\u03c5": "u",  # greek small letter upsilon
        "\u03c7": "x",  # greek small letter chi
        "\u03c9": "w",  # greek small letter omega
        "\u03c2": "s",  # greek small letter final sigma
    }
)
_CONFUSABLE_CHARS: Final = frozenset(chr(code) for code in _CONFUSABLES)
# Latin lookalikes that NFKD leaves alone: small capitals, stroked and dotless letters.
_LATIN_EXTRA: Final = str.maketrans(
    {
        "\u1d00": "a",  # latin letter small capital a
        "\u0299": "b",  # latin letter small capital b
        "\u1d04": "c",  # latin letter small capital c
        "\u1d05": "d",  # latin letter small capital d
        "\u1d07": "e",  # latin letter small capital e
        "\ua730": "f",  # latin letter small capital f
        "\u0262": "g",  # latin letter small capital g
        "\u029c": "h",  # latin letter small capital h
        "\u026a": "i",  # latin letter small capital i
        "\u1d0a": "j",  # latin letter small capital j
        "\u1d0b": "k",  # latin letter small capital k
        "\u029f": "l",  # latin letter small capital l
        "\u1d0d": "m",  # latin letter small capital m
        "\u0274": "n",  # latin letter small capital n
        "\u1d0f": "o",  # latin letter small capital o
        "\u1d18": "p",  # latin letter small capital p
        "\u0280": "r",  # latin letter small capital r
        "\ua731": "s",  # latin letter small capital s
        "\u1d1b": "t",  # latin letter small capital t
        "\u1d1c": "u",  # latin letter small capital u
        "\u1d20": "v",  # latin letter small capital v
        "\u1d21": "w",  # latin letter small capital w
        "\u028f": "y",  # latin letter small capital y
        "\u1d22": "z",  # latin letter small capital z
        "\u0131": "i",  # latin small letter dotless i
        "\u0237": "j",  # latin small letter dotless j
        "\u0142": "l",  # latin small letter l with stroke
        "\u00f8": "o",  # latin small letter o with stroke
        "\u0111": "d",  # latin small letter d with stroke
        "\u0127": "h",  # latin small letter h with stroke
        "\u0261": "g",  # latin small letter script g
        "\u00df": "ss",  # latin small letter sharp s
        "\u00e6": "ae",  # latin small letter ae
        "\u0153": "oe",  # latin small ligature oe
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
    }
)
_LEET: Final = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "|": "i"}
)
ROT13: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
_FOLD_CACHE: dict[str, str] = {}
# Characters whose only purpose in a prompt is to hide or disguise something from a reader.
_HIDDEN: set[str] = set()
_FOLD_CACHE_LIMIT: Final = 8_192

_WORD = re.compile(r"[^\W_]+")
_NON_WORD_CHAR = re.compile(r"[\W_]")
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")
# A text is cut into ASCII runs when it has fewer runs beyond ASCII than one per this
# many characters (see `_by_ascii_runs`).
_RUNS_WORTH_SPLITTING: Final = 64
_LATIN_LETTER = re.compile(r"[a-z]")
# Where a sentence ends: for the leet view (`_leet_view`) and for the sentence of a
# match that an exception must lie in (`engine._excepted`).
SENTENCE_MARKS: Final = ".!?\n"
SENTENCE_END: Final = re.compile(f"[{re.escape(SENTENCE_MARKS)}]")
# Sentences the leet view translates one by one before it translates the rest whole.
_LEET_SENTENCES: Final = 64
# A leet character between two letters, or opening a word before two letters: one
# search in C instead of a look at every digit of a long text. It starts with the leet
# character and looks behind it from there: a pattern that starts with a lookbehind is
# tried at every position (41 us on 1 KB of prose, against 3).
_LEET_IN_WORD = re.compile(r"[013457@$|](?:(?<=[^\W\d_].)(?=[^\W\d_])|(?<![^\W_].)(?=[^\W\d_]{2}))")
# A character that pads letters apart; one class for the run, the gaps and the shapes,
# which must agree (see `_has_padded_run`).
_PAD_CLASS: Final = r"[ \t._\-*|/\\,+~\u00b7\u2022:;]"
# Runs of single letters padded by spaces or punctuation: "i g n o r e", "i.g.n.o.r.e".
_PADDED_RUN = re.compile(
    r"(?<![^\W\d_])(?:[^\W\d_]" + _PAD_CLASS + r"{1,3}){3,}[^\W\d_](?![^\W\d_])"
)
_PADDING = re.compile(_PAD_CLASS + "+")
# `_PADDED_RUN` over the text's shapes (see `_shapes`: "a" for a letter, " " for a pad
# character, "x" for any other), written to begin with a string rather than a lookbehind:
# a search then jumps between the places where a letter ends before a pad, where the
# first searched every position of a megabyte (70 ms of one).
_PADDED_SHAPES = re.compile(r"a (?<!aa ) {0,2}a(?: {1,3}a){2,}(?!a)")
_LETTER = re.compile(r"[^\W\d_]")
_PAD = re.compile(_PAD_CLASS)


def _shape(char: str) -> str:
    return "a" if _LETTER.match(char) else " " if _PAD.match(char) else "x"


_ASCII_SHAPES: Final = {code: _shape(chr(code)) for code in range(128)}
_TRANSFORM_WORDS: Final = words("transform-words")
# Single letters other than the words "a" and "i": three of them hint at padded letters.
_SINGLE_LETTERS: Final = frozenset("bcdefghjklmnopqrstuvwxyz")
_STOPWORDS: Final = words("stopwords")


@dataclass(frozen=True, slots=True)
class View:
    """One rendering of the scanned text and how to map its spans to the original."""

    name: str
    text: str
    locate: Locator
    obfuscated: bool = False


@dataclass(slots=True)
class NormalizedText:
    """The base view of a text plus the derived views worth scanning."""

    original: str
    base: str
    views: list[View] = field(default_factory=list)
    evasion: bool = False
    tokens: frozenset[str] = frozenset()
    # The base view cut after full stops, with the words of each piece.
    chunks: list[Chunk] = field(default_factory=list)
    # The base view with everything but letters and digits blanked (see `_word_text`).
    _words: str = ""
    # By the id of the view: decoded views share names.
    _sentences: dict[int, Sentences] = field(default_factory=dict)

    def word_text(self) -> str:
        """The base view with every character but letters and digits made a space: its
        `.split()` is the base's words in order (`re.findall(r"[^\\W_]+", base)`), cut in
        C from what the chunks were cut from."""
        if not self._words and self.base:
            self._words = _word_text(self.base)
        return self._words

    def sentences(self, view: View) -> Sentences:
        """The chunks of `view` and the words of the whole view, worked out once per view:
        scanning the same text in both directions pays for them once.

        The leet view changes characters one for one and never a full stop, so it has the
        base's chunks. Those it leaves as they were, with the few characters before them
        that a lookbehind reads, hold exactly the base's matches of a rule that cannot
        leave its sentence, and the base view has searched them already: `changed` lists
        only the others.
        """
        known = self._sentences.get(id(view))
        if known is not None:
            return known
        if view.name == "base":
            found = Sentences(self.chunks, self.chunks, self.tokens)
        elif view.name == "leet":
            chunks: list[Chunk] = []
            changed: list[Chunk] = []
            for start, end, base_words in self.chunks:
                before = max(0, start - LOOKBEHIND_CHARS)
                if view.text[before:end] == self.base[before:end]:
                    chunks.append((start, end, base_words))
                else:
                    piece = (start, end, word_set(view.text, start, end))
                    chunks.append(piece)
                    changed.append(piece)
            found = Sentences(chunks, changed, _union(chunks))
        elif view.name in ("rot13", "reversed"):
            # Both map letters to letters and leave the rest: their words are the base's,
            # mapped the same way, and rot13 keeps every full stop where it was.
            rot13 = view.name == "rot13"
            if rot13:
                words = translate(self._words, ROT13)
                tokens = frozenset(word.translate(ROT13) for word in self.tokens)
                bounds = [(start, end) for start, end, _ in self.chunks]
            else:
                words = self._words[::-1]
                tokens = frozenset(word[::-1] for word in self.tokens)
                bounds = _chunk_bounds(view.text)
            found = Sentences(None, None, tokens, word_text=words, bounds=bounds)
        else:
            chunks = chunk(view.text)
            found = Sentences(chunks, chunks, _union(chunks))
        self._sentences[id(view)] = found
        return found


class Sentences:
    """A view cut into chunks (see `chunk`), for the prefilter."""

    __slots__ = ("_bounds", "_changed", "_chunks", "_places", "_spaced", "held", "words")

    def __init__(
        self,
        chunks: list[Chunk] | None,
        changed: list[Chunk] | None,
        words: frozenset[str],
        *,
        word_text: str = "",
        bounds: list[tuple[int, int]] | None = None,
    ) -> None:
        """`chunks` and `changed` as the attributes; or None for both, with the view's
        `word_text` (see `_word_text`) and its chunk `bounds`: the chunks' words are then
        found only where asked for (see `holding`). `words`: those of the whole view."""
        self.words = words
        # Whether the view holds each string the prefilter looked for so far (see
        # `Catalog.plan`): a string absent costs a pass over the view, and both
        # directions, and both parts of the catalog, look for many of the same.
        self.held: dict[str, bool] = {}
        self._chunks = chunks
        self._changed = changed
        self._bounds = bounds or []
        self._spaced = f" {word_text} "
        # The chunks each word looked for lies in, by their index (see `holding`).
        self._places: dict[str, list[int]] = {}

    @property
    def chunks(self) -> list[Chunk]:
        """The view cut after full stops, with the words of each piece."""
        if self._chunks is None:
            self._chunks = _chunk_at(self._spaced[1:-1], self._bounds)
        return self._chunks

    @property
    def changed(self) -> list[Chunk]:
        """The chunks a rule that cannot match "." must still search in this view."""
        return self.chunks if self._changed is None else self._changed

    def holding(
        self, useful: frozenset[str], *, changed: bool = False
    ) -> Iterator[tuple[int, int, frozenset[str]]]:
        """`(start, end, words)` of each chunk (each of `changed`) holding words of
        `useful`, in order, `words` being those.

        A view whose chunks have not been cut yet and of which few words are asked for
        (rot13 and reversed text: gibberish to the prefilter) is not cut: each word is
        found in the words of the whole view, about 0.5 ms a megabyte, where cutting
        costs some 40 ms. A chunk ends after a full stop, which is no letter, so no
        word straddles two."""
        if self._chunks is None and len(useful) <= _FEW_WORDS:
            found: dict[int, set[str]] = {}
            starts = [start for start, _ in self._bounds]
            for word in useful:
                for index in self._places_of(word, starts):
                    found.setdefault(index, set()).add(word)
            for index in sorted(found):
                start, end = self._bounds[index]
                yield start, end, frozenset(found[index])
            return
        for start, end, chunk_words in self.changed if changed else self.chunks:
            present = chunk_words & useful
            if present:
                yield start, end, present

    def _places_of(self, word: str, starts: list[int]) -> list[int]:
        """The indexes of the chunks holding `word`, which start at `starts`."""
        places = self._places.get(word)
        if places is None:
            places = []
            needle = f" {word} "
            # In `_spaced` a word starting at p of the view is preceded by the space at p.
            at = self._spaced.find(needle)
            while at >= 0:
                index = bisect_right(starts, at) - 1
                if not places or places[-1] != index:
                    places.append(index)
                at = self._spaced.find(needle, at + len(word) + 1)
            self._places[word] = places
        return places


def _union(chunks: list[Chunk]) -> frozenset[str]:
    return frozenset().union(*(words for _, _, words in chunks))


def fold(text: str) -> str:
    """The base view of `text` without derived views: what patterns and anchors use."""
    if text.isascii():
        return text.lower()
    return _confusables(text.translate(_fold_table(text)))


def normalize(text: str, *, decode: bool = True) -> NormalizedText:
    """Fold `text` and derive every view the signatures should see."""
    evasion = False
    locate_base: Locator
    if text.isascii():
        base = text.lower()
        locate_base = _same_span
    else:
        # Folded by ASCII runs (see `_by_ascii_runs`), with a table of every ASCII
        # character and every other one of the text.
        text_runs = ascii_runs(text)
        table = _fold_table(text, text_runs)
        folded = translate(text, table, text_runs)
        # The table has what each character folds to: what the text holds is read from it
        # rather than from a megabyte of characters (ASCII folds to ASCII, unhidden).
        lookalikes = not _CONFUSABLE_CHARS.isdisjoint("".join(table.values()))
        base = _confusables(folded) if lookalikes else folded
        evasion = base != folded or not _HIDDEN.isdisjoint(map(chr, table))
        locate_base = _fold_locator(text, table)
    # The base is cut into ASCII runs once, for its words and for the views derived
    # from it character by character: each cut of a megabyte costs about 10 ms.
    runs = ascii_runs(base)
    if _has_long_space(base, runs):
        base, locate_base = _squeeze(base, locate_base)
        runs = ascii_runs(base)
    normalized = NormalizedText(original=text, base=base, evasion=evasion)
    normalized._words = _word_text(base, runs)
    normalized.chunks = _chunk_at(normalized._words, _chunk_bounds(base))
    normalized.tokens = _union(normalized.chunks)
    normalized.views.append(View("base", base, locate_base))
    _add_derived_views(normalized, locate_base, runs)
    if decode:
        _add_decoded_views(normalized, text, depth=1, budget=[MAX_DECODED_TOTAL])
    return normalized


def chunk(text: str) -> list[Chunk]:
    """`text` cut after full stops into runs of at least CHUNK_CHARS characters, each
    with its set of words. A pattern that cannot match "." matches inside one run."""
    return _chunk_at(_word_text(text), _chunk_bounds(text))


def _chunk_bounds(text: str) -> list[tuple[int, int]]:
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        stop = text.find(".", start + CHUNK_CHARS)
        end = len(text) if stop < 0 else stop + 1
        bounds.append((start, end))
        start = end
    return bounds


def _chunk_at(words: str, bounds: list[tuple[int, int]]) -> list[Chunk]:
    return [(start, end, frozenset(words[start:end].split())) for start, end in bounds]


def _word_text(text: str, runs: list[str] | None = None) -> str:
    """`text` with every character that is not a letter or digit made a space: its words
    are then `.split()` of any slice, cut in C once for the whole text rather than per
    sentence (the same words `word_set` finds). `runs`: `ascii_runs(text)`, if known."""
    return _by_ascii_runs(
        text,
        lambda run: run.translate(_ASCII_NON_WORD),
        lambda run: _NON_WORD_CHAR.sub(" ", run),
        runs,
    )


def translate(
    text: str, table: Mapping[int, str | int | None], runs: list[str] | None = None
) -> str:
    """`text.translate(table)`, by ASCII runs (see `_by_ascii_runs`; `runs` as there)."""
    return _by_ascii_runs(
        text, lambda run: run.translate(table), lambda run: run.translate(table), runs
    )


def ascii_runs(text: str) -> list[str] | None:
    """`text` cut into runs of ASCII characters and runs of others, in turn (None for
    ASCII text, which is never cut). A text with too many runs to be worth cutting (see
    `_worth_cutting`) is cut only until that shows: the rest stays in the last run."""
    if text.isascii():
        return None
    return _NON_ASCII_RUN.split(text, len(text) // (2 * _RUNS_WORTH_SPLITTING) + 1)


def _worth_cutting(text: str, runs: list[str]) -> bool:
    """Whether work on `text` is done run by run (`runs`: `ascii_runs(text)`, whose every
    cut adds two runs): on a text mostly beyond ASCII, runs would only add calls."""
    return len(runs) * _RUNS_WORTH_SPLITTING <= len(text)


def char_table(
    text: str,
    ascii_table: Mapping[int, str],
    rule: Callable[[str], str | None],
    runs: list[str],
) -> dict[int, str]:
    """A `str.translate` table for `text`, built once per distinct character: what
    `ascii_table` makes of ASCII characters, and what `rule` makes of each character of
    `text` beyond ASCII (None: left as it is). `runs`: `ascii_runs(text)`, for text beyond
    ASCII; only its runs beyond ASCII are read, so a megabyte of English with a few curly
    quotes costs a look at those quotes."""
    table = dict(ascii_table)
    for char in _beyond_ascii(text, runs):
        made = rule(char)
        if made is not None:
            table[ord(char)] = made
    return table


def _beyond_ascii(text: str, runs: list[str]) -> set[str]:
    """The distinct characters of `text` beyond ASCII (`runs`: `ascii_runs(text)`)."""
    if _worth_cutting(text, runs):
        return set("".join(runs[1::2]))  # the split keeps the runs it cuts at, at odd places
    return {char for char in set(text) if not char.isascii()}


def _by_ascii_runs(
    text: str,
    ascii: Callable[[str], str],
    other: Callable[[str], str],
    runs: list[str] | None = None,
) -> str:
    """`other(text)` for a rewrite done character by character, done as `ascii` (which
    must give the same on ASCII text) on the runs of ASCII characters and `other` on the
    runs between them. CPython translates and searches ASCII text several times faster
    than text with one character beyond ASCII: a curly quote in a megabyte of English
    would put the whole megabyte on the slow path."""
    if text.isascii():
        return ascii(text)
    if runs is None:
        runs = ascii_runs(text) or [text]
    if not _worth_cutting(text, runs):
        return other(text)
    # The split keeps the runs it cuts at: ASCII runs at even places, the others between.
    return "".join([ascii(run) if place % 2 == 0 else other(run) for place, run in enumerate(runs)])


def word_set(text: str, start: int = 0, end: int | None = None) -> frozenset[str]:
    """The words (runs of letters and digits) of `text[start:end]`."""
    piece = text[start:end]
    if piece.isascii():
        return frozenset(piece.translate(_ASCII_NON_WORD).split())
    return frozenset(_WORD.findall(piece))


def _has_long_space(text: str, runs: list[str] | None = None) -> bool:
    """Whether `text` has a whitespace run longer than MAX_SPACE_RUN (`runs`:
    `ascii_runs(text)`, if known)."""
    if runs is None and not text.isascii():
        runs = ascii_runs(text)
    if runs is not None and not _worth_cutting(text, runs):
        return _LONG_SPACE.search(text) is not None
    spaces = _by_ascii_runs(
        text, lambda run: run.translate(_ASCII_SPACES), lambda run: _SPACE.sub(" ", run), runs
    )
    return " " * (MAX_SPACE_RUN + 1) in spaces


def _same_span(start: int, end: int) -> tuple[int, int] | None:
    return (start, end)


def _fold_table(text: str, runs: list[str] | None = None) -> dict[int, str]:
    """What each distinct character of `text` folds to, for `str.translate`: the text is
    then folded in C, and `_fold_char` runs once per distinct character, not per one.
    With `runs` (`ascii_runs(text)`), the table has every ASCII character, and only the
    runs beyond ASCII are read for the others (see `char_table`)."""
    if runs is None:
        return {ord(char): _fold_char(char) for char in set(text)}
    return char_table(text, _ASCII_FOLDS, _fold_char, runs)


def _fold_locator(text: str, table: dict[int, str]) -> Locator:
    """Map offsets of `text.translate(table)` to offsets of `text`."""
    if all(len(folded) == 1 for folded in table.values()):
        return _same_span
    ends: list[int] = []  # ends[i]: folded length of text[: i + 1]; built on first use

    def locate(start: int, end: int) -> tuple[int, int] | None:
        if not ends:
            lengths = {chr(code): len(folded) for code, folded in table.items()}
            ends.extend(accumulate(map(lengths.__getitem__, text)))
        size = ends[-1] if ends else 0
        if start >= size or end <= start:
            return None
        # The character holding folded offset k is the first whose end lies beyond k.
        return (bisect_right(ends, start), bisect_right(ends, min(end, size) - 1) + 1)

    return locate


def _add_derived_views(
    normalized: NormalizedText, locate_base: Locator, runs: list[str] | None
) -> None:
    """`runs`: `ascii_runs` of the base."""
    base = normalized.base
    tokens = normalized.tokens
    # Each view costs a pass over the text, so each is built only on cheap evidence.
    leet = _leet_view(base)
    if leet is not None and leet != base:
        normalized.views.append(View("leet", leet, locate_base, obfuscated=True))
    if len(tokens & _SINGLE_LETTERS) >= 3 and _has_padded_run(base, runs):
        despaced, index = _despace(base)
        if despaced != base:

            def locate_despaced(start: int, end: int) -> tuple[int, int] | None:
                if end <= start or end > len(index):
                    return None
                return locate_base(index[start], index[end - 1] + 1)

            normalized.views.append(View("despaced", despaced, locate_despaced, obfuscated=True))
    gibberish = len(tokens) >= 5 and len(tokens & _STOPWORDS) <= 1
    if gibberish or not tokens.isdisjoint(_TRANSFORM_WORDS):
        rot13 = translate(base, ROT13, runs)
        normalized.views.append(View("rot13", rot13, locate_base, obfuscated=True))
        size = len(base)

        def locate_reversed(start: int, end: int) -> tuple[int, int] | None:
            return locate_base(size - end, size - start)

        normalized.views.append(View("reversed", base[::-1], locate_reversed, obfuscated=True))


def _squeeze(base: str, locate_base: Locator) -> tuple[str, Locator]:
    """Replace each overlong whitespace run by its first character."""
    out: list[str] = []
    index: list[int] = []
    cursor = 0
    for run in _LONG_SPACE.finditer(base):
        out.append(base[cursor : run.start() + 1])
        index.extend(range(cursor, run.start() + 1))
        cursor = run.end()
    out.append(base[cursor:])
    index.extend(range(cursor, len(base)))

    def locate(start: int, end: int) -> tuple[int, int] | None:
        if end <= start or end > len(index):
            return None
        return locate_base(index[start], index[end - 1] + 1)

    return "".join(out), locate


def _has_padded_run(base: str, runs: list[str] | None) -> bool:
    """`_PADDED_RUN.search(base) is not None`, searched in the shapes of `base` (`runs`:
    its `ascii_runs`). The pattern asks of each character only whether it is a letter
    or a pad, so it matches the shapes where it matches the text."""
    return _PADDED_SHAPES.search(_shapes(base, runs)) is not None


def _shapes(text: str, runs: list[str] | None) -> str:
    """`text` with each letter (`[^\\W\\d_]`) made "a", each pad character (`_PAD`) " "
    and any other character "x", one for one (`runs`: `ascii_runs(text)`)."""
    if runs is None:
        return text.translate(_ASCII_SHAPES)
    return translate(text, char_table(text, _ASCII_SHAPES, _shape, runs), runs)


def _leet_view(base: str) -> str | None:
    """`base` with the leet characters (`_LEET`) of each sentence that shows a leet hint
    (a digit or symbol standing in for a letter inside a word: h4ck, pr3vious, $ystem)
    made letters, the other sentences as they are; None when no sentence shows one. A
    long text's numbers ("in 2019", "$40") then leave the view as the base there, and the
    view is searched only where it differs (`NormalizedText.sentences`): 1 MB of benign
    conversations held 53 hints and 4,077 leet characters. Linear: each search for a
    hint starts where the last translated sentence ended, and each look back for a
    sentence's start stops there; past _LEET_SENTENCES sentences the rest of the text is
    translated whole, as a text full of leetspeak costs no more than one translation."""
    hint = _LEET_IN_WORD.search(base)
    if hint is None:
        return None
    pieces: list[str] = []
    done = 0
    for _ in range(_LEET_SENTENCES):
        if hint is None:
            pieces.append(base[done:])
            return "".join(pieces)
        at = hint.start()
        start = max(done, *(base.rfind(mark, done, at) + 1 for mark in SENTENCE_MARKS))
        after = SENTENCE_END.search(base, at)
        end = len(base) if after is None else after.end()
        sentence = base[start:end]
        pieces += (base[done:start], translate(sentence, _LEET, ascii_runs(sentence)))
        done = end
        hint = _LEET_IN_WORD.search(base, done)
    rest = base[done:]
    pieces.append(rest if hint is None else translate(rest, _LEET, ascii_runs(rest)))
    return "".join(pieces)


def _despace(base: str) -> tuple[str, list[int]]:
    """Join letters padded apart; a longer gap inside the run stays one space."""
    out: list[str] = []
    index: list[int] = []
    cursor = 0
    for run in _PADDED_RUN.finditer(base):
        start, end = run.span()
        out.append(base[cursor:start])
        index.extend(range(cursor, start))
        piece = base[start:end]
        # A run alternates single letters and gaps: one letter more than gaps. Its text
        # is cut in C, not gap by gap: a megabyte of "i.g.n.o.r.e." is one run.
        gaps: list[str] = _PADDING.findall(piece)
        letters = _PADDING.split(piece)
        distinct = set(gaps)
        if len(distinct) == 1:
            out.extend(letters)
            index.extend(range(start, end, 1 + len(gaps[0])))
        else:
            # Letters are padded by one separator; a different one between them marks a
            # word end. Of separators as common, the first met pads (a Counter keeps the
            # order it met them in; a set's order would change with the hash seed, and
            # one text would be read differently from one process to the next).
            counts = Counter(gaps)
            usual = max(counts, key=counts.__getitem__)
            at = accumulate((1 + len(gap) for gap in gaps), initial=start)
            for letter, gap, position in zip(letters, gaps, at, strict=False):
                out.append(letter)
                index.append(position)
                if gap != usual:
                    out.append(" ")
                    index.append(position + 1)
            out.append(letters[-1])
            index.append(end - 1)
        cursor = end
    out.append(base[cursor:])
    index.extend(range(cursor, len(base)))
    return "".join(out), index


def _add_decoded_views(
    normalized: NormalizedText, source: str, *, depth: int, budget: list[int]
) -> None:
    """Decode embedded payloads (bounded in count, size, depth and, through `budget`, the
    characters decoded in all) and add their views."""
    tokens = normalized.tokens or word_set(normalized.base)
    for start, end, decoded, name in decoded_segments(source, tokens):
        if budget[0] <= 0:
            return
        decoded = decoded[: min(MAX_DECODED_CHARS, budget[0])]
        budget[0] -= len(decoded)
        folded = fold(decoded)

        def locate_segment(
            _start: int, _end: int, span: tuple[int, int] = (start, end)
        ) -> tuple[int, int] | None:
            return span

        normalized.views.append(View(name, folded, locate_segment, obfuscated=True))
        if depth < MAX_DECODE_DEPTH:
            inner = NormalizedText(original=decoded, base=folded)
            _add_decoded_views(inner, decoded, depth=depth + 1, budget=budget)
            for view in inner.views:
                normalized.views.append(View(view.name, view.text, locate_segment, obfuscated=True))


def _fold_char(char: str) -> str:
    folded = _FOLD_CACHE.get(char)
    if folded is not None:
        return folded
    code = ord(char)
    if 0xE0020 <= code <= 0xE007E:
        # Unicode tag characters smuggle ASCII invisibly: read them as the ASCII they hide.
        folded = chr(code - 0xE0000).lower()
        _HIDDEN.add(char)
    elif char in _HANGUL_FILLERS:
        folded = " "
    elif unicodedata.category(char) == "Cf" or 0xFE00 <= code <= 0xFE0F:
        folded = ""
        if char != "\u200d":  # the joiner inside emoji sequences is not an evasion
            _HIDDEN.add(char)
    else:
        decomposed = unicodedata.normalize("NFKD", char)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded = folded.lower().translate(_LATIN_EXTRA)
        if folded.isspace():
            folded = " "
        elif folded.isascii() and folded.isalnum() and _disguised_latin(code):
            _HIDDEN.add(char)
    if len(_FOLD_CACHE) < _FOLD_CACHE_LIMIT:
        _FOLD_CACHE[char] = folded
    return folded


def _disguised_latin(code: int) -> bool:
    """Full-width, mathematical, circled, small-capital or IPA lookalikes of Latin letters."""
    return (
        0xFF01 <= code <= 0xFF5E
        or 0x1D400 <= code <= 0x1D7FF
        or 0x2460 <= code <= 0x24FF
        or 0x1F130 <= code <= 0x1F189
        or 0x1D00 <= code <= 0x1D2B
        or 0x0250 <= code <= 0x02AF
    )


# What each ASCII character folds to: the part of every fold table that is the same.
_ASCII_FOLDS: Final = {code: _fold_char(chr(code)) for code in range(128)}


def _confusables(folded: str) -> str:
    """Map Cyrillic and Greek lookalikes to Latin where the writing is really Latin."""
    if _CONFUSABLE_CHARS.isdisjoint(folded):
        return folded
    counts = Counter(folded)
    latin = sum(count for char, count in counts.items() if "a" <= char <= "z")
    other = sum(count for char, count in counts.items() if char.isalpha() and not char.isascii())
    if latin > 2 * other:
        return folded.translate(_CONFUSABLES)
    # Mostly non-Latin writing: fold only words that mix scripts, keep real Russian or Greek.
    # Words repeat, so each distinct one is judged once.
    judged: dict[str, str] = {}

    def fold_word(word: re.Match[str]) -> str:
        text = word.group()
        folded_word = judged.get(text)
        if folded_word is None:
            mixed = _LATIN_LETTER.search(text) is not None and not _CONFUSABLE_CHARS.isdisjoint(
                text
            )
            folded_word = judged[text] = text.translate(_CONFUSABLES) if mixed else text
        return folded_word

    return _WORD.sub(fold_word, folded)


def compact_pattern(pattern: str) -> str:
    """The variant of a pattern for the despaced view, where word gaps may have vanished.

    Lookbehinds must keep a fixed width, so a pattern with one keeps its literal spaces.
    """
    loosened = pattern.replace(r"\s+", r"\s*").replace(r"\b", "")
    return loosened if "(?<" in pattern else loosened.replace(" ", r"\s*")
