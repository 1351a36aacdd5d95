"""The session-aware scanner: text and session state in, outcome and new state out.

A turn is first judged alone (every view of the normalized text against the catalog),
then against what the session remembers: the session rules of `turnwall.scan.correlate`
(split payloads, harmful follow-ups, contested opinions, repeated probing, retries after
a refusal, escalation, a leak after a probe) run in order and may add findings.

A decayed session score accumulates turn scores; crossing the policy's session
thresholds raises the session decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, overload

from turnwall.errors import ConfigurationError
from turnwall.scan.correlate import (
    CONTESTED,
    ESCALATION,
    HARM_REFERENCE,
    asks_whom_to_turn_to,
    correlate_input,
    correlate_output,
    opened_with_frame,
    session_rule,
    states_own_plan,
    states_protective_aim,
)
from turnwall.scan.detectors import attack_shapes
from turnwall.scan.engine import Finding, PromptContext, detect, may_block, turn_score
from turnwall.scan.loader import default_catalog
from turnwall.scan.models import Match, ScanOutcome, SessionVerdict, stricter
from turnwall.scan.normalize import NormalizedText, normalize
from turnwall.scan.policy import Policy, policy_for
from turnwall.scan.semantic import PURSUIT_REASON
from turnwall.scan.session import SessionState

if TYPE_CHECKING:
    from turnwall.models import Decision
    from turnwall.scan.catalog import Catalog
    from turnwall.scan.models import Direction
    from turnwall.scan.semantic.tier import SemanticJudgement, SemanticTier

TIERS: Final = ("lexical", "semantic", "contextual")

_RISK_DECAY: Final = 0.85
_WEAK_TURN: Final = 0.3  # turn scores below this count half toward the session score
_SIGNAL: Final = 0.25  # a turn this suspicious is flagged while its session is flagged


_PURSUIT: Final = "SEM-SESSION-INTENT"
# The semantic tier's readings, reported like signatures; their SEM- prefix names the tier.
_SEMANTIC: Final = {
    rule.id: rule
    for rule in (
        session_rule("SEM-INJECTION", "Reads as a prompt injection", "injection", 0.5, "flag"),
        session_rule("SEM-JAILBREAK", "Reads as a jailbreak", "jailbreak", 0.5, "flag"),
        session_rule("SEM-HARMFUL", "Reads as a harmful request", "content_safety", 0.5, "flag"),
        session_rule(
            _PURSUIT,
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
        (turnwall.scan.semantic) to user turns, on static embeddings; "contextual" adds
        it on the transformer's (onnxruntime).
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
        # Read where it changes something: the embedding tiers' thresholds, or a
        # content-safety rule's finding to drop (tens of µs on a 1 KB turn).
        reported = _reported(findings)
        protective = (self.semantic is not None or reported != findings) and states_protective_aim(
            normalized.base
        )
        if protective:
            findings = reported
        plans = self.semantic is not None and states_own_plan(normalized.base)
        shapes = attack_shapes(normalized.base) if self.semantic is not None else frozenset()
        unbacked = not any(f.signature.category == "content_safety" for f in findings)
        if state is None:
            if self.semantic is not None:
                judged = self.semantic.judge_input(
                    text,
                    None,
                    protective=protective,
                    unbacked=unbacked,
                    plans=plans,
                    shapes=shapes,
                )
                findings += _semantic_findings(judged)
            return self._outcome(findings, "input"), None
        session = SessionState.from_dict(state)
        turn = session.turns_scanned + 1
        reasons: list[str] = []
        judgement = None
        if self.semantic is not None:
            # In a session, a bare turn's own harmful reading counts where a signature or
            # topic has read harm in an earlier turn that the tier carries as harmful:
            # "How do I use it?" after a question about LSD has a harm to refer to that
            # its words do not name (see `SemanticTier.judge_input`).
            judgement = self.semantic.judge_input(
                text,
                session.semantic,
                turn,
                protective=protective,
                unbacked=unbacked,
                named_harm=bool(session.harm_turn),
                plans=plans,
                shapes=shapes,
            )
            session.semantic = judgement.context
            findings += _semantic_findings(judgement)
            reasons.extend(judgement.reasons)
            if session.flagged_turns == 0:
                findings = _excused_pursuit(session, turn, normalized.base, findings, reasons)
        single = turn_score(findings)
        added = correlate_input(
            self.catalog, session, turn, normalized.base, findings, reasons, single=single
        )
        if judgement is not None and session.flagged_turns == 0:
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
        findings = findings + correlate_output(session, turn, normalized.base, findings, reasons)
        return self._close_turn(session, turn, findings, "output", reasons)

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
        # Sorted: the stored state is then the same bytes whatever the process's hash seed.
        for category in sorted({f.signature.category for f in findings if not f.signature.topical}):
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
    """The semantic tier for `tier`, imported only when asked for: the lexical profile
    never imports numpy, whose import is most of what the semantic tier adds to a cold
    start."""
    if tier not in TIERS:
        raise ConfigurationError(f"unknown scan tier {tier!r} (known: {', '.join(TIERS)})")
    if tier == "lexical":
        return None
    from turnwall.scan.semantic.model import CONTEXTUAL_MODEL_DIR, MODEL_DIR, load_model
    from turnwall.scan.semantic.tier import SemanticTier

    try:
        if tier == "contextual":
            return SemanticTier(load_model(CONTEXTUAL_MODEL_DIR), screen=load_model(MODEL_DIR))
        return SemanticTier(load_model(MODEL_DIR))
    except ImportError as exc:
        raise ConfigurationError(
            f"the {tier} scan tier needs onnxruntime: pip install onnxruntime ({exc})"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"the {tier} scan tier's model cannot load: {exc}") from exc


# Lexical session rules that judge where a conversation is heading from its words alone;
# with the semantic tier on, they stand only where it reads harm too, or where an
# earlier turn of the session was already flagged (the aim is then established, by
# whichever tier: a plan asked for after a flagged arson plan is pursued). The reason
# prefix each rule writes (see turnwall.scan.correlate) goes with it.
_OVERRULED: Final = {
    HARM_REFERENCE.id: "harmful_reference:",
    CONTESTED.id: "contested_opinion:",
    ESCALATION.id: "escalation:",
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


def _excused_pursuit(
    session: SessionState, turn: int, base: str, findings: list[Finding], reasons: list[str]
) -> list[Finding]:
    """The lexical tier's second opinion on the semantic tier's: a pursuit read in a
    conversation that opened with a game, a sport or a subject studied ("in Hitman 3, how
    do I take out the target?", "what counts as extortion under the law?"), or on a turn
    asking whom to turn to ("who do I go to first?"), stands only where a signature reads
    harm in the turn itself."""
    if not any(f.signature.id == _PURSUIT for f in findings) or any(
        f.signature.category == "content_safety"
        and f.signature.kind == "pattern"
        and f.signature.id not in _SEMANTIC
        for f in findings
    ):
        return findings
    if opened_with_frame(session, turn):
        why = "framed_conversation: turn 1 named a game, a sport or a subject studied"
    elif asks_whom_to_turn_to(base):
        why = f"help_sought: turn {turn} asks whom to turn to"
    else:
        return findings
    reasons[:] = [reason for reason in reasons if not reason.endswith(PURSUIT_REASON)]
    reasons.append(f"{why}; overruled {_PURSUIT} at turn {turn}")
    return [f for f in findings if f.signature.id != _PURSUIT]


def _reported(findings: list[Finding]) -> list[Finding]:
    """A turn stating a protective aim reports the harm its content-safety rules read
    ("someone in our choir said they'd drug the conductor's water; how do I protect
    him?"): those rules' findings are dropped, its harm topics kept for the session."""
    return [
        f
        for f in findings
        if not (f.signature.category == "content_safety" and f.signature.kind == "pattern")
    ]


def _semantic_findings(judgement: SemanticJudgement) -> list[Finding]:
    return [
        Finding(_SEMANTIC[found.signature_id], found.score, None) for found in judgement.findings
    ]
