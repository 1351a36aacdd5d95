"""BERT-style uncased WordPiece tokenization, in pure Python.

The static embeddings were distilled from an uncased BERT-family model, so text must be
split exactly as that model's tokenizer splits it: control characters dropped, CJK
ideographs and punctuation made separate words, lowercased with accents stripped, then
each word matched greedily against the vocabulary, longest prefix first, with `##`
marking a piece that continues a word. A word with no full match is unknown: the static
tier drops it, like the distillation tool; the contextual tier's transformer reads an
[UNK] in its place, as its own tokenizer writes.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

_MAX_WORD_CHARS: Final = 100
_CONTINUATION: Final = "##"
_TABLE_SIZE: Final = 65_536


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    # ASCII symbols count as punctuation for BERT even where Unicode says otherwise ($, ^).
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B81F
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _cleaned(char: str) -> str | None:
    """Control characters dropped, whitespace a space, a CJK ideograph a word of its own."""
    code = ord(char)
    category = unicodedata.category(char)
    if code == 0 or code == 0xFFFD:
        return None
    if char in "\t\n\r" or category == "Zs":
        return " "
    if category.startswith("C"):
        return None
    return f" {char} " if _is_cjk(code) else char


def _unaccented(char: str) -> str | None:
    return None if unicodedata.category(char) == "Mn" else char


def _spaced(char: str) -> str:
    return f" {char} " if _is_punctuation(char) else char


class _Table(dict[int, str | None]):
    """A `str.translate` table that asks `rule` about each character on first sight, so
    a text is mapped at C speed instead of a Python call per character. At most
    _TABLE_SIZE characters are remembered; the rest are asked each time."""

    def __init__(self, rule: Callable[[str], str | None]) -> None:
        super().__init__()
        self._rule = rule

    def __missing__(self, code: int) -> str | None:
        value = self._rule(chr(code))
        if len(self) < _TABLE_SIZE:
            self[code] = value
        return value


_CLEAN: Final = _Table(_cleaned)
_UNACCENT: Final = _Table(_unaccented)
_SPACE_PUNCTUATION: Final = _Table(_spaced)


def basic_words(text: str) -> list[str]:
    """Lowercased, accent-free words and punctuation marks, in order.

    Each step maps the whole text, which splits as BERT's basic tokenizer splits word by
    word: whitespace is never decomposed or lowercased into being, and canonical
    decomposition does not reorder marks across it."""
    lowered = text.translate(_CLEAN).lower()
    if not lowered.isascii():
        lowered = unicodedata.normalize("NFD", lowered).translate(_UNACCENT)
    return lowered.translate(_SPACE_PUNCTUATION).split()


class WordPiece:
    """Greedy longest-match-first WordPiece over a fixed vocabulary."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary
        self._cache: dict[str, tuple[int, ...]] = {}

    def ids(self, text: str, limit: int, unknown: int | None = None) -> list[int]:
        """Token ids of `text`, at most `limit` of them; an unknown word is dropped, or
        written as `unknown` when that is given."""
        out: list[int] = []
        for word in basic_words(text):
            pieces = self._cache.get(word)
            if pieces is None:
                pieces = self._split(word)
                if len(self._cache) < 50_000:
                    self._cache[word] = pieces
            if not pieces and unknown is not None:
                pieces = (unknown,)
            out.extend(pieces)
            if len(out) >= limit:
                return out[:limit]
        return out

    def _split(self, word: str) -> tuple[int, ...]:
        if len(word) > _MAX_WORD_CHARS:
            return ()
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else _CONTINUATION + word[start:end]
                found = self.vocabulary.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return ()
            pieces.append(found)
            start = end
        return tuple(pieces)
