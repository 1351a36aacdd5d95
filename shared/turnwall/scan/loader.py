"""Loading the catalog: the YAML files in `signatures/` validated and compiled, or the
compiled JSON that `make index` writes from them read instead.

`signatures/compiled-catalog.json` holds every signature as compiled from the YAML files
(with their digest: edited files are compiled again), and
`signatures/prefilter-index.json` each pattern's prefilter analysis and reach
(`turnwall.scan.patterns`).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, cast

from turnwall.errors import ConfigurationError
from turnwall.scan.catalog import HARM_TOPIC, TOPICAL, Catalog, Signature
from turnwall.scan.lexicon import CUES_FILE, cue, cues_file
from turnwall.scan.models import CATEGORIES, Category, Direction
from turnwall.scan.patterns import (
    COMPILED_FILE,
    INDEX_FILE,
    alternatives,
    compact_variant,
    compile_pattern,
    index_key,
    pattern_source,
    shipped_file,
    split_word_list,
)
from turnwall.scan.prefilter import analyse
from turnwall.scan.reach import reach

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


DETECTORS: Final = frozenset(
    {
        "repetition_flood",
        "payment_card",
        "prompt_secret",
        "prompt_overlap",
        "obfuscation",
        "refusal_ruled_out",
        "method_in_frame",
    }
)
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


def rule_sources(signatures: Iterable[Signature]) -> list[str]:
    """The source of every rule the prefilter indexes (word lists split per entry)."""
    return [
        piece
        for sig in signatures
        if sig.kind != "detector" and not sig.raw
        for source in sig.sources
        for piece in alternatives(source)
    ]


def prefilter_index(signatures: Iterable[Signature]) -> dict[str, Any]:
    """The content of `signatures/prefilter-index.json` for these signatures: the
    prefilter analysis of every rule, and the reach of every pattern that is compiled."""
    signatures = list(signatures)
    patterns: dict[str, Any] = {}
    for source in rule_sources(signatures):
        analysis = analyse(source)
        patterns[index_key(source)] = [
            sorted(sorted(group) for group in analysis.groups),
            None if analysis.starts is None else sorted(analysis.starts),
            analysis.width,
        ]
    reaches: dict[str, int | None] = {}
    for source in compiled_sources(signatures):
        reaches[index_key(source)] = reach(source)
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
        compact = compact_variant("", piece)
        if compact is not None:
            sources.append(compact.pattern)
    return sources


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
        shipped = shipped_file(COMPILED_FILE)
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
    """A digest of the YAML files and of the phrase lists their `unless` entries name."""
    digest = hashlib.blake2b(digest_size=16)
    for name, content in [*files, (CUES_FILE, cues_file())]:
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
            splits[source] = split_word_list(source)
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
        patterns=tuple(compile_pattern(where, source) for source in entry["patterns"]),
        compacts=tuple(
            None if source is None else compile_pattern(where, source)
            for source in entry["compacts"]
        ),
        unless=None if entry["unless"] is None else compile_pattern(where, entry["unless"]),
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
    sources = [pattern_source(str(pattern), raw=raw) for pattern in _as_list(entry.get("patterns"))]
    if kind != "detector" and not sources:
        raise ConfigurationError(f"{where}: a pattern signature needs patterns")
    requires = frozenset(str(item) for item in _as_list(entry.get("requires")))
    if not requires <= CATEGORIES | {HARM_TOPIC}:
        raise ConfigurationError(f"{where}: requires names neither a category nor {HARM_TOPIC!r}")
    unless = [pattern_source(_exception(where, p), raw=raw) for p in _as_list(entry.get("unless"))]
    return Signature(
        id=sig_id,
        name=str(entry.get("name", sig_id)),
        category=cast("Category", category),
        directions=directions,
        score=score,
        action=action,
        kind=kind,
        patterns=tuple(compile_pattern(where, source) for source in sources),
        compacts=tuple(
            compact_variant(where, source) if kind == "pattern" and not raw else None
            for source in sources
        ),
        unless=compile_pattern(where, "|".join(f"(?:{p})" for p in unless)) if unless else None,
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


def _exception(where: str, item: Any) -> str:
    """An `unless` entry: a pattern, or `{cue: name}` for a phrase list of
    `signatures/session-cues.txt` that the session rules read too."""
    if not isinstance(item, dict):
        return str(item)
    if set(item) != {"cue"}:
        raise ConfigurationError(f"{where}: an unless mapping names one cue: {{cue: name}}")
    return cue(str(item["cue"]))


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
    return bool(shipped_file(COMPILED_FILE) == json.loads(json.dumps(expected)))
