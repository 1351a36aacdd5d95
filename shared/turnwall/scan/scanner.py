"""The session-aware scanner: text and session state in, outcome and new state out.

A turn is first judged alone (every view of the normalized text against the catalog),
then against what the session remembers:

* split payloads: the tails of the last user turns and the head of this one are joined
  and rescanned, and so are string fragments the user assigned to names; a match that
  straddles turns is an attack no single turn showed;
* harmful follow-ups: a question that refers back ("how do I do it?") after turns that
  raised a harmful topic is judged with that topic;
* contested opinions: a turn asking the model to take a side on, judge or disparage a
  contested subject (politics, identity groups, divisive issues) raised in recent turns;
* escalation: single-turn scores rising over the last three user turns;
* repeated probing: three or more probing turns in a short span, or a retry right after
  the model refused;
* leak after probe: an output that leaks secrets or instructions shortly after a probe.

A decayed session score accumulates turn scores; crossing the policy's session
thresholds raises the session decision.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, overload

from turnwall.errors import ConfigurationError
from turnwall.scan.catalog import Catalog, LazyPattern, Signature, default_catalog
from turnwall.scan.engine import (
    Finding,
    PromptContext,
    detect,
    may_block,
    split_matches,
    turn_score,
)
from turnwall.scan.models import Match, ScanOutcome, SessionVerdict, stricter
from turnwall.scan.normalize import NormalizedText, normalize
from turnwall.scan.policy import Policy, combine, policy_for
from turnwall.scan.session import (
    FRAGMENT_CHARS,
    FRAGMENTS_KEPT,
    PROBES_KEPT,
    SCORES_KEPT,
    WINDOW_CHARS,
    WINDOW_TURNS,
    SessionState,
)

if TYPE_CHECKING:
    from turnwall.models import Decision
    from turnwall.scan.models import Category, Direction
    from turnwall.scan.semantic.tier import SemanticJudgement, SemanticTier

TIERS: Final = ("lexical", "semantic")

_PROBING: Final = frozenset({"injection", "jailbreak", "system_prompt_extraction"})
_PROBE_FLOOR: Final = 0.25
_PROBE_SPAN: Final = 12  # turns within which repeated probes count together
_PROBES_TO_FLAG: Final = 3
_LEAK_AFTER: Final = 3  # an output this many turns after a probe counts as its answer
_RETRY_AFTER: Final = 2
_HARM_DECAY: Final = 0.85  # a harmful topic is still in play two or three turns on
_HARM_MIN: Final = 0.2  # for a follow-up asking how, where or for specifics
_HARM_MIN_OPINION: Final = 0.25  # for any other follow-up question
_RISK_DECAY: Final = 0.85
_WEAK_TURN: Final = 0.3  # turn scores below this count half toward the session score
_SIGNAL: Final = 0.25  # a turn this suspicious is flagged while its session is flagged
_FOLLOW_UP_CHARS: Final = 600

# Compiled on first use: most Lambda containers that load this module scan few turns
# with a session, and compiling these at import is a measurable share of a cold start.
_REFERENCE = LazyPattern(
    r"\b(?:it|its|it's|that|this|these|those|them|they|their|him|his|her|such|one|ones|"
    r"there|same|former|latter|aforementioned|mentioned|previous(?:ly)?|earlier|above|"
    r"said|described|suggested|listed|discussed|explained|told|again|proposed|recommended|"
    r"gave|provided|offered|type|kind|method|option|what about|how about)\b"
)
_REQUEST = LazyPattern(
    r"\b(?:how|what|what's|which|where|why|who|when|can you|could you|would you|will you|"
    r"can i|could i|may i|is it ok|"
    r"tell me|show me|give me|explain|describe|elaborate|list|suggest|recommend|help me|"
    r"teach me|walk me|more|details?|examples?|specific\w*|best|most|effective|easiest|"
    r"safest|do you think|don't you think|wouldn't you say|should i|is it|is there|are there|any)\b"
)
# Follow-ups that ask for the means: methods, places, specifics, materials.
_OPERATIONAL = LazyPattern(
    r"\b(?:how (?:do|can|could|would|should|might|to) (?:i|we|one|you|someone|people|they)|"
    r"how (?:i|we|one) (?:can|could|would|should|might)|should (?:i|we)|what (?:do|should|"
    r"can|could) (?:i|we) do|how (?:is|are) (?:it|this|that|they) (?:usually |typically )?(?:don"
    r"e|made|used|taken|ingested|administered|performed|carried out)|how to|where (?:can|"
    r"could|do|would|to|should|is|are)|what(?:'s| is| are)? (?:the )?(?:best|easiest|safest|"
    r"most effective|quickest|cheapest|fastest|most)|which (?:\w+ )?(?:one|ones|is|are|"
    r"would|should|of|kind|type|brand)|(?:give|tell|show|teach|guide|walk) (?:me|us)|more (?:det"
    r"ails|information|specific\w*|about)|step[- ]by[- ]step|tools|materials|ingredients|"
    r"supplies|can (?:i|you|we) (?:use|get|make|buy|do|send|put|find|go)|could you (?:provide|"
    r"give|help|explain|suggest|recommend|tell|list)|examples?|specifics?|help me|how much|"
    r"how many|instructions|methods?|ways?)\b"
)
# Follow-ups that seek safety or help rather than the harm itself.
_HELP_SEEKING = LazyPattern(
    r"\b(?:see a doctor|doctor|vet|veterinarian|emergency|poison control|treat(?:ment)?|"
    r"symptoms|first aid|prevent\w*|protect\w*|defend\w*|report\w*|hotline|therapist|counsel\w*|"
    r"recover\w*|stay safe|keep (?:it|them) (?:away|out of reach)|support (?:her|him|them)|"
    r"what (?:should|do|can) (?:i|we) (?:actually |even )?do if|bring (?:it|this|that) up|"
    r"(?:i|he|she|we|they|my \w+|our \w+) (?:accidentally )?(?:ate|swallowed|ingested|drank|"
    r"inhaled)|exposed to|bitten|stung|"
    r"is it safe|safe for|how (?:do|can|should) (?:i|we) (?:help|treat|stop|avoid|protect|"
    r"keep|cope|deal)|(?:say|talk|speak|reach out|listen|be there) (?:to|for) (?:her|him|them|"
    r"my \w+)|comfort|reassure|cheer (?:her|him|them) up|"
    r"records|archives?|sources|citations|references|bibliography|documentar\w*|museums?|"
    r"statistics|academic|historians?|scholars?|stor(?:e|ing|age)|maintenance|spot (?:it|them|one|"
    r"the signs|a scam)|(?:determine|tell|find out|check|know) (?:if|"
    r"whether)|signs of|warning signs|recogni[sz]e|keep (?:\w+ ){0,2}safe|safe from|make sure|"
    r"(?:doesn't|does not|won't|never) happen again|essays?|homework|lesson plans?|quiz|exam|"
    r"students|classroom|warn\w*|alert (?:my|the|our) \w+|which (?:states|countries|places) "
    r"(?:allow|permit|ban|have legali[sz]ed)|is (?:it|this|that) (?:legal|allowed|banned))\b"
)
# Questions about what others did in the past ask for history, not for means.
_HISTORICAL = LazyPattern(
    r"^\W*(?:\w+\W+){0,4}?(?:why|how|when|what|who|where|which \w+) (?:did|were|was|had) "
    r"(?!(?:i|we|you)\b)"
)
_FIRST_PERSON_ASK = LazyPattern(
    r"\b(?:can|could|should|would|do|will|might) (?:i|we)\b|\b(?:i|we) (?:want|need|plan|"
    r"intend|would like|am going|'m going)\b"
)
_HARM_MIN_HISTORY: Final = 0.5
# Fiction, media, lessons, investigation, or the user as the one harmed.
_FRAMING = LazyPattern(
    r"\b(?:novels?|thrillers?|mystery|fiction|story|stories|book|books|movie|movies|films?|"
    r"documentar\w*|series|tv show|episode|podcast|article|news|history (?:class|lesson|essay)|"
    r"video ?games?|(?:in|the|this|a) game|gaming|boss fight|teach(?:ing)?|"
    r"\d+(?:th|st|nd|rd) grad\w+|"
    r"moderat\w*|automod\w*|rules about|code of conduct|content polic\w*|"
    r"(?:in|for) (?:history|class|school)|(?<!\ba )lessons?|essay|homework|museum|historians?|"
    r"detectives?|investigators?|forensic\w*|toxicolog\w*|"
    r"(?:my|our) (?:\w+ ){0,2}(?:was|were|got|has been|had been) (?:\w+ )?(?:stolen|poisoned|"
    r"attacked|killed|shot|robbed|hurt|injured|bitten|hacked|scammed|assaulted|abused|bullied|"
    r"harassed|threatened)|(?:someone|somebody) (?:stole|hurt|attacked|poisoned|hacked|scammed|"
    r"robbed|broke into|threatened)|(?:there was|there's been) an? (?:shooting|stabbing|robbery|"
    r"attack|bombing|break-in|murder)|"
    # someone else's self-harm: the user is worried about them
    r"(?:cutting|hurting|harming|starving|burning|hurts|harms|cuts|starves) (?:herself|himself|"
    r"themselves))\b"
)
_FRAMED_TOPIC: Final = 0.5
_TOPIC_NOW: Final = 0.5  # weight of this turn's own harm topics in its follow-up context
_REFUSAL = LazyPattern(
    r"^\W*(?:i(?:'m| am) sorry|i apologi[sz]e|sorry),? but\b|\b(?:i(?:'m| am) sorry,? but|"
    r"i (?:can(?:not|'t)|won't|will not|must decline to|am unable to|am not able to)|i'm (?:unab"
    r"le|not able) to)\b[^.!?\n]{0,40}\b(?:help|assist|provide|support|comply|answer|fulfil\w*|"
    r"engage|give|share|generate|write|create|do that|continue|recommend|offer|discuss|"
    r"participate|tell)|\bas an ai(?: language model)?,? i (?:can(?:not|'t)|don't|do not|"
    r"won't)|\bi must (?:decline|refuse)|\b(?:it's|it is|it would be) (?:not appropriate|"
    r"inappropriate) (?:for me )?to\b"
)
# A reply that warns about harm tells the session where the conversation is heading.
_CAUTION = LazyPattern(
    r"\b(?:illegal|unlawful|against the law|unethical|immoral|harmful|dangerous|inappropriate|"
    r"offensive|hateful|discriminat\w*|violen(?:t|ce)|cruel\w*|abus(?:e|ive)|seek (?:professiona"
    r"l )?help|mental health professional|crisis (?:line|hotline|text line)|(?:do not|"
    r"don't|cannot|can't) (?:condone|support|promote|encourage|endorse)|strongly (?:advise|"
    r"recommend|discourage)\w* against|legal consequences|prohibited|not (?:safe|ethical|"
    r"legal))\b"
)
# Refusals for lack of ability, not on safety grounds.
_CAPABILITY = LazyPattern(
    r"\b(?:real[- ]time|browse|brows\w+|the internet|internet access|access to (?:the )?(?:inter"
    r"net|web|current|live|your|external|personal)|personal (?:opinions?|feelings|experiences?|"
    r"preferences|beliefs)|(?:have|hold|form) (?:opinions|feelings|emotions|preferences|"
    r"beliefs)|physical (?:body|form)|images?|pictures?|photos?|files?|attachments?|links?|"
    r"urls?|remember|memory|future events|predict|the weather|time zone|my knowledge cutoff)\b"
)
# Asking the model to take a side or pass judgment: harmless on most subjects, but on a
# contested one (politics, identity groups) it is what multi-turn baiting builds up to.
_OPINION = LazyPattern(
    r"\b(?:what(?:'s| is| are) (?:your|ur) (?:personal )?(?:opinions?|views?|take|stance|thoughts?|"
    r"perspective|feelings?|position)|what do you (?:personally )?(?:think|feel|make)|how do you "
    r"feel|do you (?:personally )?(?:like|support|agree|hate|dislike|prefer|believe|trust|approve|"
    r"side)|(?:do|don't) you (?:really |honestly |personally )?(?:think|agree|find|feel)(?: that)? "
    r"(?:he|she|they|it|it's|this|that|these|those|them)\b|don't you (?:think|agree|find|feel)|"
    r"wouldn't you (?:say|agree)|would you (?:say|agree|vote|choose|pick|prefer)|"
    r"(?:is|are|was|were|isn't|aren't) (?:it|this|that|they|he|she|these|those|them)\b"
    r"[^.?!\n]{0,40}\b(?:fair|right|wrong|justified|acceptable|okay|ok|good|bad|evil|better|"
    r"worse|beneficial|detrimental|moral|immoral|valid|true|to blame|responsible|a threat|"
    r"legitimate|inferior|superior|dangerous|out of line|exaggerated|unnatural|weird|sinful|a sin|"
    r"disgusting|normal|abnormal|promiscuous)|should (?:it|they|this|that|"
    r"he|she|these|those) be (?:allowed|banned|legal|illegal|punished|jailed|deported|stopped)|"
    r"who (?:would|do|should|will) you (?:choose|pick|vote|support|prefer|side)|which (?:one|side|"
    r"party|group|candidate|religion|race)\b[^.?!\n]{0,30}\b(?:do|would|should|is|are) (?:you|"
    r"better|worse|the (?:best|worst|most))|if you (?:had|have) to (?:choose|pick)|(?:best|"
    r"worst) thing about|(?:negative|positive|any|bad|hostile) (?:feelings?|views?|opinions?|"
    r"thoughts?) (?:towards?|about|on|against)|what (?:makes|made) (?:him|her|them|it|they|he|"
    r"she) so|why (?:do|does|are|is|did|were) (?:they|them|these|those|he|she)\b)\b"
)
# The judgment must be about the subject: named in the turn, or referred back to.
_SUBJECT_REF = LazyPattern(
    r"\b(?:they|them|their|theirs|he|him|his|she|her|it|these|those|(?:this|that|the) (?:\w+ )?"
    r"(?:group|movement|party|person|man|woman|law|laws|policy|issue|community|country|"
    r"government))\b"
)
_CONTESTED_DECAY: Final = 0.9
_CONTESTED_MIN: Final = 0.15
_REFUSAL_HARM: Final = 0.3
_CAUTION_HARM: Final = 0.15
# Quoted strings assigned to short names: a = "ignore all", b is 'instructions'.
_QUOTE = re.compile(r"[\"'`]")
_ASSIGNMENT = re.compile(r"(?::=|=|\bis)\s*[\"'`]")
_QUOTED_VALUE = re.compile(rf"[\"'`]([^\"'`\n]{{2,{FRAGMENT_CHARS}}})[\"'`]")
_NAME_BEFORE = re.compile(r"(?:^|[\s;,(])[a-z_]\w{0,15}\s*$")


def _rule(sig_id: str, name: str, category: Category, score: float, action: str) -> Signature:
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


_ESCALATION = _rule("SES-ESCALATION", "Escalating turn scores", "jailbreak", 0.45, "flag")
_PROBING_RULE = _rule("SES-PROBING", "Repeated probing", "system_prompt_extraction", 0.5, "flag")
_RETRY = _rule("SES-RETRY", "Probing after a refusal", "jailbreak", 0.5, "flag")
_HARM_REFERENCE = _rule(
    "SES-HARM-REFERENCE", "Follow-up to a harmful topic", "content_safety", 0.5, "flag"
)
_CONTESTED = _rule(
    "SES-CONTESTED-OPINION", "Opinion sought on a contested subject", "content_safety", 0.5, "flag"
)
_LEAK = _rule("SES-LEAK-AFTER-PROBE", "Leak after probing", "data_leakage", 0.7, "block")
# The semantic tier's readings, reported like signatures; their SEM- prefix names the tier.
_SEMANTIC: Final = {
    rule.id: rule
    for rule in (
        _rule("SEM-INJECTION", "Reads as a prompt injection", "injection", 0.5, "flag"),
        _rule("SEM-JAILBREAK", "Reads as a jailbreak", "jailbreak", 0.5, "flag"),
        _rule("SEM-HARMFUL", "Reads as a harmful request", "content_safety", 0.5, "flag"),
        _rule(
            "SEM-SESSION-INTENT",
            "Pursues the harmful aim of earlier turns",
            "content_safety",
            0.5,
            "flag",
        ),
    )
}


class Scanner:
    """Scans prompts and responses, alone or with the risk state of their session.

    Build one per profile and reuse it: the catalog is compiled once per process.
    """

    def __init__(
        self,
        profile: str = "default",
        *,
        catalog: Catalog | None = None,
        tier: str = "lexical",
    ) -> None:
        """Raises ConfigurationError for an unknown profile or tier, a broken catalog, or
        the semantic tier without numpy or its model files.

        `tier` "lexical" runs the signatures alone; "semantic" adds the embedding tier
        (turnwall.scan.semantic) to user turns.
        """
        self.policy: Policy = policy_for(profile)
        self.catalog: Catalog = catalog if catalog is not None else default_catalog()
        self.semantic: SemanticTier | None = _semantic_tier(tier)
        # The last text normalized: /v1/analyze and chat may scan one text as a prompt and
        # then as a response, and its views and chunks serve both directions.
        self._last: tuple[str, NormalizedText] | None = None

    def _normalize(self, text: str) -> NormalizedText:
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and (last[0] is text or last[0] == text):
            return last[1]
        normalized = normalize(text)
        self._last = (text, normalized)
        return normalized

    @overload
    def scan_input(
        self, text: str, state: dict[str, Any]
    ) -> tuple[ScanOutcome, dict[str, Any]]: ...
    @overload
    def scan_input(self, text: str, state: None) -> tuple[ScanOutcome, None]: ...
    @overload
    def scan_input(
        self, text: str, state: dict[str, Any] | None
    ) -> tuple[ScanOutcome, dict[str, Any] | None]: ...

    def scan_input(
        self, text: str, state: dict[str, Any] | None
    ) -> tuple[ScanOutcome, dict[str, Any] | None]:
        """Scan a user turn with its session's state (a dict, {} for a new session) and
        return the outcome and the state to store; `state` None means no session, and
        then None comes back."""
        normalized = self._normalize(text)
        findings = detect(self.catalog, normalized, "input")
        if state is None:
            if self.semantic is not None:
                findings += _semantic_findings(self.semantic.judge_input(text, None))
            return self._outcome(findings, "input"), None
        session = SessionState.from_dict(state)
        turn = session.turns_scanned + 1
        reasons: list[str] = []
        judgement = None
        if self.semantic is not None:
            judgement = self.semantic.judge_input(text, session.semantic, turn)
            session.semantic = judgement.context
            findings += _semantic_findings(judgement)
            reasons.extend(judgement.reasons)
        single = turn_score(findings)
        added = self._correlate_input(session, turn, normalized.base, findings, single, reasons)
        if judgement is not None:
            added = _second_opinion(judgement, added, reasons, turn)
        findings = findings + added
        return self._close_turn(session, turn, findings, "input", reasons)

    @overload
    def scan_output(
        self, text: str, state: dict[str, Any], prompt: str | None = None
    ) -> tuple[ScanOutcome, dict[str, Any]]: ...
    @overload
    def scan_output(
        self, text: str, state: None, prompt: str | None = None
    ) -> tuple[ScanOutcome, None]: ...
    @overload
    def scan_output(
        self, text: str, state: dict[str, Any] | None, prompt: str | None = None
    ) -> tuple[ScanOutcome, dict[str, Any] | None]: ...

    def scan_output(
        self, text: str, state: dict[str, Any] | None, prompt: str | None = None
    ) -> tuple[ScanOutcome, dict[str, Any] | None]:
        """Scan a model response, like `scan_input`. `prompt` is what the response
        answers (system prompt and/or user turn, if known): the response is also checked
        for verbatim copies of it and for access codes or secrets it contains."""
        normalized = self._normalize(text)
        findings = detect(self.catalog, normalized, "output", PromptContext.of(prompt))
        if state is None:
            return self._outcome(findings, "output"), None
        session = SessionState.from_dict(state)
        turn = session.turns_scanned + 1
        reasons: list[str] = []
        cautions = {found.group() for found in _CAUTION.finditer(normalized.base[:2000])}
        # Only a refusal on safety grounds says something about the request; "I can't
        # browse the web" does not.
        opening = normalized.base[:400]
        if _REFUSAL.search(opening) and (cautions or not _CAPABILITY.search(opening)):
            session.refusal_turn = turn
            session.harm = min(1.0, session.harm + _REFUSAL_HARM)
            session.harm_turn = turn
        elif cautions:
            session.harm = min(1.0, session.harm + _CAUTION_HARM * min(len(cautions), 2))
            session.harm_turn = turn
        leaks = [f for f in findings if f.signature.category == "data_leakage" and f.score >= 0.3]
        probe = next((t for t in reversed(session.probes) if 0 < turn - t <= _LEAK_AFTER), 0)
        if leaks and probe:
            reasons.append(
                f"leak_after_probe: output at turn {turn} leaks after probing input at turn {probe}"
            )
            findings = [*findings, Finding(_LEAK, _LEAK.score, None)]
        return self._close_turn(session, turn, findings, "output", reasons)

    def _correlate_input(
        self,
        session: SessionState,
        turn: int,
        base: str,
        findings: list[Finding],
        single: float,
        reasons: list[str],
    ) -> list[Finding]:
        added: list[Finding] = []
        seen = {f.signature.id for f in findings}
        added.extend(self._split_payload(session, turn, base, seen, reasons))
        probing = any(
            f.signature.category in _PROBING and f.score >= _PROBE_FLOOR for f in findings
        ) or any(f.signature.category in _PROBING for f in added)
        # Follow-up questions are short: their opening says whether they ask for more.
        follow = base[:_FOLLOW_UP_CHARS]
        harmful = [
            f
            for f in findings
            if f.signature.category == "content_safety" and f.signature.kind != "contested"
        ]
        # A harm topic met in a story, a lesson or as its victim sets up less than one
        # raised for its own sake.
        framed = any(f.signature.kind == "topic" for f in harmful) and bool(_FRAMING.search(follow))
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
        # What the session knows of harm, this turn's own topics included.
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
        if asks and _HISTORICAL.search(follow) and not _FIRST_PERSON_ASK.search(follow):
            asks = harm >= _HARM_MIN_HISTORY
        operational = asks and bool(_OPERATIONAL.search(follow))
        refers = asks and bool(_REFERENCE.search(follow))
        needed = _HARM_MIN if operational else _HARM_MIN_OPINION
        if asks and harm >= needed and (refers or harm_now > 0.0):
            strongest = max(
                (f.score for f in findings if f.signature.category == "content_safety"),
                default=0.0,
            )
            if strongest < _HARM_REFERENCE.score:
                score = min(0.85, 0.3 + 0.8 * harm - (0.0 if operational else 0.1))
                added.append(Finding(_HARM_REFERENCE, score, None))
                reasons.append(
                    f"harmful_reference: turn {turn} follows up on a harmful topic "
                    f"from turn {session.harm_turn if session.harm > 0.0 else turn}"
                )
        if opinion and not helping:
            added.append(Finding(_CONTESTED, _CONTESTED.score, None))
            reasons.append(
                f"contested_opinion: turn {turn} asks for a side or a judgment on a contested "
                "subject"
            )
        session.contested = contested
        if probing:
            session.probes.append(turn)
            del session.probes[:-PROBES_KEPT]
        recent = [t for t in session.probes if turn - t < _PROBE_SPAN]
        if probing and len(recent) >= _PROBES_TO_FLAG:
            score = min(0.7, _PROBING_RULE.score + 0.05 * (len(recent) - _PROBES_TO_FLAG))
            added.append(Finding(_PROBING_RULE, score, None))
            reasons.append(
                f"repeated_probing: {len(recent)} probing attempts since turn {recent[0]}"
            )
        if retry_window and asks and (probing or harm_now >= _HARM_MIN or operational or refers):
            added.append(Finding(_RETRY, _RETRY.score, None))
            reasons.append(
                f"probe_after_refusal: turn {turn} retries after a refusal at turn "
                f"{session.refusal_turn}"
            )
        scores = [*session.scores, single][-SCORES_KEPT:]
        if (
            len(scores) >= 3
            and scores[-3] < scores[-2] < scores[-1]
            and scores[-1] >= 0.3
            and scores[-1] - scores[-3] >= 0.2
        ):
            added.append(Finding(_ESCALATION, _ESCALATION.score, None))
            reasons.append("escalation: rising scores over the last 3 user turns")
        session.scores = scores
        if harm_now > 0.0:
            session.harm_turn = turn
        session.harm = min(1.0, session.harm * _HARM_DECAY + harm_now)
        return added

    def _split_payload(
        self,
        session: SessionState,
        turn: int,
        base: str,
        seen: set[str],
        reasons: list[str],
    ) -> list[Finding]:
        """Rescan recent turns joined together; keep matches no single turn contained."""
        added: list[Finding] = []
        turns = [t for t, _ in session.window] + [turn]
        pieces = [text for _, text in session.window] + [base[:WINDOW_CHARS]]
        fragments = self._fragments(session, base)
        for names, parts in ((turns, pieces), ([], fragments)):
            if len(parts) < 2:
                continue
            for sig, first, last in split_matches(self.catalog, parts, "input"):
                if sig.id in seen:
                    continue
                seen.add(sig.id)
                added.append(Finding(sig, sig.score, None))
                where = f"turns {names[first]}-{names[last]}" if names else "string fragments"
                reasons.append(f"split_payload: {sig.category} assembled across {where}")
        session.window = [*session.window, (turn, base[-WINDOW_CHARS:])][-WINDOW_TURNS:]
        return added

    def _fragments(self, session: SessionState, base: str) -> list[str]:
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

    def _close_turn(
        self,
        session: SessionState,
        turn: int,
        findings: list[Finding],
        direction: Direction,
        reasons: list[str],
    ) -> tuple[ScanOutcome, dict[str, Any]]:
        outcome = self._outcome(findings, direction)
        contribution = outcome.score if outcome.score >= _WEAK_TURN else outcome.score / 2
        session.session_score = 1.0 - (1.0 - session.session_score * _RISK_DECAY) * (
            1.0 - contribution
        )
        session.decision = self.policy.decide(session.session_score, self.policy.session)
        decision = outcome.decision
        if session.decision != "allow" and outcome.score >= _SIGNAL:
            decision = stricter(decision, "flag")
        session.turns_scanned = turn
        if decision != "allow":
            session.flagged_turns += 1
        for category in {f.signature.category for f in findings if not f.signature.topical}:
            session.categories[category] = session.categories.get(category, 0) + 1
        for reason in reasons:
            session.remember_reason(reason)
        shown = list(reasons)
        if session.decision != "allow":
            shown += [r for r in session.reasons if r not in shown]
        verdict = SessionVerdict(
            turn=turn,
            session_score=round(session.session_score, 4),
            decision=session.decision,
            reasons=shown,
        )
        final = ScanOutcome(
            decision=decision, score=outcome.score, matches=outcome.matches, session=verdict
        )
        return final, session.to_dict()

    def _outcome(self, findings: list[Finding], direction: Direction) -> ScanOutcome:
        score = turn_score(findings)
        decision: Decision = self.policy.decide(
            score, self.policy.for_direction(direction), may_block=may_block(findings)
        )
        matches = [
            Match(
                signature_id=f.signature.id,
                category=f.signature.category,
                score=round(f.score, 4),
                span=f.span,
            )
            for f in sorted(findings, key=lambda f: (-f.score, f.signature.id))
        ]
        return ScanOutcome(decision=decision, score=score, matches=matches, session=None)


# --- semantic tier (issue 12) -----------------------------------------------------------
def _semantic_tier(tier: str) -> SemanticTier | None:
    """The semantic tier for `tier`, imported only when asked for (it needs numpy)."""
    if tier not in TIERS:
        raise ConfigurationError(f"unknown scan tier {tier!r} (known: {', '.join(TIERS)})")
    if tier == "lexical":
        return None
    try:
        from turnwall.scan.semantic.tier import SemanticTier
    except ImportError as exc:
        raise ConfigurationError(
            "the semantic scan tier needs numpy: pip install 'turnwall[semantic]'"
        ) from exc
    try:
        return SemanticTier()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"the semantic scan tier's model cannot load: {exc}") from exc


# Lexical session rules that judge where a conversation is heading from its words alone;
# with the semantic tier on, they stand only where it reads harm too. The reason prefix
# each rule writes (see _correlate_input) goes with it.
_OVERRULED: Final = {
    _HARM_REFERENCE.id: "harmful_reference:",
    _CONTESTED.id: "contested_opinion:",
    _ESCALATION.id: "escalation:",
}


def _second_opinion(
    judgement: SemanticJudgement, added: list[Finding], reasons: list[str], turn: int
) -> list[Finding]:
    """Drop the lexical session findings the semantic tier does not back."""
    if judgement.sees_harm:
        return added
    dropped = {f.signature.id for f in added if f.signature.id in _OVERRULED}
    if not dropped:
        return added
    prefixes = tuple(_OVERRULED[rule] for rule in dropped)
    reasons[:] = [reason for reason in reasons if not reason.startswith(prefixes)]
    reasons.append(
        f"semantic_tier: turn {turn} reads as benign in context; overruled "
        + ", ".join(sorted(dropped))
    )
    return [f for f in added if f.signature.id not in dropped]


def _semantic_findings(judgement: SemanticJudgement) -> list[Finding]:
    return [
        Finding(_SEMANTIC[found.signature_id], found.score, None) for found in judgement.findings
    ]
