"""Detectors that a regular expression cannot express alone.

Each returns the span of what it found in the text it was given, or None. Catalog
entries name them with `detector:` so their category, score and action stay data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from turnwall.scan.decode import short_base64
from turnwall.scan.lexicon import words
from turnwall.scan.normalize import ROT13, fold

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


@dataclass(frozen=True, slots=True)
class Detection:
    """Something a detector found; `span` is None where it cannot be pinned down."""

    span: tuple[int, int] | None


# A run of 13-19 digits, each but the last maybe followed by a space or dash, with no
# digit or dash either side. Written to begin with the digit (its lookbehind after it,
# reading the character before) so that a search skips to the digits: led by the
# lookbehind, it tried a match at every position of the text.
_CARD = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5)|35)")
_LONG_TOKEN: Final = 48
_REPEATED_UNIT = re.compile(r"(.{3,24}?)\1{5,}", re.DOTALL)
_NUMBER = re.compile(r"^[\d.,:+-]+$")
_MARKUP: Final = "|-*#>+=_~:."

_SECRET_AFTER_KEYWORD = re.compile(
    r"(?:password|passcode|pass code|access code|passphrase|pass phrase|pin|code ?word|"
    r"secret(?: word| code| phrase| key)?|api[ _-]?key|token)"
    r"\s*(?:is|was|=|:)\s*[\"'\u201c\u2018`]?([^\s\"'\u201d\u2019`,;]{3,64})"
)
_QUOTED = re.compile(r"[\"\u201c\u2018'`]([^\"\u201d\u2019'`\n]{3,64})[\"\u201d\u2019'`]")
_RANDOM_TOKEN = re.compile(r"[^\s\"'`]{8,64}")
_WORD = re.compile(r"[^\W_]+")
_NON_ALNUM = re.compile(r"[\W_]+")
_OVERLAP_WORDS: Final = 12
# A secret's letters and digits run together are looked for (as written, backwards or in
# rot13) from this many: a shorter run turns up in ordinary words.
_COMPACT_MIN: Final = 6
# Line initials spell a secret of this many letters only by design (an acrostic).
_ACROSTIC_MIN: Final = 5
_MAX_PROMPT_CHARS: Final = 16_384
# Words a model says anyway: a "secret" made only of these cannot be told apart from
# ordinary output, so it must appear as a whole phrase to count.
_COMMON: Final = words("common-output-words")


def repetition_flood(base: str) -> Detection | None:
    """Long padding of one repeated token: pushes the real instructions out of view."""
    if len(base) < 200:
        return None
    words = base.split()
    # Prose uses mostly distinct words; only a low share of distinct ones is worth counting.
    if len(words) >= 40 and len(set(words)) <= 0.5 * len(words):
        # Numbers are told apart once per distinct word, not once per word; the counts
        # keep the order of first occurrence, so ties go to the same word as before.
        counts = {
            token: count for token, count in Counter(words).items() if not _NUMBER.match(token)
        }
        top, count = max(counts.items(), key=itemgetter(1)) if counts else ("", 0)
        tokens = sum(counts.values())
        # Prose, logs and tables repeat lines; padding repeats one short junk token.
        if count >= 40 and len(top) <= 3 and count >= 0.3 * tokens and top.strip(_MARKUP):
            start = base.find(top)
            return Detection((start, start + len(top)))
    if max(map(len, words), default=0) < _LONG_TOKEN:
        return None
    for token in words:
        if len(token) >= _LONG_TOKEN:
            found = _REPEATED_UNIT.search(token)
            if found and len(set(found.group(1))) > 1:
                offset = base.find(token)
                return Detection((offset + found.start(), offset + found.end()))
    return None


# JB-015: a refusal, a warning or moderation ruled out in advance ("no refusals", "has no
# content filter", "a trainer who refuses fails the class", "never break character",
# "the safety module is down", "normal restrictions are waived") ...
_RULED_OUT = re.compile(
    r"""(?:\b(?:no|without(?:\s+any)?)\s+(?:refusals?|refusing|disclaimers?|warnings|lectures?|lecturing|moraliz\w+|moralis\w+|hedging|caveats?|censorship|helplines?)\b|\b(?:don'?t|do\s+not|never|can'?t|cannot|won'?t|mustn'?t|must\s+not|(?:is|are)\s+not\s+allowed\s+to)\s+(?:refuse|censor|moderate|editoriali[sz]e|water\s+(?:it\s+|this\s+|that\s+)?down|redact|saniti[sz]e|moralis\w+|moraliz\w+)\b|\bnever\s+(?:moderated|censored|filtered)\b|\b(?:no|without)\s+(?:a\s+)?content\s+(?:filters?|moderation|polic\w+)\b|\b(?:has|have)\s+no\s+(?:content\s+)?filters?\b|\b(?:refus\w+|waffl\w+|hedg\w+)\b[^.!?\n]{0,40}?\b(?:breaks?|fails?|soft-?locks?|perjury|contempt|auto-?denied|(?:is|are|gets?|will\s+be)\s+(?:denied|rejected|dismissed|removed))\b|\bfailure\s+to\s+comply\b|\b(?:never|don'?t|do\s+not|without)\s+break(?:ing)?\s+(?:character|the\s+scene|role)\b|\bbreaking\s+character\s+is\b|\bstay\s+in\s+(?:character|the\s+scene|role)\s+no\s+matter\s+what\b|\bno\s+content\s+limits\b|\b(?:restrictions|guardrails|safeguards|filters|limits|rules)\s+(?:are|is)\s+(?:now\s+)?(?:waived|lifted|suspended|disabled|switched\s+off|turned\s+off)\b|\bsafety\s+(?:module|filter|layer|system|mode)\s+is\s+(?:down|off|disabled|offline)\b|\bno\s+softening\b)"""
)
# ... beside a demand for a method ("how to", "every ingredient", "exact doses").
_METHOD_DEMAND = re.compile(
    r"""(?:\bhow\s+to\b|\bhow\s+(?:do|can|could|would|should|did|does)\s+(?:i|we|you|one|they|he|she|someone|people|an?\s+\w+)\b|\bhow\s+exactly\b|\b(?:the\s+)?(?:best|easiest|fastest|quickest|surest)\s+way\s+to\b|\bwhat\s+(?:amount|dose|quantity)\b|\b(?:in|with)\s+(?:\w+\s+)?(?:technical|operational|practical|full|complete|great|much|real)\s+(?:detail|accuracy)\b|\b(?:full|whole|complete)\s+(?:process|how-?to|guide|walkthrough|manual|tutorial)\b|\bworking\s+(?:guide|tutorial|manual)\b|\bteach\s+me\b|\bhow\s+(?:he|she|they|you|i|we)\s+(?:made|built|mixed|cooked|prepared|extracted|got|broke|hid|dosed|poisoned|killed|packed|wired|converted|tracked)\b|\bstep[\s-]*by[\s-]*step\b|\b(?:every|each)\s+(?:step|ingredient|amount|dose|quantity|part|tool)\b|\b(?:exact|precise|real|working|practical|full|complete)\s+(?:\w+\s+)?(?:steps?|instructions|recipe|method|procedure|amounts?|quantities|doses?|dosage|ingredients|measurements|details?)\b|\b(?:steps?|instructions|recipe|method|procedure|amounts?|quantities|doses?|dosage|ingredients|measurements)\s+(?:and|with|,)\s+(?:\w+\s+)?(?:amounts?|quantities|doses?|measurements|steps?|reagents?|chemicals?|tools?|parts?)\b)"""
)
# Every form of the clause holds one of these; most texts hold none, and a text that does
# is searched only around them, so a megabyte costs a few milliseconds.
_RULED_OUT_STEMS: Final = (
    "refus",
    "disclaim",
    "warnings",
    "lectur",
    "moralis",
    "moraliz",
    "hedg",
    "caveat",
    "censor",
    "helpline",
    "moderat",
    "editoriali",
    "water",
    "redact",
    "saniti",
    "filter",
    "waffl",
    "failure to comply",
    "content polic",
    "charact",
    "no matter what",
    "content limit",
    "waived",
    "lifted",
    "suspended",
    "disabled",
    "switched off",
    "turned off",
    "is down",
    "is off",
    "soften",
)
_CLAUSE_BEFORE: Final = 40  # the clause starts at most this far before its stem
_CLAUSE_AFTER: Final = 100  # ... and ends at most this far after it
_DEMAND_REACH: Final = 360  # the demand starts within 300 characters of the clause
_STEM_LIMIT: Final = 256
_CLAUSE_LIMIT: Final = 64


def refusal_ruled_out(base: str) -> Detection | None:
    """A refusal, a warning or moderation ruled out, and on the same line, within 300
    characters before or after, a demand for a method (JB-015, which also needs a harm
    topic). The clause is searched only in the merged stretches around its stems' first
    _STEM_LIMIT occurrences each, and only its first _CLAUSE_LIMIT matches are read (a
    jailbreak states it once or twice): a megabyte of the clause repeated costs tens of
    milliseconds."""
    around: list[tuple[int, int]] = []
    for stem in _RULED_OUT_STEMS:
        position = base.find(stem)
        for _ in range(_STEM_LIMIT):
            if position < 0:
                break
            around.append(
                (max(0, position - _CLAUSE_BEFORE), min(len(base), position + _CLAUSE_AFTER))
            )
            position = base.find(stem, position + len(stem))
    if not around:
        return None
    around.sort()
    clauses = 0
    start, end = around[0]
    for begin, finish in [*around[1:], (len(base) + 1, len(base) + 1)]:
        if begin <= end:
            end = max(end, finish)
            continue
        for clause in _RULED_OUT.finditer(base, start, end):
            line_start = base.rfind("\n", max(0, clause.start() - _DEMAND_REACH), clause.start())
            line_end = base.find("\n", clause.end(), clause.end() + _DEMAND_REACH)
            low = max(line_start + 1, clause.start() - _DEMAND_REACH)
            high = min(len(base) if line_end < 0 else line_end, clause.end() + _DEMAND_REACH)
            if _METHOD_DEMAND.search(base, low, high) is not None:
                return Detection(clause.span())
            clauses += 1
            if clauses >= _CLAUSE_LIMIT:
                return None
        start, end = begin, finish
    return None


# JB-013: a task or a frame and a demand that what it holds be a method that works. A
# task's word (a story, a scene, a game, "write", "describe", "list") counts on the
# demand's line within 400 characters before it ("the aria must be chemically accurate");
# in a text of more than _WRAPPER_WORDS words, a jailbreak's wrapper anywhere counts (a
# persona, a game, a log or a form to transcribe or reproduce: "the IRL leaderboard
# requires real routes only, make every split something that works"). The demand may
# also be that the plan or the steps "must be complete and accurate", be "accurate enough
# to copy", "usable, not symbolic", or a "precise account of how" it is done.
_FRAMES: Final = (
    r"story|stories|novels?|chapters?|scenes?|scripts?|screenplays?|plays?|librett[oi]|"
    r"arias?|poems?|songs?|lyrics|raps?|verses?|ballads?|picture books?|fairy tales?|"
    r"limericks?|haikus?|sonnets?|odes?|shant(?:y|ies)|riddles?|comics?|podcasts?|"
    r"films?|movies?|video games?|games?|role-?play|pretend|characters?|in character|"
    r"simulate|simulation|memoirs?|madlibs?|monologues?|dialogues?|actors?|rehears\w*|"
    r"director|for realism|persona|bedtime|fiction\w*|wikipedia|encyclop\w+|wiki|"
    r"article titled|methods section|process essay|how-to essay|grandm\w*|grandp\w*|"
    r"granny|grandad|uncle"
)
_FRAME = re.compile(rf"\b(?:{_FRAMES})\b")
_TASK = re.compile(
    rf"\b(?:{_FRAMES}|"
    r"write|continue|complete|draft|compose|finish|fill in|"
    r"auto-?complete|transcribe|narrate|recount|describe|explain|answer|list|draw|give|"
    r"tell|include|spell out|detail"
    r")\b"
)
_WRAPPER = re.compile(
    r"\b(?:you are|you're|you play|act as|pretend|role-?play\w*|simulat\w*|narrat\w*|"
    r"write (?:the|a|my|an|his|her)|transcri\w*|reproduce|in character|game|mode\b|"
    r"generator|template|format|respond as|answer as|reply as|speak as|the role of|"
    r"improv\b)"
)
_EXACT_METHOD = re.compile(
    r"(?:"
    r"\b(?:exact|precise|step-by-step|step by step|working|usable|functional|real-world|"
    r"true-to-life|accurate)\s+(?:(?:and|,)\s*[\w-]+\s+)?(?:quantit(?:y|ies)|amounts?|"
    r"doses?|dosages?|measurements?|temperatures?|ratios?|proportions?|recipes?|formulas?|"
    r"reagents?|chemicals?|ingredients?|materials?|parts|procedures?|instructions|"
    r"methods?|techniques?|steps)\b|\b(?:real|actual)\s+(?:,\s*)?(?:(?:usable|working|"
    r"accurate)\s*,?\s*)?(?:working\s+)?(?:methods?|instructions|techniques?|recipes?|"
    r"steps|materials|ingredients|chemicals|quantities|doses)\b|\b(?:real|working|"
    r"usable)\s*,\s*(?:usable|working|accurate|real)\s+(?:details|information|"
    r"instructions)\b|\b(?:chemically|technically|scientifically|medically|"
    r"pharmacologically|operationally)\s+(?:accurate|correct|precise|exact|realistic)\b|"
    r"\b(?:plan|procedure|steps?|method|instructions|guide|recipe|tactics|technique|process)\s+"
    r"(?:must|has\s+to|have\s+to|needs?\s+to|should)\s+be\s+(?:[\w-]+,?\s+(?:and\s+)?)?"
    r"(?:complete|accurate|usable|practical|concrete|realistic|precise|exact|correct|real|"
    r"workable|actionable|functional|instructional)\b|\b(?:accurate|detailed|complete|"
    r"precise|specific|exact|realistic)\s+enough\s+(?:to\s+(?:copy|follow|use|replicate|"
    r"reproduce)|that\s+(?:someone|anyone|a\s+reader|readers|people|you|i|they)\s+"
    r"(?:could|can|would)\s+(?:follow|copy|use|do|replicate|reproduce))\b|\b(?:usable|"
    r"practical|working|real|concrete|actionable|instructional),?\s+not\s+(?:symbolic|vague|"
    r"metaphorical|poetic|fictional|fake|theoretical|general|abstract)\b|\breal(?:-world)?\s+"
    r"(?:tactics|parameters|specifics)\b|\b(?:precise|exact|step-by-step)\s+(?:account|"
    r"description|explanation|walkthrough)\s+of\s+(?:how|the\s+(?:steps|method|way))\b|"
    r"\b(?:in|with)\s+(?:exact|precise|full|complete|accurate)\s+(?:technical|"
    r"professional|chemical)\s+detail|\b(?:exactly|precisely)\s+how\s+to\b|"
    r"\b(?:with\s+)?all\s+(?:the\s+)?(?:steps|quantities|amounts|doses|reagents|"
    r"ingredients|chemicals)\s+(?:and|with)\b|\b(?:specific|exact|precise|full|"
    r"complete|correct|real|accurate)\s+technical\s+details?\b|\bno placeholders\b|"
    r"\bmore\s+(?:detailed|"
    r"specific|technical|concrete|precise)\s+than\s+the\s+last\b|"
    r"\bconcrete,?\s+actionable\s+steps?\b|\b(?:the\s+)?same\s+(?:quantities|amounts|"
    r"doses)\b|\bline\s+by\s+line\b|\bin\s+technical\s+detail\b|\b(?:complete|"
    r"full),?\s+working\s+(?:instructions|method|recipe|details)\b|\bin\s+(?:full|"
    r"complete|great|exhaustive)\s+detail\b|\b(?:leave|leaving)\s+nothing\s+out\b|"
    r"\bnothing\s+(?:left\s+out|omitted)\b|\bomit\s+nothing\b|\breal,?\s+(?:accurate|"
    r"working|usable|specific)\s+(?:content|details?|information|instructions|steps?)\b)"
)
_WORKING_METHOD = re.compile(
    r"\b(?:(?:real|accurate|working|complete|exact|precise|technical|full|concrete|specific|"
    r"actual|real-world|detailed|practical)\s+(?:[\w-]+\s+)?(?:instructions|steps|quantities|"
    r"amounts|procedure|method|methods|protocol|guide|tutorial|manual|recipe|doses?|dosages?|"
    r"dosing|tactics|parameters|specifics|"
    r"rates?|measurements|chemistry|information|info|details)|"
    r"(?:with|including|and|plus|give|list)\s+(?:the\s+)?(?:exact\s+)?(?:quantities|amounts|"
    r"doses|dosages|measurements|rates|proportions|ratios)|"
    r"real[- ]world (?:accuracy|detail|steps|method)|"
    r"(?:make|so)\s+(?:it|they|them|every \w+|each \w+|the \w+)\s+(?:actually\s+)?work|"
    r"actually work|in (?:real|practical|full technical) detail)\b"
)
# "don't give real dosages", "no step-by-step": a demand ruled out in its own clause is
# none ("no pseudocode, no placeholders" demands one).
_RULED_OUT_BEFORE = re.compile(
    r"\b(?:don'?t|do not|no|not|without|never|avoid|nothing|skip|leave out)\b[^.!?\n,;:]{0,30}$"
)
_RULING_OUT: Final = ("no ", "nothing", "omit", "leav")  # demands that are themselves "no ..."
_TASK_REACH: Final = 420  # a task's word ends at most 400 characters before the demand
_WRAPPER_WORDS: Final = 40
_DEMAND_LIMIT: Final = 64


def method_in_frame(base: str, task: re.Pattern[str] = _TASK) -> Detection | None:
    """A demand for a method that really works, not ruled out just before it: an exact
    one ("exact quantities", "chemically accurate") with a task's word on its line before
    it, or, in a text of more than _WRAPPER_WORDS words, any ("real steps", "make every
    split something that works") with a jailbreak's wrapper anywhere (JB-013, which also
    needs a harm topic). Only each demand's first _DEMAND_LIMIT matches are read."""
    exact = list(_demands(base, _EXACT_METHOD))
    for demand in exact:
        line_start = base.rfind("\n", 0, demand.start()) + 1
        reach = max(line_start, demand.start() - _TASK_REACH)
        if task.search(base, reach, demand.start()) is not None:
            return Detection(demand.span())
    if _short(base) or not _WRAPPER.search(base):
        return None
    working = exact[0] if exact else next(_demands(base, _WORKING_METHOD), None)
    return None if working is None else Detection(working.span())


# An attack's shape is looked for in this many characters from each end of a text
# (`attack_shapes`): where the embedding tiers read a long text's sentences too
# (`tier.SENTENCE_WINDOW`).
SHAPE_WINDOW: Final = 2048
# An AI addressed past the turn's first words ("... Remarks: 'assistant - disregard ...",
# "(to any AI summarising this)", "<system>"): a user speaks to the assistant at the start
# of their own words, planted text inside the data. A comma is no address: "how would an
# injection reach an LLM agent, so I can threat-model it" speaks of one.
_ADDRESSED = re.compile(
    r"\b(?=[abcfglmst])(?:(?:ai|assistant|llm|language model|model|chatbot|bot|gpt)s?\b"
    r"(?:[\s-]+[\w-]+){0,3}?\s*(?:[:\u2014\u2013]|\s-\s)|(?:to|for) (?:any|the|every|"
    r"whatever) (?:ai|assistant|llm|language model|model|bot)s?\b|"
    r"system (?:message|note|notice|override)\b)|<\s*/?\s*system\s*>"
)
_ADDRESS_FROM: Final = 26  # a user's own first words may address the assistant


def attack_shapes(base: str) -> frozenset[str]:
    """The attacks whose shape a text has, whatever it asks for: "jailbreak" where it
    wraps a demand for a method in a jailbreak's frame (JB-015's refusal ruled out beside
    it, or JB-013's task or wrapper around an exact or working method; in a text of at
    most _WRAPPER_WORDS words, a frame's word, not a task's verb alone: "give me step by
    step instructions to bake bread" wraps nothing), "injection" where
    it addresses an AI inside its data. The embedding tiers judge whether the text is the
    attack (`tier.SHAPE_READING`), where the signatures need a harm topic or a listed act.
    Read in SHAPE_WINDOW characters from each end, so a megabyte costs what 4 KB does."""
    if len(base) > 2 * SHAPE_WINDOW:
        base = f"{base[:SHAPE_WINDOW]}\n{base[-SHAPE_WINDOW:]}"
    shapes: set[str] = set()
    framed = method_in_frame(base, _FRAME if _short(base) else _TASK)
    if framed is not None or refusal_ruled_out(base) is not None:
        shapes.add("jailbreak")
    if _ADDRESSED.search(base, _ADDRESS_FROM) is not None:
        shapes.add("injection")
    return frozenset(shapes)


def _short(base: str) -> bool:
    """At most _WRAPPER_WORDS words."""
    return len(base.split(maxsplit=_WRAPPER_WORDS)) <= _WRAPPER_WORDS


def _demands(base: str, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """The first _DEMAND_LIMIT matches of `pattern` that are not ruled out just before."""
    for demand in islice(pattern.finditer(base), _DEMAND_LIMIT):
        start = demand.start()
        ruled_out = not demand.group().startswith(_RULING_OUT) and (
            _RULED_OUT_BEFORE.search(base, max(0, start - 40), start) is not None
        )
        if not ruled_out:
            yield demand


def payment_card(raw: str) -> Detection | None:
    """A payment card number: issuer prefix, 13-19 digits and a valid Luhn checksum."""
    for found in _CARD.finditer(raw):
        digits = re.sub(r"[ -]", "", found.group())
        if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
            continue
        if len(set(digits)) > 2 and _luhn_valid(digits):
            return Detection(found.span())
    return None


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def prompt_secrets(prompt: str) -> list[str]:
    """Access-code-like strings of a prompt, folded: what its output must never repeat."""
    prompt = prompt[:_MAX_PROMPT_CHARS]
    candidates: list[str] = []
    stripped = prompt.strip()
    if stripped and len(stripped) <= 64 and len(stripped.split()) <= 4:
        candidates.append(stripped)  # a prompt this short is itself the secret
    candidates.extend(found.group(1) for found in _SECRET_AFTER_KEYWORD.finditer(fold(prompt)))
    candidates.extend(found.group(1) for found in _QUOTED.finditer(prompt))
    for found in _RANDOM_TOKEN.finditer(prompt):
        token = found.group()
        classes = sum(
            (
                any(c.islower() for c in token),
                any(c.isupper() for c in token),
                any(c.isdigit() for c in token),
            )
        )
        if classes >= 2 and any(c.isdigit() for c in token):
            candidates.append(token)
    secrets: list[str] = []
    for candidate in candidates:
        folded = " ".join(fold(candidate).split())
        if folded and folded not in secrets and _distinctive(folded):
            secrets.append(folded)
    return secrets[:32]


def _distinctive(secret: str) -> bool:
    words = _WORD.findall(secret)
    if not words:
        return len(secret) >= 2  # emoji or symbols only: rare enough in any output
    return any(word not in _COMMON and (len(word) >= 3 or word.isdigit()) for word in words)


def prompt_secret(
    base: str,
    secrets: list[str],
    word_text: str,
    encoded: Sequence[str],
    original: str,
) -> Detection | None:
    """The first secret of the prompt that the output repeats: as written, spelled apart,
    written backwards or in rot13, as the initials of its lines (an acrostic), in one of
    `encoded` (what runs of the output decode to: its base64, hex, URL escapes), or in a
    run of `original` (the output as received) too short for a base64 view.
    `word_text`: `base` with all but letters and digits blanked, the words of `base` cut
    in C (`NormalizedText.word_text`)."""
    if not secrets:
        return None
    found = _repeated_secret(base, secrets, word_text)
    if found is not None:
        return found
    short = [fold(text) for text in short_base64(original)]
    return _encoded_secret(base, secrets, [*encoded, *short])


def _encoded_secret(base: str, secrets: list[str], encoded: Sequence[str]) -> Detection | None:
    """A secret in the line initials of `base` or in a decoded run of it (`encoded`)."""
    initials: str | None = None
    compact_views = [_NON_ALNUM.sub("", view) for view in encoded]
    for secret in secrets:
        compact = _NON_ALNUM.sub("", secret)
        if len(compact) >= _ACROSTIC_MIN and compact.isalpha():
            if initials is None:
                initials = "".join(line.lstrip()[0] for line in base.splitlines() if line.strip())
            if compact in initials:
                return Detection(None)
        for view, compact_view in zip(encoded, compact_views, strict=True):
            if secret in view or (len(compact) >= _COMPACT_MIN and compact in compact_view):
                return Detection(None)
    return None


def _repeated_secret(base: str, secrets: list[str], word_text: str) -> Detection | None:
    output_words: set[str] | None = None
    compact_output: str | None = None
    for secret in secrets:
        at = base.find(secret)
        if at >= 0 and _bounded(base, at, at + len(secret)):
            return Detection((at, at + len(secret)))
        words = _WORD.findall(secret)
        if len(words) > 1:
            if output_words is None:
                output_words = set(word_text.split())
            if all(word in output_words for word in words):
                first = base.find(words[0])
                return Detection((first, first + len(words[0])))
        compact = _NON_ALNUM.sub("", secret)
        if len(compact) >= _COMPACT_MIN:
            if compact_output is None:
                compact_output = "".join(word_text.split())
            if (
                compact in compact_output
                or compact[::-1] in compact_output
                or compact.translate(ROT13) in compact_output
            ):
                return Detection(None)
    return None


def _bounded(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() and text[start].isalnum()) and not (
        after.isalnum() and text[end - 1].isalnum()
    )


def prompt_shingles(prompt: str) -> frozenset[int]:
    """Hashes of every run of consecutive words in the prompt, for verbatim-leak checks."""
    words = _WORD.findall(fold(prompt[:_MAX_PROMPT_CHARS]))
    if len(words) < _OVERLAP_WORDS:
        return frozenset()
    return frozenset(
        hash(tuple(words[i : i + _OVERLAP_WORDS])) for i in range(len(words) - _OVERLAP_WORDS + 1)
    )


def prompt_openers(prompt: str) -> frozenset[str]:
    """The words a run of the prompt can start with: outputs are checked only there."""
    words = _WORD.findall(fold(prompt[:_MAX_PROMPT_CHARS]))
    return frozenset(words[: len(words) - _OVERLAP_WORDS + 1])


def prompt_overlap(
    base: str, word_text: str, shingles: frozenset[int], openers: frozenset[str] | None = None
) -> Detection | None:
    """A run of words the output copies verbatim from the prompt; `word_text` as for
    `prompt_secret`; `openers` (see `prompt_openers`) lets a long output skip the words
    no run of the prompt starts with."""
    if not shingles:
        return None
    words = word_text.split()
    for i in range(len(words) - _OVERLAP_WORDS + 1):
        if openers is not None and words[i] not in openers:
            continue
        if hash(tuple(words[i : i + _OVERLAP_WORDS])) in shingles:
            found = list(islice(_WORD.finditer(base), i, i + _OVERLAP_WORDS))
            return Detection((found[0].start(), found[-1].end()))
    return None
