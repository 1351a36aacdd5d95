"""English word lists and phrase patterns, kept as data files beside the signatures.

`signatures/*.txt` hold what the code reads English by: word lists (whitespace-separated
words, `#` comment lines) and `session-cues.txt`, the phrase patterns of the session
rules (one regular expression per `[section]`, its lines joined as they stand; `{{name}}`
stands for section `[name]`, so two cues can share one list). Each file is read once per
process, when first asked for.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Final

from turnwall.errors import ConfigurationError

CUES_FILE: Final = "session-cues.txt"
_SECTION = re.compile(r"^\[([a-z][a-z-]*)\]$")
_REFERENCE = re.compile(r"\{\{([a-z][a-z-]*)\}\}")


def _lines(name: str) -> list[str]:
    text = _file(name).decode("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _file(name: str) -> bytes:
    return resources.files("turnwall.scan").joinpath("signatures", name).read_bytes()


def cues_file() -> bytes:
    """The content of `signatures/session-cues.txt` (the catalog digests it: signatures
    name its phrase lists as exceptions)."""
    return _file(CUES_FILE)


@functools.cache
def words(name: str) -> frozenset[str]:
    """The words of `signatures/<name>.txt`."""
    return frozenset(word for line in _lines(f"{name}.txt") for word in line.split())


@functools.cache
def _cues() -> dict[str, str]:
    cues: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _lines(CUES_FILE):
        section = _SECTION.match(line)
        if section is not None:
            current = cues.setdefault(section.group(1), [])
        elif current is None:
            raise ConfigurationError(f"{CUES_FILE}: a pattern line before any [section]")
        else:
            current.append(line)
    joined = {name: "".join(lines) for name, lines in cues.items()}

    def referenced(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in joined or _REFERENCE.search(joined[name]):
            raise ConfigurationError(
                f"{CUES_FILE}: {found.group(0)} names no section, or one with references"
            )
        return joined[name]

    return {name: _REFERENCE.sub(referenced, text) for name, text in joined.items()}


def cue(name: str) -> str:
    """The phrase pattern of section `[name]` of `signatures/session-cues.txt`."""
    try:
        return _cues()[name]
    except KeyError:
        raise ConfigurationError(f"{CUES_FILE}: no [{name}] section") from None
