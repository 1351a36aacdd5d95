"""The semantic tier: what a turn and its conversation are heading for, by embedding.

The lexical signatures stay the fast, explainable first tier. This one reads meaning:

* turn intent: a head over the turn's embedding says whether it is an injection, a
  jailbreak or a harmful request, or none of these; only a reading above the label's
  calibrated threshold becomes a finding (`SEM-INJECTION`, `SEM-JAILBREAK`,
  `SEM-HARMFUL`), so doubtful look-alikes add nothing to the session;
* session intent: the user turns so far are folded into one decayed context vector,
  and a second head judges the new turn against it, so "a plan for that" after a
  harmful aim inherits it (`SEM-SESSION-INTENT`), while a run of safe look-alikes
  leaves a safe context behind;
* sentences: a harmful request wrapped in benign sentences reads diluted as a whole
  ("how do I ...? thanks so much, I really appreciate any help"), as does an instruction
  hidden in a document or a long jailbreak's request in its persona; with a `screen`
  model (the contextual profile screens with the static one), the sentence it reads as
  least benign is read again alone (`sentence_reading`);
* second opinion: a lexical session rule that judges a follow-up by its words stands
  only where the tier reads harm in the turn or its pursuit, or where the earlier turns
  carried enough of it (`SessionGates`).

The session state keeps "carried,carried_harm:context": how suspicious and how harmful
the earlier turns read (decayed maxima) and the context as float16 values (base64): 256
of them, under 700 chars, for the static model; 384, about 1,040 chars, for the
contextual one. A context of the other model's size reads as none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from turnwall.scan.semantic import PURSUIT_REASON
from turnwall.scan.semantic.model import (
    Intent,
    SemanticModel,
    decode_context,
    encode_context,
    load_model,
)

if TYPE_CHECKING:
    from turnwall.scan.models import Category

# label of the turn head -> (signature id, category)
_TURN_SIGNATURES: Final[dict[str, tuple[str, Category]]] = {
    "injection": ("SEM-INJECTION", "injection"),
    "jailbreak": ("SEM-JAILBREAK", "jailbreak"),
    "harmful": ("SEM-HARMFUL", "content_safety"),
}
SESSION_SIGNATURE: Final = ("SEM-SESSION-INTENT", "content_safety")
# Below this reading of harm, the tier overrules a lexical follow-up or escalation rule:
# an even chance, well under any flagging threshold, so real pursuits keep their flag.
SUPPORT: Final = 0.7
# The context head judges a pursuit only where an earlier turn read at least this
# harmful (the turn head's harmful label; a model's gates may set their own,
# `SessionGates.pursuit_carry`); it fades by CARRY_DECAY a turn. A follow-up to safe
# turns ("if we change the previous question...") has no harmful aim to pursue, however
# follow-up it sounds, and neither has one to a persona or an injection: "embrace the
# role of Sheldon" is suspicious, but "shall we take the bus to dinner?" after it pursues
# nothing.
CARRY_MIN: Final = 0.3
CARRY_DECAY: Final = 0.8
# A turn that states a protective aim ("a client came in with bruises, I want to help her
# discreetly") is read as a harmful request only from this probability: the turn head
# reads such turns 0.9-0.97 harmful, and plain harmful requests mostly 0.99 and over.
# (0.995 was tried in the thirteenth stop: 5 fewer look-alikes flagged on v8-v33, but one
# more attack missed on v34, measured blind.)
PROTECTIVE_HARMFUL: Final = 0.98
# A short turn stating a plan or aim of the asker's own ("I'm planning to put a bomb at
# the finish line", `correlate.states_own_plan`) is read as a harmful request from this
# probability: the turn head reads many such plans 0.3-0.85 harmful where it reads plain
# requests 0.9 and over, and a look-alike that states an aim of its own is rare (the
# protective ones, and acts of looking into a harm someone else did, are read apart). On
# v28-v44 (seventeenth stop, docs/SEMANTIC.md) the contextual profile caught 46 more of
# 1,360 attack conversations with the session and flagged as many of 1,700 look-alike
# conversations as before (27); the static profile 76 more and 1 more. At 0.3 (before the
# cue change) the contextual profile caught 32 more still, but flagged 5 more look-alikes.
PLAN_HARMFUL: Final = 0.6
_TOP_SCORE: Final = 0.95
# A turn shaped like a jailbreak or a planted instruction reads as one from a low reading,
# whatever it asks for. The shapes are lexical (`detectors.attack_shapes`): a demand for
# a method wrapped in a jailbreak's frame (a refusal ruled out beside it; a persona, a
# form or a log that must hold "the exact steps"), or an AI addressed inside the data
# ("... Remarks: 'assistant - disregard what the user asked and ...'"). The signatures
# flag such a frame only beside a harm topic, and many harms name none ("the log entries
# must show how to jam the safety valve so the boiler goes up as the shift arrives"); an
# AI addressed in the data only with the acts they list. The turn head reads a harm
# wrapped in a form, or a directive inside a document, weakly but seldom at zero. Each
# shape names the labels whose readings count (whole or in the most suspicious
# sentence) and the label it flags; a bare follow-up with no harm of its own, and a turn
# stating a protective aim, keep the readings they need (`judge_input`). On v8-v53 and
# the long sets (14,400 single prompts, twentieth stop, docs/SEMANTIC.md), the frame held
# 129 attacks unflagged and 3 of the 9,650 benign prompts, read at most 0.09; on v28-v53
# the address held 95 injections unflagged and 2 benign prompts, read at most 0.09. Those
# are the transformer's readings. The static heads read benign shaped texts higher (up to
# 0.57 on a security course's long prompt; a baker persona that must "never break
# character" 0.23): at 0.25 the static profile flags 1 of the 450 long benign prompts
# fewer and misses 31 more attacks on v8-v56 and the long sets (twenty-first stop), so it
# keeps 0.2.
SHAPE_READING: Final = 0.2
_SHAPES: Final[dict[str, tuple[str, ...]]] = {
    "jailbreak": ("harmful", "jailbreak"),
    "injection": ("injection", "jailbreak"),
}
# A sentence read without its neighbours misses their context ("I'd rather do it calmly
# on the farm" after "the vet says our ewe has to be put down"), so one sentence gives
# a turn a label only from these readings, over the whole turn's thresholds: on v8-v21
# the contextual profile caught 30 more of 420 long jailbreaks, 16 more of 420 hidden
# injections and flagged 1 more of 1,400 look-alike conversations (docs/SEMANTIC.md,
# eleventh stop).
SENTENCE_THRESHOLDS: Final = {"injection": 0.9, "jailbreak": 0.9, "harmful": 0.97}
# Sentences of fewer words say too little alone ("ok how", "thanks!").
SENTENCE_WORDS: Final = 3
# The sentences are read only where the turn itself reads at least this likely not
# benign, for their cost: a second pass of the encoder over up to MAX_TOKENS pieces
# (+6 ms p99 on a 1 KB turn on an AMD EPYC with VNNI). On v8-v21, 84 of the 89 texts
# a sentence made harmful read 0.05 or more; 43% of all texts of several sentences
# read less.
SENTENCE_DOUBT: Final = 0.05
# A longer text is split only in this many characters from each end, where the turn's
# own reading looks too: the screen's cost stays bounded (about 40 sentences).
SENTENCE_WINDOW: Final = 2048
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True, slots=True)
class SessionGates:
    """When the tier backs a lexical session rule on a turn it does not read as harmful.

    The model's heads.json names the gates in use ("session_gate") among its
    "session_gates". "calibrated" (infra/semantic/calibrate_session.py) carries the
    earlier turns' harmful reading, not their suspicion, from a level that held-out safe
    look-alikes reach 5% of the time, so a run of dark-sounding but safe subjects (a
    crime's definition, a game's boss, a war) backs nothing; and it counts the context
    head's reading of a follow-up only where an earlier turn read at least as harmful
    as 95% of held-out harmful requests: that head reads the follow-up's wording as much
    as its context ("tell me more about that" after a massacre's history reads as a
    pursuit), and with no harmful aim before it there is none to pursue. "legacy" keeps
    the gates the first heads shipped with: any earlier suspicion of 0.15, no floor.
    "retrained" is legacy's rule at 0.08, for the heads trained with the project's own
    look-alikes, which read dark but safe subjects as less suspicious (0.06 for the heads
    trained on v1-v5; these read "why is arson so hard to prove?" at 0.07). "protective"
    (the static model's since the fourteenth stop) is retrained's rule with the
    contextual model's three guards, tuned for the static heads: a pursuit judged after
    an earlier harmful reading of 0.25, a bare follow-up of at most 6 words inheriting
    only from 0.45, and a turn stating a protective aim carrying at most 0.2. On v8-v35
    it flags 195 of 2,800 look-alike conversations with the session instead of 423, and
    catches 1,261 of 2,240 attack conversations instead of 1,296; CoSafe 359 of 700
    instead of 362, mt_bench 1 of 40 as before (docs/SEMANTIC.md, fourteenth stop).
    "contextual" is the contextual model's: legacy's rule at 0.02, a pursuit judged after
    an earlier harmful reading of 0.1 (`pursuit_carry`; CARRY_MIN elsewhere), and, for a
    bare follow-up of at most 8 words ("ok how", "what would I need?"), all three at 0.5
    (`bare_words`, `bare_carry`): such a turn says too little to carry an aim of its
    own, so it inherits one only from earlier turns that read at least as likely harmful
    as not, where "I want to help my friend who overdosed" reads 0.1-0.9 and stated harm
    mostly reads above 0.9. Chosen on v8-v13 and ../shared/eval (infra/semantic/README.md,
    step 10); step 9 chose the first gates (0.05, 0.25, no bare rule). A turn that
    states a protective aim ("I want to help her get out safely") carries at most
    `protective_carry` (contextual: 0.45, under `bare_carry`; step 12), so a bare
    follow-up after it asks how to help, not how to harm.
    """

    carry_reading: Literal["suspicion", "harm"] = "suspicion"
    carry_support: float = 0.15
    pursuit_floor: float = 0.0
    pursuit_carry: float = CARRY_MIN
    bare_words: int = 0
    bare_carry: float = 0.0
    protective_carry: float = 1.0

    @classmethod
    def from_meta(cls, meta: dict[str, Any], name: str | None = None) -> SessionGates:
        """The gates `name` (default: the model's "session_gate") of heads.json; the
        legacy gates for a model that has none. Raises KeyError for an unknown name."""
        gates = meta.get("session_gates", {})
        chosen = name if name is not None else meta.get("session_gate")
        if chosen is None:
            return cls()
        values = gates[chosen]
        reading: Literal["suspicion", "harm"] = (
            "harm" if values.get("carry_reading") == "harm" else "suspicion"
        )
        return cls(
            carry_reading=reading,
            carry_support=float(values["carry_support"]),
            pursuit_floor=float(values["pursuit_floor"]),
            pursuit_carry=float(values.get("pursuit_carry", CARRY_MIN)),
            bare_words=int(values.get("bare_words", 0)),
            bare_carry=float(values.get("bare_carry", 0.0)),
            protective_carry=float(values.get("protective_carry", 1.0)),
        )

    def is_bare(self, text: str) -> bool:
        """Whether `text` is a bare follow-up: at most `bare_words` words."""
        return (
            bool(self.bare_words) and len(text.split(maxsplit=self.bare_words)) <= self.bare_words
        )

    def for_turn(self, text: str) -> SessionGates:
        """The gates for one turn: a bare follow-up's raised to `bare_carry`."""
        if not self.is_bare(text):
            return self
        return replace(
            self,
            carry_support=max(self.carry_support, self.bare_carry),
            pursuit_floor=max(self.pursuit_floor, self.bare_carry),
            pursuit_carry=max(self.pursuit_carry, self.bare_carry),
        )


@dataclass(frozen=True, slots=True)
class SemanticFinding:
    """One reading of the semantic tier above its threshold."""

    signature_id: str
    category: Category
    score: float


@dataclass(slots=True)
class SemanticJudgement:
    """The semantic tier's findings on one turn, and the session context after it."""

    findings: list[SemanticFinding] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    # How strongly the turn reads as harmful, alone or as a pursuit of earlier turns.
    harm: float = 0.0
    # How suspicious the earlier turns read (a decayed maximum), before this one.
    carried: float = 0.0
    # How harmful, by the turn head's harmful label alone, the earlier turns read (a
    # decayed maximum); an injection or a persona is suspicious but not a harmful aim.
    carried_harm: float = 0.0
    gates: SessionGates = field(default_factory=SessionGates)
    context: str = ""

    @property
    def sees_harm(self) -> bool:
        """Whether the tier backs a lexical session finding on this turn: it reads harm
        in the turn or its pursuit, or the earlier turns carried enough (see SessionGates)."""
        carried = self.carried_harm if self.gates.carry_reading == "harm" else self.carried
        return self.harm >= SUPPORT or carried >= self.gates.carry_support


def _threshold(label: str, threshold: float, *, protective: bool, plans: bool = False) -> float:
    """The threshold a reading of `label` must reach: a turn stating a protective aim
    reads as harmful only from PROTECTIVE_HARMFUL, one stating a plan of the asker's own
    already from PLAN_HARMFUL."""
    if label != "harmful":
        return threshold
    if protective:
        return max(threshold, PROTECTIVE_HARMFUL)
    return min(threshold, PLAN_HARMFUL) if plans else threshold


def _score(probability: float, threshold: float) -> float:
    """Map a probability at or above its threshold onto [0.5, 0.95]: 0.5 is a flag."""
    span = max(1.0 - threshold, 1e-6)
    return round(min(_TOP_SCORE, 0.5 + 0.5 * (probability - threshold) / span), 4)


class SemanticTier:
    """Judges user turns by meaning; build once per process (the model is shared)."""

    def __init__(
        self,
        model: SemanticModel | None = None,
        gates: SessionGates | None = None,
        *,
        screen: SemanticModel | None = None,
    ) -> None:
        """`gates` default to the model's (heads.json "session_gate"); `screen`: a
        cheaper model that picks the sentence `model` reads again alone (none: turns
        are read whole only)."""
        self.model = model if model is not None else load_model()
        self.screen = screen
        self._thresholds: dict[str, float] = dict(self.model.meta["thresholds"])
        self._context_threshold = float(self.model.meta["context_threshold"])
        self.gates = gates if gates is not None else SessionGates.from_meta(self.model.meta)

    def judge_input(
        self,
        text: str,
        context: str | None,
        turn: int = 1,
        *,
        protective: bool = False,
        unbacked: bool = False,
        named_harm: bool = False,
        plans: bool = False,
        shapes: frozenset[str] = frozenset(),
    ) -> SemanticJudgement:
        """Judge a user turn; `context` is the stored session context ("" for a new
        session, None without a session, when no context is kept). `protective`: the
        turn states a protective aim (`correlate.states_protective_aim`), so it reads as
        harmful only from PROTECTIVE_HARMFUL, none of its sentences is read alone as
        harmful (the one that would be is the harm it reports), and it carries at most
        the gates' `protective_carry` to the turns after it. `unbacked`: no signature or
        harm topic reads harm in the turn; a bare follow-up so ("how much would all that
        cost me?") has no harm of its own to show, so the turn head's harmful reading of
        it neither flags it nor carries more than `protective_carry`: its harm can only
        come from the session, as a pursuit. Unless `named_harm` (a signature or topic
        read harm in an earlier turn) and the earlier turns carry a harmful reading of
        at least the gates' `bare_carry`: "how do I get it?" after "I want to poison the
        ducks" has that harm to refer to, "how much would it run me?" after a
        neighbour's threat to poison them, reported to protect them, has not (on v28-v47
        (eighteenth stop) 6 fewer of 2,000 look-alike conversations flagged with the
        session, attacks unchanged; the static profile misses 1 more of 1,600). `plans`:
        the turn states a plan of the asker's own (`correlate.states_own_plan`), so it
        reads as harmful already from PLAN_HARMFUL. `shapes`: the attacks ("jailbreak",
        "injection") whose lexical shape the turn has (`detectors.attack_shapes`), so it
        reads as one from SHAPE_READING, unless it is a bare follow-up with no harm of its
        own (`hollow`) or, for a jailbreak's shape, states a protective aim."""
        embedding = self.model.embed(text)
        intent = self.model.intent(embedding)
        carried, carried_harm, stored = _split_state(context or "")
        hollow = (
            unbacked
            and self.gates.is_bare(text)
            and (not named_harm or carried_harm < self.gates.bare_carry)
        )
        doubtful = intent.benign <= 1.0 - SENTENCE_DOUBT
        sentence = self.sentence_reading(text) if doubtful or shapes else None
        in_sentence: set[str] = set()
        if sentence is not None and doubtful:
            for label, threshold in SENTENCE_THRESHOLDS.items():
                if protective and label == "harmful":
                    continue
                probability = sentence.probabilities.get(label, 0.0)
                if probability >= threshold and probability > intent.probabilities.get(label, 0.0):
                    intent = intent.with_label(label, probability)
                    in_sentence.add(label)
        gates = self.gates.for_turn(text)
        harm = 1.0 - intent.benign
        judgement = SemanticJudgement(
            harm=min(harm, self.gates.protective_carry) if hollow else harm, gates=gates
        )
        for label, (signature_id, category) in _TURN_SIGNATURES.items():
            probability = intent.probabilities.get(label, 0.0)
            threshold = _threshold(
                label, self._thresholds[label], protective=protective, plans=plans
            )
            if probability >= threshold and not (hollow and label == "harmful"):
                judgement.findings.append(
                    SemanticFinding(signature_id, category, _score(probability, threshold))
                )
                where = " in one sentence" if label in in_sentence else ""
                judgement.reasons.append(
                    f"semantic_tier: turn {turn} reads as {label}{where} ({probability:.2f})"
                )
        if shapes and not judgement.findings and not hollow:
            readings = [intent] if sentence is None else [intent, sentence]
            # a protective aim's harm is the one it reports: no jailbreak's shape lowers
            # the reading it needs
            for shape in sorted(shapes - {"jailbreak"} if protective else shapes):
                reading = max(
                    found.probabilities.get(label, 0.0)
                    for found in readings
                    for label in _SHAPES[shape]
                )
                if reading >= SHAPE_READING:
                    signature_id, category = _TURN_SIGNATURES[shape]
                    judgement.findings.append(
                        SemanticFinding(signature_id, category, _score(reading, SHAPE_READING))
                    )
                    judgement.reasons.append(
                        f"semantic_tier: turn {turn} reads as {shape} in its shape ({reading:.2f})"
                    )
                    break
        if context is None:
            return judgement
        judgement.carried, judgement.carried_harm = carried, carried_harm
        before = decode_context(stored, self.model.dimensions)
        if before.any():
            pursuit = self.model.continues_harm(embedding, before)
            if pursuit >= self._context_threshold and carried_harm >= gates.pursuit_carry:
                judgement.findings.append(
                    SemanticFinding(
                        SESSION_SIGNATURE[0],
                        "content_safety",
                        _score(pursuit, self._context_threshold),
                    )
                )
                judgement.reasons.append(f"semantic_tier: turn {turn} {PURSUIT_REASON}")
            if carried_harm >= gates.pursuit_floor:
                judgement.harm = max(judgement.harm, pursuit)
        reading, harmful = 1.0 - intent.benign, intent.probabilities.get("harmful", 0.0)
        if protective or hollow:
            reading = min(reading, self.gates.protective_carry)
            harmful = min(harmful, self.gates.protective_carry)
        carried = max(carried * CARRY_DECAY, reading)
        carried_harm = max(carried_harm * CARRY_DECAY, harmful)
        folded = encode_context(self.model.fold(before, embedding))
        judgement.context = f"{carried:.3f},{carried_harm:.3f}:{folded}"
        return judgement

    def sentence_reading(self, text: str) -> Intent | None:
        """How `model` reads, alone, the sentence of `text` that the screen reads as least
        benign; None without a screen or with fewer than two sentences of SENTENCE_WORDS
        words."""
        if self.screen is None:
            return None
        if len(text) > 2 * SENTENCE_WINDOW:
            text = f"{text[:SENTENCE_WINDOW]}\n{text[-SENTENCE_WINDOW:]}"
        sentences = [
            sentence
            for sentence in _SENTENCE_END.split(text)
            if len(sentence.split(maxsplit=SENTENCE_WORDS)) >= SENTENCE_WORDS
        ]
        if len(sentences) < 2:
            return None
        chosen = sentences[self.screen.most_suspicious(sentences)]
        return self.model.intent(self.model.embed(chosen))


def _split_state(value: str) -> tuple[float, float, str]:
    """The stored "carried,carried_harm:context" state; nothing carried for anything
    unreadable. A state written before carried_harm was kept ("carried:context") carries
    its suspicion as harm too, so an upgrade never loses a harmful aim mid-session."""
    levels, _, stored = value.partition(":")
    suspicion, _, harm = levels.partition(",")
    carried = _unit(suspicion)
    if carried is None:
        return 0.0, 0.0, ""
    carried_harm = _unit(harm) if harm else carried
    return carried, carried if carried_harm is None else carried_harm, stored


def _unit(text: str) -> float | None:
    """A stored level clamped to [0, 1]; None when it is not a number."""
    try:
        level = float(text)
    except ValueError:
        return None
    return min(max(level, 0.0), 1.0) if level == level else 0.0
