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
from typing import Final

_MAX_WORD_CHARS: Final = 100
_CONTINUATION: Final = "##"


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


def basic_words(text: str) -> list[str]:
    """Lowercased, accent-free words and punctuation marks, in order."""
    cleaned: list[str] = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD:
            continue
        category = unicodedata.category(char)
        if char in "\t\n\r" or category == "Zs":
            cleaned.append(" ")
        elif category.startswith("C"):
            continue
        elif _is_cjk(code):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    words: list[str] = []
    for token in "".join(cleaned).lower().split():
        decomposed = unicodedata.normalize("NFD", token)
        token = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        start = 0
        for index, char in enumerate(token):
            if _is_punctuation(char):
                if index > start:
                    words.append(token[start:index])
                words.append(char)
                start = index + 1
        if start < len(token):
            words.append(token[start:])
    return words


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
