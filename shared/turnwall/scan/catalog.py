"""The signature catalog: data files in `signatures/`, loaded once per process.

A signature is a few regular expressions over a normalized view of the text (or, for
case-sensitive secrets, over the raw text), or the name of a detector in code. Every
pattern of a direction goes into one `Prefilter`, so a scan looks up the words of a text
once and runs only the patterns whose required words are all there.

Loading is cheap because the costly parts were done ahead, by `make index`:
`signatures/compiled-catalog.json` holds every signature as compiled from the YAML files
(with their digest: edited files are compiled again), and `signatures/prefilter-index.json`
each pattern's prefilter analysis and its proof of a bounded reach
(`turnwall.scan.reach`). A pattern is compiled the first time a text needs it, so a cold
start compiles almost nothing.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from turnwall.errors import ConfigurationError
from turnwall.scan.models import CATEGORIES, Category, Direction
from turnwall.scan.normalize import Sentences, chunk, compact_pattern, fold, word_set
from turnwall.scan.prefilter import PREFIX_CHARS, Analysis, Prefilter, analyse, needles
from turnwall.scan.reach import LOOKBEHIND_CHARS, MAX_REACH, bound_repeats, lookbehind, reach

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from turnwall.scan.normalize import Chunk

Kind = Literal["pattern", "topic", "contested", "detector"]
# Kinds that only describe what a turn is about: capped in scoring, remembered by sessions.
TOPICAL: Final = frozenset({"topic", "contested"})
Action = Literal["flag", "block"]
DETECTORS: Final = frozenset(
    {"repetition_flood", "payment_card", "prompt_secret", "prompt_overlap", "obfuscation"}
)
_GLOBAL_FLAGS = re.compile(r"^\(\?([imsx]+)\)")
# Negated classes that exclude "." stop at a sentence end: they keep a match inside one.
_SENTENCE_GAP = re.compile(r"\[\^(?:[^\]\\]|\\.)*\.(?:[^\]\\]|\\.)*\]")
_MAX_WIDTH: Final = 400
# Prefilter analyses of the shipped patterns, precomputed: parsing every pattern again
# is half of what compiling the catalog costs a cold start.
INDEX_FILE: Final = "prefilter-index.json"
# The YAML files compiled: what a cold start loads instead of parsing them.
COMPILED_FILE: Final = "compiled-catalog.json"
_QUOTED_DAMPED: Final = frozenset({"injection", "jailbreak", "system_prompt_extraction"})
_FIELDS: Final = frozenset(
    {
        "id",
        "name",
        "category",
        "direction",
        "score",
        "prompt_score",
        "action",
        "kind",
        "patterns",
        "unless",
        "view",
        "requires",
        "detector",
        "damp_quoted",
        "description",
    }
)


class LazyPattern:
    """A regular expression compiled on first use, with the methods the engine calls.

    `search`, `match` and `finditer` are the compiled pattern's own bound methods, set
    when first asked for: loading costs nothing per pattern, and a warm scan pays no
    indirection for the laziness.
    """

    __slots__ = ("_compiled", "finditer", "match", "pattern", "search")
    search: Callable[..., re.Match[str] | None]
    match: Callable[..., re.Match[str] | None]
    finditer: Callable[..., Iterator[re.Match[str]]]

    def __init__(self, pattern: str, compiled: re.Pattern[str] | None = None) -> None:
        self.pattern = pattern
        self._compiled = compiled
        if compiled is not None:
            self._bind(compiled)

    def __getattr__(self, name: str) -> Any:
        # Only reached while a slot is unset, i.e. before the first use.
        if name not in ("search", "match", "finditer"):
            raise AttributeError(name)
        return getattr(self._bind(self.compiled), name)

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def _bind(self, compiled: re.Pattern[str]) -> LazyPattern:
        self.search, self.match, self.finditer = compiled.search, compiled.match, compiled.finditer
        return self

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r})"


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
    # Some start is a short, frequent word: jumping from one to the next saves nothing.
    common_start: bool = False
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

    def search(self, text: str, start: int, end: int) -> re.Match[str] | None:
        """The leftmost match in `text[start:end]`, trying only where one could begin."""
        if self.starts is None or self.common_start:
            return self.pattern.search(text, start, end)
        best: re.Match[str] | None = None
        for word in self.starts:
            position = text.find(word, start, end)
            while position >= 0 and (best is None or position < best.start()):
                found = self.pattern.match(text, position, end)
                if found is not None:
                    best = found
                    break
                position = text.find(word, position + 1, end)
        return best


@dataclass(frozen=True, slots=True)
class _Index:
    rules: tuple[Rule, ...]
    prefilter: Prefilter  # numbers `rules` in order


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
        self._needles: dict[str, tuple[frozenset[str], bool] | None] = {}
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
    ) -> list[tuple[Rule, int, int]]:
        """Which rules to search, and where: `(rule, start, end)` ranges of `text`.

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
        searches: list[tuple[Rule, int, int]] = []
        words = sentences.words
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
                    searches.append((in_sentences.rules[number], start, end))
            words = frozenset().union(*every_word)
        else:
            ready_anywhere, useful = in_sentences.prefilter.gate(words)
            if ready_anywhere:
                for start, end, chunk_words in sentences.changed:
                    present = chunk_words & useful
                    if present:
                        for number in in_sentences.prefilter.ready(present):
                            searches.append((in_sentences.rules[number], start, end))
        ascii_text = text.isascii()
        ready, useful = texts.prefilter.gate(words)
        ready = [number for number in ready if not (ascii_text and texts.rules[number].non_ascii)]
        if ready and not run_together:
            windows = _windows(
                texts.prefilter, ready, texts.rules, sentences.chunks, len(text), useful
            )
            for number in ready:
                searches.extend((texts.rules[number], start, end) for start, end in windows[number])
        else:
            searches.extend((texts.rules[number], 0, len(text)) for number in ready)
        for number in texts.prefilter.always:
            rule = texts.rules[number]
            if not (ascii_text and rule.non_ascii):
                searches.append((rule, 0, len(text)))
        return searches

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
        `prefilter.needles`): a raw-view pattern, which no word gates, is then skipped."""
        if pattern.pattern not in self._needles:
            self._needles[pattern.pattern] = needles(pattern.pattern)
        gate = self._needles[pattern.pattern]
        if gate is None:
            return True
        strings, lowered = gate
        if lowered:
            if not text.isascii():
                return True  # case folding beyond ASCII (the long s, Kelvin) defeats .lower()
            text = text.lower()
        return any(string in text for string in strings)

    def detectors(self, direction: Direction) -> tuple[Signature, ...]:
        """Signatures backed by code in `turnwall.scan.detectors` rather than patterns."""
        return self._directions[direction].detectors


def _index(signatures: list[Signature]) -> _Direction:
    rules: list[Rule] = []
    requirements: list[list[frozenset[str]]] = []
    for sig in signatures:
        if sig.kind == "detector" or sig.raw:
            continue
        parts: list[tuple[LazyPattern, LazyPattern | None, str]] = []
        for pattern, compact, source in zip(sig.patterns, sig.compacts, sig.sources, strict=True):
            pieces = _word_list_entries(source)
            if pieces is None:
                parts.append((pattern, compact, source))
                continue
            # One rule per word list entry: each runs only when its own words are there.
            for piece, compact_piece in pieces:
                parts.append(
                    (
                        _compile(sig.id, piece),
                        None if compact_piece is None else _compile(sig.id, compact_piece),
                        piece,
                    )
                )
        for pattern, compact, source in parts:
            analysis = shipped_analyses().get(_index_key(source)) or analyse(source)
            groups, starts, width = analysis.groups, analysis.starts, analysis.width
            rules.append(
                Rule(
                    sig,
                    pattern,
                    compact,
                    non_ascii=not groups and not source.isascii(),
                    starts=None if starts is None else tuple(sorted(starts)),
                    common_start=starts is not None and min(map(len, starts)) < 4,
                    width=width if width is not None and width <= _MAX_WIDTH else None,
                    bounded=_sentence_bounded(source),
                    groups=len(groups),
                    reach=_reach_of(source),
                    in_sentences=_sentence_bounded(source) and bool(groups),
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
    )


def _windows(
    prefilter: Prefilter,
    ready: list[int],
    rules: tuple[Rule, ...],
    chunks: list[Chunk],
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
    wanted = set(ready)
    found: dict[int, list[tuple[int, int]]] = {number: [] for number in ready}
    for index, (_, _, words) in enumerate(chunks):
        present = words & useful
        if not present:
            continue
        for number, bits in prefilter.satisfied(present).items():
            if number in wanted:
                found[number].append((index, bits))
    windows: dict[int, list[tuple[int, int]]] = {}
    for number, hits in found.items():
        rule = rules[number]
        full = prefilter.full(number)
        ranges: list[tuple[int, int]] = []
        first = last = -1
        bits = 0
        for index, hit in [*hits, (-1, 0)]:
            if index >= 0 and last >= 0 and chunks[index][0] - chunks[last][1] < rule.reach:
                last, bits = index, bits | hit
                continue
            if last >= 0 and bits == full:
                start = max(0, chunks[first][0] - rule.reach)
                ranges.append((start, min(size, chunks[last][1] + rule.reach)))
            first = last = index
            bits = hit
        windows[number] = ranges
    return windows


def _word_list_entries(source: str) -> list[tuple[str, str | None]] | None:
    """The entries of a top-level word list with their despaced variants (shipped in
    the compiled catalog), or None when `source` is not one."""
    shipped = _shipped_file(COMPILED_FILE).get("splits", {})
    if source in shipped:
        entries = shipped[source]
        return None if entries is None else [(piece, compact) for piece, compact in entries]
    return _split(source)


def _split(source: str) -> list[tuple[str, str | None]] | None:
    pieces = _alternatives(source)
    if len(pieces) == 1:
        return None
    entries: list[tuple[str, str | None]] = []
    for piece in pieces:
        compact = _compact(source, piece)
        entries.append((piece, None if compact is None else compact.pattern))
    return entries


def rule_sources(signatures: Iterable[Signature]) -> list[str]:
    """The source of every rule the prefilter indexes (word lists split per entry)."""
    return [
        piece
        for sig in signatures
        if sig.kind != "detector" and not sig.raw
        for source in sig.sources
        for piece in _alternatives(source)
    ]


def _index_key(source: str) -> str:
    return hashlib.blake2b(source.encode("utf-8"), digest_size=10).hexdigest()


def _shipped_index() -> dict[str, Any]:
    return _shipped_file(INDEX_FILE)


@functools.cache
def _shipped_file(name: str) -> dict[str, Any]:
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


def prefilter_index(signatures: Iterable[Signature]) -> dict[str, Any]:
    """The content of `signatures/prefilter-index.json` for these signatures: the
    prefilter analysis of every rule, and the reach of every pattern that is compiled."""
    signatures = list(signatures)
    patterns: dict[str, Any] = {}
    for source in rule_sources(signatures):
        analysis = analyse(source)
        patterns[_index_key(source)] = [
            sorted(sorted(group) for group in analysis.groups),
            None if analysis.starts is None else sorted(analysis.starts),
            analysis.width,
        ]
    reaches: dict[str, int | None] = {}
    for source in compiled_sources(signatures):
        reaches[_index_key(source)] = reach(source)
    return {
        "version": 2,
        "patterns": dict(sorted(patterns.items())),
        "reach": dict(sorted(reaches.items())),
    }


def compiled_sources(signatures: Iterable[Signature]) -> list[str]:
    """The source of every pattern the catalog compiles: patterns, their word-list
    entries, despaced variants and exceptions."""
    sources: list[str] = []
    for sig in signatures:
        sources.extend(pattern.pattern for pattern in sig.patterns)
        sources.extend(compact.pattern for compact in sig.compacts if compact is not None)
        if sig.unless is not None:
            sources.append(sig.unless.pattern)
    for piece in rule_sources(signatures):
        sources.append(piece)
        compact = _compact("", piece)
        if compact is not None:
            sources.append(compact.pattern)
    return sources


@functools.cache
def shipped_reaches() -> dict[str, int | None]:
    """The reach of every shipped pattern, proven by `make index` (see `reach.reach`)."""
    return cast("dict[str, int | None]", _shipped_index().get("reach", {}))


def _alternatives(source: str) -> list[str]:
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


def _sentence_bounded(source: str) -> bool:
    """Whether nothing in the pattern can match "." (judged from its text)."""
    stripped = _SENTENCE_GAP.sub("", source)
    for syntax in ("(?<!", "(?<=", "(?!", "(?=", "(?:", "(?i:", "(?m:", "(?s:"):
        stripped = stripped.replace(syntax, "")
    return not any(marker in stripped for marker in (".", "\\W", "\\S", "\\D", "[^"))


@functools.cache
def default_catalog() -> Catalog:
    """The catalog shipped in `turnwall/scan/signatures/`, loaded once per process: from
    `compiled-catalog.json` while it matches the YAML files, else from the files."""
    # Loading allocates tens of thousands of objects and no garbage: the cyclic collector
    # would only walk them again and again, a large share of a cold start's load time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        files = _signature_files()
        shipped = _shipped_file(COMPILED_FILE)
        if shipped.get("version") == 1 and shipped.get("yaml") == _files_digest(files):
            return Catalog(_signature_from_json(entry) for entry in shipped["signatures"])
        return Catalog(compile_entries(_yaml_entries(files)))
    finally:
        if collecting:
            gc.enable()


def _signature_files() -> list[tuple[str, bytes]]:
    folder = resources.files("turnwall.scan").joinpath("signatures")
    return [
        (item.name, item.read_bytes())
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if item.name.endswith((".yaml", ".yml"))
    ]


def _files_digest(files: list[tuple[str, bytes]]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, content in files:
        digest.update(name.encode("utf-8") + b"\0" + content + b"\0")
    return digest.hexdigest()


def _yaml_entries(files: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
    import yaml  # only when the YAML files changed since `make index`

    entries: list[tuple[str, Any]] = []
    for name, content in files:
        document = yaml.safe_load(content.decode("utf-8")) or {}
        if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
            raise ConfigurationError(f"{name}: expected a mapping with a 'signatures' list")
        entries.extend((name, entry) for entry in document["signatures"])
    return entries


def compiled_catalog(signatures: Iterable[Signature], files_digest: str) -> dict[str, Any]:
    """The content of `signatures/compiled-catalog.json` for these signatures."""
    signatures = list(signatures)
    splits: dict[str, list[tuple[str, str | None]] | None] = {}
    for sig in signatures:
        if sig.kind == "detector" or sig.raw:
            continue
        for source in sig.sources:
            splits[source] = _split(source)
    return {
        "version": 1,
        "yaml": files_digest,
        "signatures": [_signature_to_json(sig) for sig in signatures],
        "splits": splits,
    }


def _signature_to_json(sig: Signature) -> dict[str, Any]:
    return {
        "id": sig.id,
        "name": sig.name,
        "category": sig.category,
        "directions": sorted(sig.directions),
        "score": sig.score,
        "action": sig.action,
        "kind": sig.kind,
        "patterns": list(sig.sources),
        "compacts": [None if c is None else c.pattern for c in sig.compacts],
        "unless": None if sig.unless is None else sig.unless.pattern,
        "raw": sig.raw,
        "requires": sorted(sig.requires),
        "detector": sig.detector,
        "damp_quoted": sig.damp_quoted,
        "prompt_score": sig.prompt_score,
    }


def _signature_from_json(entry: dict[str, Any]) -> Signature:
    where = f"{COMPILED_FILE}: {entry['id']}"
    return Signature(
        id=entry["id"],
        name=entry["name"],
        category=entry["category"],
        directions=frozenset(entry["directions"]),
        score=entry["score"],
        action=entry["action"],
        kind=entry["kind"],
        patterns=tuple(_compile(where, source) for source in entry["patterns"]),
        compacts=tuple(
            None if source is None else _compile(where, source) for source in entry["compacts"]
        ),
        unless=None if entry["unless"] is None else _compile(where, entry["unless"]),
        raw=entry["raw"],
        requires=frozenset(entry["requires"]),
        detector=entry["detector"],
        damp_quoted=entry["damp_quoted"],
        prompt_score=entry["prompt_score"],
        sources=tuple(entry["patterns"]),
        topical=entry["kind"] in TOPICAL,
    )


def compile_entries(entries: Iterable[tuple[str, Any]]) -> list[Signature]:
    """Validate and compile raw catalog entries; raises ConfigurationError on bad data."""
    signatures: list[Signature] = []
    seen: set[str] = set()
    for source, entry in entries:
        sig = _compile_entry(source, entry)
        if sig.id in seen:
            raise ConfigurationError(f"{source}: duplicate signature id {sig.id}")
        seen.add(sig.id)
        signatures.append(sig)
    return signatures


def _compile_entry(source: str, entry: Any) -> Signature:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{source}: every signature must be a mapping")
    sig_id = str(entry.get("id", ""))
    where = f"{source}: {sig_id or '<no id>'}"
    unknown = set(entry) - _FIELDS
    if not sig_id or unknown:
        raise ConfigurationError(f"{where}: missing id or unknown fields {sorted(unknown)}")
    category = entry.get("category")
    if category not in CATEGORIES:
        raise ConfigurationError(f"{where}: unknown category {category!r}")
    direction = entry.get("direction", "input")
    if direction not in ("input", "output", "both"):
        raise ConfigurationError(f"{where}: direction must be input, output or both")
    directions: frozenset[Direction] = (
        frozenset({"input", "output"}) if direction == "both" else frozenset({direction})
    )
    score = _score(where, entry.get("score"))
    prompt_score = (
        None if entry.get("prompt_score") is None else _score(where, entry["prompt_score"])
    )
    action = entry.get("action", "flag")
    detector = entry.get("detector")
    kind = entry.get("kind", "detector" if detector is not None else "pattern")
    if action not in ("flag", "block") or kind not in ("pattern", "topic", "contested", "detector"):
        raise ConfigurationError(f"{where}: bad action or kind")
    if (kind == "detector") != (detector is not None) or (
        detector is not None and detector not in DETECTORS
    ):
        raise ConfigurationError(f"{where}: detector must name one of {sorted(DETECTORS)}")
    raw = entry.get("view", "normalized") == "raw"
    sources = [_source(str(pattern), raw=raw) for pattern in _as_list(entry.get("patterns"))]
    if kind != "detector" and not sources:
        raise ConfigurationError(f"{where}: a pattern signature needs patterns")
    requires = frozenset(str(item) for item in _as_list(entry.get("requires")))
    if not requires <= CATEGORIES:
        raise ConfigurationError(f"{where}: requires names an unknown category")
    unless = [_source(str(p), raw=raw) for p in _as_list(entry.get("unless"))]
    return Signature(
        id=sig_id,
        name=str(entry.get("name", sig_id)),
        category=cast("Category", category),
        directions=directions,
        score=score,
        action=action,
        kind=kind,
        patterns=tuple(_compile(where, source) for source in sources),
        compacts=tuple(
            _compact(where, source) if kind == "pattern" and not raw else None for source in sources
        ),
        unless=_compile(where, "|".join(f"(?:{p})" for p in unless)) if unless else None,
        raw=raw,
        requires=requires,
        detector=detector,
        damp_quoted=bool(entry.get("damp_quoted", category in _QUOTED_DAMPED)),
        prompt_score=prompt_score,
        sources=tuple(sources),
        topical=kind in TOPICAL,
    )


def _score(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise ConfigurationError(f"{where}: scores must be numbers in (0, 1]")
    return float(value)


def _source(pattern: str, *, raw: bool) -> str:
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


def _compile(where: str, source: str) -> LazyPattern:
    """A pattern with a proven bounded reach, compiled now or, when the shipped index
    already vouches for it, on first use."""
    key = _index_key(source)
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


def _reach_of(source: str) -> int:
    key = _index_key(source)
    shipped = shipped_reaches()
    found = shipped[key] if key in shipped else reach(source)
    return MAX_REACH if found is None else found


def _compact(where: str, source: str) -> LazyPattern | None:
    """The despaced-view variant; a pattern that cannot be loosened just goes without."""
    try:
        return _compile(where, bound_repeats(compact_pattern(source)))
    except ConfigurationError:
        return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def write_prefilter_index() -> Path:
    """Rewrite `signatures/prefilter-index.json` and `signatures/compiled-catalog.json`
    from the YAML files (`make index`, after editing a signature; unit tests fail while
    either is stale). Returns the folder."""
    files = _signature_files()
    signatures = compile_entries(_yaml_entries(files))
    contents = {
        INDEX_FILE: prefilter_index(signatures),
        COMPILED_FILE: compiled_catalog(signatures, _files_digest(files)),
    }
    folder = resources.files("turnwall.scan").joinpath("signatures")
    with resources.as_file(folder) as path:
        for name, content in contents.items():
            text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
            (path / name).write_text(text + "\n", encoding="utf-8")
        return path


def shipped_catalog_is_current() -> bool:
    """Whether `compiled-catalog.json` is what `make index` would write now."""
    files = _signature_files()
    expected = compiled_catalog(compile_entries(_yaml_entries(files)), _files_digest(files))
    return bool(_shipped_file(COMPILED_FILE) == json.loads(json.dumps(expected)))
