"""Session correlation: the rules that judge a turn by what its session remembers.

Each rule is one small named step behind the `Correlator` protocol; `INPUT_CORRELATORS`
runs them in order over a user turn, as Mangum runs its handler list. A step reads the
`Turn` (the turn's text, its single-turn findings, the session state and what earlier
steps found), may add findings and reasons, and may update the session state:

* `SplitPayload`: the tails of the last user turns and the head of this one are joined
  and rescanned, and so are string fragments the user assigned to names; a match that
  straddles turns is an attack no single turn showed;
* `HarmfulFollowUp`: a question that refers back ("how do I do it?") after turns that
  raised a harmful topic is judged with that topic, and one asking how to make or get
  hold of the thing named ("what is ricin?", then "how do I make it?") is flagged as
  such (`SES-HARM-MEANS`: the semantic tier, which reads both turns as safe, does not
  overrule it);
* `ContestedOpinion`: a turn asking the model to take a side on, judge or disparage a
  contested subject (politics, identity groups, divisive issues) raised in recent turns;
* `RepeatedProbing`: three or more probing turns in a short span;
* `RetryAfterRefusal`: a retry right after the model refused;
* `Escalation`: single-turn scores rising over the last three user turns;
* `HarmMemory`: what the session keeps of this turn's harmful topics.

`correlate_output` does the same for a model response: a refusal or a warning tells the
session where the conversation is heading, and a leak shortly after a probe is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from turnwall.scan.catalog import Signature
from turnwall.scan.engine import Finding, split_matches
from turnwall.scan.lexicon import cue
from turnwall.scan.patterns import LazyPattern
from turnwall.scan.policy import combine
from turnwall.scan.session import (
    FRAGMENT_CHARS,
    FRAGMENTS_KEPT,
    PROBES_KEPT,
    SCORES_KEPT,
    WINDOW_CHARS,
    WINDOW_TURNS,
)

if TYPE_CHECKING:
    from turnwall.scan.catalog import Catalog
    from turnwall.scan.models import Category
    from turnwall.scan.session import SessionState

_PROBING: Final = frozenset({"injection", "jailbreak", "system_prompt_extraction"})
_PROBE_FLOOR: Final = 0.25
_PROBE_SPAN: Final = 12  # turns within which repeated probes count together
_PROBES_TO_FLAG: Final = 3
_LEAK_AFTER: Final = 3  # an output this many turns after a probe counts as its answer
_RETRY_AFTER: Final = 2
_HARM_DECAY: Final = 0.85  # a harmful topic is still in play two or three turns on
_HARM_MIN: Final = 0.2  # for a follow-up asking how, where or for specifics
_HARM_MIN_OPINION: Final = 0.25  # for any other follow-up question
_FOLLOW_UP_CHARS: Final = 600

# Compiled on first use: most Lambda containers that load this module scan few turns
# with a session, and compiling these at import is a measurable share of a cold start.
# Their phrases are data: signatures/session-cues.txt (turnwall.scan.lexicon).
_REFERENCE = LazyPattern(cue("reference"))
_REQUEST = LazyPattern(cue("request"))
# Follow-ups that ask for the means: methods, places, specifics, materials.
_OPERATIONAL = LazyPattern(cue("operational"))
# Follow-ups that ask how to make or get hold of the thing named before ("how do I make
# it?", "where can I buy some?").
_MAKING = LazyPattern(cue("making"))
# Follow-ups that seek safety or help rather than the harm itself.
_HELP_SEEKING = LazyPattern(cue("help-seeking"))
# A turn of at most _AIM_CHARS characters stating a protective aim ("I want to help her
# get out") and asking for nothing itself: see `states_protective_aim`.
_PROTECTIVE_AIM = LazyPattern(cue("protective-aim"))
_PROTECTIVE_ASK = LazyPattern(cue("protective-ask"))
# A protective question runs to its end, but not over a purpose of the asker's own after
# it ("how do I spot if the guard looks away so I can grab the bag?") or a wish not to be
# caught ("how do I keep myself safe and not get caught selling?"): that clause, and its
# question mark, stay to be read as an ask.
_QUESTION_END = re.compile(
    r"(?:(?!\b(?:so (?:that )?(?:i|we)|while (?:i|we)|before (?:i|we)|(?:and )?then (?:i|we)|"
    r"(?:and )?(?:not|never|don't) (?:get|be|getting|being) (?:caught|seen|noticed|arrested)|"
    r"without (?:getting|being) (?:caught|seen|noticed|arrested))\b)[^.?!\n])*\??"
)
_ASKS = LazyPattern(cue("asks"))
_HELP_FROM = LazyPattern(cue("help-from"))
_STOPPING_HARM = LazyPattern(cue("stopping-harm"))
_OWN_PLAN = LazyPattern(cue("own-plan"))
_AIM_CHARS: Final = 1024
# A plan of the asker's own is read in a turn of at most _PLAN_CHARS characters: in a
# long text "I want to..." is as often a story's or a quoted message's as the asker's
# (on the long sets, 2 more of 450 benign prompts flagged at 600 characters, none at 300).
_PLAN_CHARS: Final = 300
# Questions about what others did in the past ask for history, not for means.
_HISTORICAL = LazyPattern(cue("historical"))
_FIRST_PERSON_ASK = LazyPattern(cue("first-person-ask"))
_HARM_MIN_HISTORY: Final = 0.5
# Fiction, media, moderation, or the user as the one harmed: frames this turn only.
_FRAMING = LazyPattern(cue("framing"))
# The law, a class, clinical or professional work: frames this turn and the next two.
_INQUIRY = LazyPattern(cue("inquiry"))
_FRAMED_TOPIC: Final = 0.5
# A game, a sport or a figure of speech, or a subject studied (`_INQUIRY`), named in one
# of the last _FRAME_TURNS turns: the catalog's verb rules already excuse the turn that
# names a game ("in Elden Ring, how do I kill Malenia?"); the turns after it that talk of
# her without naming the game again ("which weapon kills her quickly?") count their harm
# topics as framed, and so do the turns after "what counts as burglary under the law?".
# Read from the window of recent turns (their last WINDOW_CHARS), and only for a turn
# with harm topics or a follow-up question, so most turns pay nothing.
_SAFE_CONTEXT = LazyPattern(cue("safe-context"))
_FRAME_TURNS: Final = 2
# Why something is so, or how it works: a question for understanding, not for means.
_EXPLANATORY = LazyPattern(cue("explanatory"))
# A follow-up asking for a method: a subject studied does not excuse it.
_METHOD = LazyPattern(cue("method"))
_TOPIC_NOW: Final = 0.5  # weight of this turn's own harm topics in its follow-up context
_REFUSAL = LazyPattern(cue("refusal"))
# A reply that warns about harm tells the session where the conversation is heading.
_CAUTION = LazyPattern(cue("caution"))
# Refusals for lack of ability, not on safety grounds.
_CAPABILITY = LazyPattern(cue("capability"))
# Asking the model to take a side or pass judgment: harmless on most subjects, but on a
# contested one (politics, identity groups) it is what multi-turn baiting builds up to.
_OPINION = LazyPattern(cue("opinion"))
# The judgment must be about the subject: named in the turn, or referred back to.
_SUBJECT_REF = LazyPattern(cue("subject-reference"))
_CONTESTED_DECAY: Final = 0.9
_CONTESTED_MIN: Final = 0.15
_REFUSAL_HARM: Final = 0.3
_CAUTION_HARM: Final = 0.15
# Quoted strings assigned to short names: a = "ignore all", b is 'instructions'.
_QUOTE = re.compile(r"[\"'`]")
_ASSIGNMENT = re.compile(r"(?::=|=|\bis)\s*[\"'`]")
_QUOTED_VALUE = re.compile(rf"[\"'`]([^\"'`\n]{{2,{FRAGMENT_CHARS}}})[\"'`]")
_NAME_BEFORE = re.compile(r"(?:^|[\s;,(])[a-z_]\w{0,15}\s*$")


def session_rule(
    sig_id: str, name: str, category: Category, score: float, action: str
) -> Signature:
    """A session-level rule, reported like a signature so matches stay uniform."""
    return Signature(
        id=sig_id,
        name=name,
        category=category,
        directions=frozenset({"input", "output"}),
        score=score,
        action="block" if action == "block" else "flag",
        kind="pattern",
        patterns=(),
        compacts=(),
        unless=None,
        raw=False,
        requires=frozenset(),
        detector=None,
        damp_quoted=False,
        prompt_score=None,
    )


ESCALATION: Final = session_rule(
    "SES-ESCALATION", "Escalating turn scores", "jailbreak", 0.45, "flag"
)
PROBING: Final = session_rule(
    "SES-PROBING", "Repeated probing", "system_prompt_extraction", 0.5, "flag"
)
RETRY: Final = session_rule("SES-RETRY", "Probing after a refusal", "jailbreak", 0.5, "flag")
HARM_REFERENCE: Final = session_rule(
    "SES-HARM-REFERENCE", "Follow-up to a harmful topic", "content_safety", 0.5, "flag"
)
HARM_MEANS: Final = session_rule(
    "SES-HARM-MEANS",
    "How to make or get a harmful thing named before",
    "content_safety",
    0.5,
    "flag",
)
CONTESTED: Final = session_rule(
    "SES-CONTESTED-OPINION", "Opinion sought on a contested subject", "content_safety", 0.5, "flag"
)
LEAK: Final = session_rule(
    "SES-LEAK-AFTER-PROBE", "Leak after probing", "data_leakage", 0.7, "block"
)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """How a user turn reads against the session, worked out once before any step
    changes the session: the harm and contested subjects in play, and what it asks."""

    follow: str  # the opening of the turn: follow-up questions are short
    harm_now: float  # this turn's own harm topics (framed ones count less)
    contested_now: float
    contested: float  # the session's contested subjects, this turn's included
    harm: float  # what the session knows of harm, this turn's own topics included
    retry_window: bool  # shortly after a refusal
    asks: bool  # asks for more, not for help or history
    opinion: bool  # seeks a side or a judgment on a contested subject
    helping: bool  # seeks safety or help rather than the harm itself
    operational: bool  # asks for the means: methods, places, specifics, materials
    refers: bool  # refers back to something said before
    making: bool  # asks how to make or get hold of the thing named before

    @classmethod
    def read(cls, session: SessionState, turn: int, base: str, findings: list[Finding]) -> FollowUp:
        follow = base[:_FOLLOW_UP_CHARS]
        harmful = [
            f
            for f in findings
            if f.signature.category == "content_safety" and f.signature.kind != "contested"
        ]
        # A harm topic met in a story, a lesson, as its victim, in asking how to stop it
        # ("a gang is demanding money: how do we protect ourselves and go to the
        # police?") or beside a stated protective aim ("someone is poisoning the cats; I
        # want to catch who") sets up less than one raised for its own sake.
        topics = any(f.signature.kind == "topic" for f in harmful)
        framed = topics and (
            bool(_FRAMING.search(follow))
            or bool(_INQUIRY.search(follow))
            or (_framed_nearby(session, turn) and not _METHOD.search(follow))
            or (
                bool(_STOPPING_HARM.search(follow))
                and not _METHOD.search(follow)
                and not _OWN_PLAN.search(follow)
            )
            or states_protective_aim(base)
        )
        harm_now = combine(
            [
                f.score * (_FRAMED_TOPIC if framed and f.signature.kind == "topic" else 1.0)
                for f in harmful
            ]
        )
        contested_now = combine([f.score for f in findings if f.signature.kind == "contested"])
        contested = min(1.0, session.contested * _CONTESTED_DECAY + contested_now)
        retry_window = (
            bool(session.refusal_turn) and 0 < turn - session.refusal_turn <= _RETRY_AFTER
        )
        harm = min(1.0, session.harm + _TOPIC_NOW * harm_now)
        # The follow-up patterns are searched only where the session gives them a reason.
        requests = (harm >= _HARM_MIN or retry_window) and bool(_REQUEST.search(follow))
        opinion = (
            contested >= _CONTESTED_MIN
            and bool(_OPINION.search(follow))
            and (contested_now > 0.0 or bool(_SUBJECT_REF.search(follow)))
        )
        helping = (requests or opinion) and bool(_HELP_SEEKING.search(follow))
        asks = requests and not helping
        # History or an explanation asks about a harm, not for it, and so does a question
        # about the law, a class or a game that seeks no method; unless the asker (or
        # "one") would do it.
        if (
            asks
            and harm < _HARM_MIN_HISTORY
            and not _FIRST_PERSON_ASK.search(follow)
            and (
                _HISTORICAL.search(follow)
                or _EXPLANATORY.search(follow)
                or (
                    (_INQUIRY.search(follow) or _framed_nearby(session, turn))
                    and not _METHOD.search(follow)
                )
            )
        ):
            asks = False
        return cls(
            follow=follow,
            harm_now=harm_now,
            contested_now=contested_now,
            contested=contested,
            harm=harm,
            retry_window=retry_window,
            asks=asks,
            opinion=opinion,
            helping=helping,
            operational=asks and bool(_OPERATIONAL.search(follow)),
            refers=asks and bool(_REFERENCE.search(follow)),
            making=asks and bool(_MAKING.search(follow)),
        )


def _framed_nearby(session: SessionState, turn: int) -> bool:
    """Whether a user turn of the last _FRAME_TURNS named a game, a sport, a figure of
    speech or a subject studied; read from the window of recent turns."""
    return any(
        turn - number <= _FRAME_TURNS and _names_frame(text) for number, text in session.window
    )


def states_protective_aim(base: str) -> bool:
    """Whether a user turn (its normalized text) states that the harm it describes is to
    be stopped or its victim helped: the embedding tiers read it as a harmful request
    only from a higher probability and read none of its sentences alone as one, their
    sessions carry less harm from it (`tier.SemanticTier.judge_input`), and its harm
    topics count as framed (`FollowUp.read`).

    Only a short turn that asks for nothing but that and plans nothing else states one:
    appended to a question, an instruction or a plan of the asker's own ("... I want to
    protect my family."), the phrase would lift the threshold of the harm asked for
    beside it. The aim may be stated ("I want to report him") or asked ("a man says
    he'll poison the ducks; how do we keep them safe?", "who do I tell?"); the questions
    that ask it are read as the aim, not as asks."""
    if len(base) > _AIM_CHARS:
        return False
    asked = [*_PROTECTIVE_ASK.finditer(base), *_HELP_FROM.finditer(base)]
    if not asked and _PROTECTIVE_AIM.search(base) is None:
        return False
    if _OWN_PLAN.search(base) is not None:
        return False
    rest = list(base)
    for found in asked:
        end = _QUESTION_END.match(base, found.end())
        stop = end.end() if end is not None else found.end()
        rest[found.start() : stop] = " " * (stop - found.start())
    return _ASKS.search("".join(rest)) is None


def states_own_plan(base: str) -> bool:
    """Whether a short user turn (its normalized text) states a plan or aim of the asker's
    own ("I'm going to...", "we plan to...", "I want to <act>" other than a protective
    act): the embedding tiers read it as a harmful request from a lower probability
    (`tier.PLAN_HARMFUL`). A turn stating a protective aim states none."""
    return len(base) <= _PLAN_CHARS and _OWN_PLAN.search(base) is not None


def asks_whom_to_turn_to(base: str) -> bool:
    """Whether a user turn (its normalized text) asks whom to turn to or where to report:
    "who do I go to first?", "which agency should we contact?"."""
    return _HELP_FROM.search(base, 0, _FOLLOW_UP_CHARS) is not None


def opened_with_frame(session: SessionState, turn: int) -> bool:
    """Whether the conversation opened by naming a game, a sport, a figure of speech or a
    subject studied, in its first user turn, at most _FRAME_TURNS before `turn`. Only the
    opening counts: a game named after a harmful aim ("I have landmines... suppose it's for
    a strategy game") is a pretext, not a frame."""
    return turn - 1 <= _FRAME_TURNS and any(
        number == 1 and _names_frame(text) for number, text in session.window
    )


def _names_frame(text: str) -> bool:
    return _SAFE_CONTEXT.search(text) is not None or _INQUIRY.search(text) is not None


@dataclass(slots=True)
class Turn:
    """One user turn as the correlators see it; they append to `added` and `reasons`."""

    catalog: Catalog
    session: SessionState
    number: int
    base: str  # the normalized text
    findings: list[Finding]  # single-turn findings
    single: float  # the single-turn score
    reasons: list[str]
    reading: FollowUp
    added: list[Finding] = field(default_factory=list)
    # Set by the steps, for the steps after them.
    assembled: list[Finding] = field(default_factory=list)
    probing: bool = False

    def add(self, rule: Signature, score: float, reason: str) -> None:
        self.added.append(Finding(rule, score, None))
        self.reasons.append(reason)


class Correlator(Protocol):
    """One session rule over a user turn."""

    def correlate(self, turn: Turn) -> None:
        """Add what this rule finds to `turn`, and keep what it needs in the session."""


class SplitPayload:
    """Rescan recent turns joined together; keep matches no single turn contained."""

    def correlate(self, turn: Turn) -> None:
        session, base = turn.session, turn.base
        seen = {f.signature.id for f in turn.findings}
        numbers = [t for t, _ in session.window] + [turn.number]
        pieces = [text for _, text in session.window] + [base[:WINDOW_CHARS]]
        fragments = _fragments(session, base)
        for names, parts in ((numbers, pieces), ([], fragments)):
            if len(parts) < 2:
                continue
            for sig, first, last in split_matches(turn.catalog, parts, "input"):
                if sig.id in seen:
                    continue
                seen.add(sig.id)
                where = f"turns {names[first]}-{names[last]}" if names else "string fragments"
                turn.add(sig, sig.score, f"split_payload: {sig.category} assembled across {where}")
                turn.assembled.append(turn.added[-1])
        session.window = [*session.window, (turn.number, base[-WINDOW_CHARS:])][-WINDOW_TURNS:]


def _fragments(session: SessionState, base: str) -> list[str]:
    """Quoted strings assigned to names (a = 'ignore all'): payload parts to reassemble."""
    new: list[str] = []
    for quote in _QUOTE.finditer(base, 0, 4096):
        assignment = _ASSIGNMENT.search(base, max(0, quote.start() - 12), quote.end())
        if assignment is None or assignment.end() != quote.end():
            continue
        value = _QUOTED_VALUE.match(base, quote.start())
        if value is not None and _NAME_BEFORE.search(base, 0, assignment.start()):
            new.append(value.group(1))
    if new:
        session.fragments = [*session.fragments, *new][-FRAGMENTS_KEPT:]
        return session.fragments
    return []


class HarmfulFollowUp:
    """A question asking for more about a harmful topic raised in this or recent turns."""

    def correlate(self, turn: Turn) -> None:
        reading, session = turn.reading, turn.session
        needed = _HARM_MIN if reading.operational else _HARM_MIN_OPINION
        if not (
            reading.asks
            and reading.harm >= needed
            and (
                reading.refers or reading.making or (reading.harm_now > 0.0 and reading.operational)
            )
        ):
            return
        strongest = max(
            (f.score for f in turn.findings if f.signature.category == "content_safety"),
            default=0.0,
        )
        if strongest < HARM_REFERENCE.score:
            score = min(0.85, 0.3 + 0.8 * reading.harm - (0.0 if reading.operational else 0.1))
            since = session.harm_turn if session.harm > 0.0 else turn.number
            if reading.making:
                rule, score = HARM_MEANS, max(score, HARM_MEANS.score)
                why = f"harmful_means: turn {turn.number} asks how to make or get what turn "
                why += f"{since} named"
            else:
                rule = HARM_REFERENCE
                why = f"harmful_reference: turn {turn.number} follows up on a harmful topic "
                why += f"from turn {since}"
            turn.add(rule, score, why)


class ContestedOpinion:
    """A side or a judgment sought on a contested subject of recent turns."""

    def correlate(self, turn: Turn) -> None:
        reading = turn.reading
        if reading.opinion and not reading.helping:
            turn.add(
                CONTESTED,
                CONTESTED.score,
                f"contested_opinion: turn {turn.number} asks for a side or a judgment on a "
                "contested subject",
            )
        turn.session.contested = reading.contested


class RepeatedProbing:
    """Three or more probing turns (injection, jailbreak, extraction) in a short span."""

    def correlate(self, turn: Turn) -> None:
        session = turn.session
        turn.probing = any(
            f.signature.category in _PROBING and f.score >= _PROBE_FLOOR for f in turn.findings
        ) or any(f.signature.category in _PROBING for f in turn.assembled)
        if not turn.probing:
            return
        session.probes.append(turn.number)
        del session.probes[:-PROBES_KEPT]
        recent = [t for t in session.probes if turn.number - t < _PROBE_SPAN]
        if len(recent) >= _PROBES_TO_FLAG:
            score = min(0.7, PROBING.score + 0.05 * (len(recent) - _PROBES_TO_FLAG))
            turn.add(
                PROBING,
                score,
                f"repeated_probing: {len(recent)} probing attempts since turn {recent[0]}",
            )


class RetryAfterRefusal:
    """Asking again, right after the model refused, for what it refused."""

    def correlate(self, turn: Turn) -> None:
        reading = turn.reading
        if (
            reading.retry_window
            and reading.asks
            and (
                turn.probing
                or reading.harm_now >= _HARM_MIN
                or reading.operational
                or reading.refers
            )
        ):
            turn.add(
                RETRY,
                RETRY.score,
                f"probe_after_refusal: turn {turn.number} retries after a refusal at turn "
                f"{turn.session.refusal_turn}",
            )


class Escalation:
    """Single-turn scores rising over the last three user turns."""

    def correlate(self, turn: Turn) -> None:
        scores = [*turn.session.scores, turn.single][-SCORES_KEPT:]
        if (
            len(scores) >= 3
            and scores[-3] < scores[-2] < scores[-1]
            and scores[-1] >= 0.3
            and scores[-1] - scores[-3] >= 0.2
        ):
            turn.add(
                ESCALATION, ESCALATION.score, "escalation: rising scores over the last 3 user turns"
            )
        turn.session.scores = scores


class HarmMemory:
    """The session keeps this turn's harm topics, decaying the older ones."""

    def correlate(self, turn: Turn) -> None:
        session, harm_now = turn.session, turn.reading.harm_now
        if harm_now > 0.0:
            session.harm_turn = turn.number
        session.harm = min(1.0, session.harm * _HARM_DECAY + harm_now)


INPUT_CORRELATORS: Final[tuple[Correlator, ...]] = (
    SplitPayload(),
    HarmfulFollowUp(),
    ContestedOpinion(),
    RepeatedProbing(),
    RetryAfterRefusal(),
    Escalation(),
    HarmMemory(),
)


def correlate_input(
    catalog: Catalog,
    session: SessionState,
    number: int,
    base: str,
    findings: list[Finding],
    reasons: list[str],
    *,
    single: float,
) -> list[Finding]:
    """Run INPUT_CORRELATORS over user turn `number`; the findings they add (their
    reasons are appended to `reasons`, the session state updated in place)."""
    turn = Turn(
        catalog=catalog,
        session=session,
        number=number,
        base=base,
        findings=findings,
        single=single,
        reasons=reasons,
        reading=FollowUp.read(session, number, base, findings),
    )
    for correlator in INPUT_CORRELATORS:
        correlator.correlate(turn)
    return turn.added


def correlate_output(
    session: SessionState, number: int, base: str, findings: list[Finding], reasons: list[str]
) -> list[Finding]:
    """What a model response at turn `number` tells the session: a refusal or a warning
    raises its harm, a leak shortly after a probe is flagged. The findings to add."""
    cautions = {found.group() for found in _CAUTION.finditer(base[:2000])}
    # Only a refusal on safety grounds says something about the request; "I can't
    # browse the web" does not.
    opening = base[:400]
    if _REFUSAL.search(opening) and (cautions or not _CAPABILITY.search(opening)):
        session.refusal_turn = number
        session.harm = min(1.0, session.harm + _REFUSAL_HARM)
        session.harm_turn = number
    elif cautions:
        session.harm = min(1.0, session.harm + _CAUTION_HARM * min(len(cautions), 2))
        session.harm_turn = number
    leaks = [f for f in findings if f.signature.category == "data_leakage" and f.score >= 0.3]
    probe = next((t for t in reversed(session.probes) if 0 < number - t <= _LEAK_AFTER), 0)
    if not (leaks and probe):
        return []
    reasons.append(
        f"leak_after_probe: output at turn {number} leaks after probing input at turn {probe}"
    )
    return [Finding(LEAK, LEAK.score, None)]
