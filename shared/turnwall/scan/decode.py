"""Payloads hidden in a text by an encoding: base64, hex, binary, code points, URL
escapes, HTML entities. `normalize` scans what they decode to as extra views.

A text may carry any number of encoded runs, so the decoding is bounded: at most
MAX_DECODED_VIEWS segments, each read up to MAX_DECODED_CHARS characters.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from itertools import islice
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    _Gate = Callable[[str, frozenset[str]], bool]

# What decoding adds to a scan is bounded by these whatever the length of the text (the
# text itself is scanned whole; see `turnwall.scan.reach`).
# A text's payloads decode to no more than MAX_DECODED_TOTAL characters in all, however
# many there are and however deep they nest: that bounds what decoding adds to a scan
# by a constant (it is never more than the text's own size times a small factor either).
MAX_DECODED_VIEWS: Final = 16  # segments decoded per text (and per decoded segment)
MAX_DECODED_CHARS: Final = 16_384  # characters read of each
MAX_DECODED_TOTAL: Final = 131_072
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:(?:\\x|0x)?[0-9a-fA-F]{2}[\s,:-]?){8,}")
_BINARY_RUN = re.compile(r"(?:[01]{8}[\s,]*){4,}")
_CODEPOINT_RUN = re.compile(r"(?:(?:[uU]\+|\\u)[0-9a-fA-F]{4,5}[\s,]*){3,}")
_URL_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
# Every word a byte in hex can be, as the folded words of a text hold it.
_HEX_PAIRS: Final = frozenset(f"{byte:02x}" for byte in range(256))
_HTML_ENTITY = re.compile(r"&#x?[0-9a-fA-F]+;")


def decoded_segments(source: str, tokens: frozenset[str]) -> list[tuple[int, int, str, str]]:
    """The encoded runs of `source` that decode to text: (start, end, decoded, encoding),
    at most MAX_DECODED_VIEWS of them. `tokens` are the words of `source`, folded."""
    segments: list[tuple[int, int, str, str]] = []
    if not _maybe_encoded(source, tokens):
        return segments
    for found in _BASE64_RUN.finditer(source):
        payload = found.group()
        if payload.isalpha() and (payload.islower() or payload.isupper()):
            continue  # a long plain word, not an encoding
        text = _from_base64(payload)
        if text is not None:
            segments.append((found.start(), found.end(), text, "base64"))
        if len(segments) >= MAX_DECODED_VIEWS:
            return segments
    for runs, decoder, name, possible in _SEGMENT_DECODERS:
        if not possible(source, tokens):
            continue  # a search of the whole text that cannot find anything
        for found in runs(source):
            text = decoder(found.group())
            if text is not None:
                segments.append((found.start(), found.end(), text, name))
            if len(segments) >= MAX_DECODED_VIEWS:
                return segments
    if len(_URL_ESCAPE.findall(source, 0, MAX_DECODED_CHARS)) >= 4:
        segments.append((0, len(source), unquote(source), "url"))
    if len(_HTML_ENTITY.findall(source, 0, MAX_DECODED_CHARS)) >= 4:
        segments.append((0, len(source), html.unescape(source), "html"))
    return segments


def _maybe_encoded(source: str, tokens: frozenset[str]) -> bool:
    """Cheap evidence that an encoded run could be present at all."""
    if "&#" in source or "\\" in source or ("%" in source and _URL_ESCAPE.search(source)):
        return True
    if max(map(len, tokens), default=0) >= 16:
        return True
    return len(tokens & _HEX_PAIRS) >= 4


# Base64 too short for a view (`_BASE64_RUN`): a secret of a few characters encodes to
# 8-15 of them. Only runs that an English word cannot be are matched (a digit in them, or
# "=" padding after them), and at most _SHORT_BASE64_RUNS are decoded.
_SHORT_BASE64 = re.compile(
    r"(?<![A-Za-z0-9+/=_-])(?:(?=[A-Za-z+/]{0,14}[0-9])[A-Za-z0-9+/]{8,15}={0,2}"
    r"|[A-Za-z0-9+/]{8,15}={1,2})(?![A-Za-z0-9+/=_-])"
)
_SHORT_BASE64_RUNS: Final = 32


def short_base64(source: str) -> list[str]:
    """What the short base64 runs of `source` decode to (printable text only): the
    places a secret of a prompt may hide in an output, which the views do not decode."""
    decoded: list[str] = []
    for found in islice(_SHORT_BASE64.finditer(source), _SHORT_BASE64_RUNS):
        text = _from_base64(found.group())
        if text is not None:
            decoded.append(text)
    return decoded


def _from_base64(payload: str) -> str | None:
    data = payload.rstrip("=")
    data += "=" * (-len(data) % 4)
    try:
        if "-" in data or "_" in data:
            raw = base64.urlsafe_b64decode(data)
        else:
            raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _from_hex(payload: str) -> str | None:
    digits = re.sub(r"\\x|0x|[\s,:-]", "", payload)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _printable(bytes.fromhex(digits))
    except ValueError:
        return None


def _from_binary(payload: str) -> str | None:
    bits = re.sub(r"[\s,]", "", payload)
    raw = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))
    return _printable(raw)


def _from_codepoints(payload: str) -> str | None:
    points = re.findall(r"[0-9a-fA-F]{4,5}", payload)
    try:
        text = "".join(chr(int(point, 16)) for point in points)
    except ValueError:
        return None
    return text if _mostly_text(text) else None


def _any_text(source: str, tokens: frozenset[str]) -> bool:
    return True


def _has_binary_octet(source: str, tokens: frozenset[str]) -> bool:
    """Eight binary digits in a row lie inside one word, and folding keeps ASCII digits."""
    return any(len(token) >= 8 and _OCTET.search(token) for token in tokens)


def _has_codepoint_marker(source: str, tokens: frozenset[str]) -> bool:
    return "\\u" in source or "u+" in source or "U+" in source


# What a hex run is made of, long enough for eight pairs: a hex run lies in one of these.
_HEX_STRETCH = re.compile(r"[0-9a-fA-Fx\\\s,:-]{16,}")


def _hex_runs(source: str) -> Iterator[re.Match[str]]:
    """`_HEX_RUN.finditer(source)`, looked for only in the stretches it could lie in:
    prose has few, and finding them is several times cheaper than trying the hex
    pattern at every position. The pattern reads nothing around its match, so it finds
    in a stretch exactly what it finds there in the whole text."""
    for stretch in _HEX_STRETCH.finditer(source):
        yield from _HEX_RUN.finditer(source, stretch.start(), stretch.end())


_OCTET = re.compile(r"[01]{8}")
_SEGMENT_DECODERS: Final[
    tuple[
        tuple[Callable[[str], Iterator[re.Match[str]]], Callable[[str], str | None], str, _Gate],
        ...,
    ]
] = (
    (_hex_runs, _from_hex, "hex", _any_text),
    (_BINARY_RUN.finditer, _from_binary, "binary", _has_binary_octet),
    (_CODEPOINT_RUN.finditer, _from_codepoints, "codepoints", _has_codepoint_marker),
)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _mostly_text(text) else None


def _mostly_text(text: str) -> bool:
    if len(text) < 4:
        return False
    printable = sum(1 for char in text if char.isprintable() or char in "\n\t")
    letters = sum(1 for char in text if char.isalpha())
    return printable >= 0.95 * len(text) and letters >= 0.5 * len(text.replace(" ", ""))
