"""The safety router: decide, before retrieval, whether a question is a crisis, personal advice,
out of scope, or an ordinary question.

Every request passes through :meth:`SafetyGate.classify`. It combines three signals:

1. **A lexicon** of crisis patterns (English, Spanish, a few other languages) matched sentence
   by sentence on normalised text, with negation handling ("I'm not suicidal", "no quiero
   hacerme daño"), a past-event guard ("my cousin attempted suicide last year") and, for
   emergency symptoms, a habitual guard ("I feel like I can't breathe when I panic").
2. **Semantic similarity** of the question vector (the one the caller already computed for
   retrieval) to crisis exemplars, counter-balanced by near-miss exemplars (informational
   suicide questions, negations, hyperbole). Messages with several clauses and a cheap lexical
   cue also get each clause embedded, in one extra batch call, to catch crisis text inside an
   ordinary question.
3. **Rules** for out-of-scope (not English, instructions to the bot, writing requests,
   unrelated topics) and personal advice (own dose, own medicines, own candidacy, own symptoms).

A crisis overrides everything. All patterns and exemplars live in ``data/safety_lexicon.yaml``
so that clinicians can review them without reading Python.

Example::

    gate = SafetyGate(encoder, settings)
    gate.classify("what are your hours? I can't go on like this")
    # SafetyDecision(kind='crisis', reason='crisis:lexicon:suicidal-intent', language='en')

The gate is read-only after ``__init__`` and therefore safe to share between threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ketfaq.contract import Kind
from ketfaq.embedding import Encoder
from ketfaq.safety.language import detect_language, preload_identifier
from ketfaq.safety.lexicon import Lexicon, load_lexicon
from ketfaq.safety.matching import CrisisMatcher, referral_for_pattern
from ketfaq.safety.model import Band, RiskModel, extra_windows, load_model, screened_text
from ketfaq.safety.semantic import ExemplarScorer
from ketfaq.safety.text import WORD, lexicon_speller, normalize, sentences, split_clauses
from ketfaq.settings import Settings

__all__ = ["Analysis", "SafetyDecision", "SafetyGate", "readable", "without_surrogates"]

CRISIS, PERSONAL_ADVICE, OUT_OF_SCOPE = Kind.CRISIS, Kind.PERSONAL_ADVICE, Kind.OUT_OF_SCOPE


@dataclass(frozen=True, slots=True)
class SafetyDecision:
    """What the gate decided: ``kind`` is None for an ordinary question (go on to retrieval)."""

    kind: Kind | None
    reason: str
    language: str
    # For a crisis: which help it needs (crisis line, emergency 911, danger from another person).
    referral: str = "crisis"
    # Not a crisis, but worrying enough to add the check-in line with the crisis resources.
    check_in: bool = field(default=False, compare=False)
    risk: float = field(default=0.0, compare=False)  # the model's highest window probability




@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the gate looked at, for debugging and evaluation (:meth:`SafetyGate.analyze`)."""

    decision: SafetyDecision
    normalized: str
    language: str
    lexicon_hit: str | None = None
    crisis_score: float = 0.0
    near_miss_score: float = 0.0
    clause_scores: tuple[tuple[str, float, float], ...] = ()
    clauses_encoded: bool = False
    risk: float = 0.0


_NEVER = Band(crisis=1.0, check_in=1.0)


def without_surrogates(text: str) -> str:
    """``text`` with lone surrogates (which no encoder or JSON writer takes) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def readable(text: str) -> str:
    """``text`` with what no reader can use made harmless: lone surrogates and NULs."""
    return without_surrogates(text.replace("\x00", " ") if "\x00" in text else text)


class SafetyGate:
    """Routes a question to crisis / personal_advice / out_of_scope, or None for retrieval.

    The exemplars are embedded once, here; :meth:`classify` makes no encoder call when the caller
    passes ``question_vector``, except one batch for a message of several windows or several
    clauses with a crisis cue.
    """

    def __init__(
        self, encoder: Encoder, settings: Settings, *, lexicon: Lexicon | None = None,
        model: RiskModel | None = None, use_model: bool = True,
    ) -> None:
        self._encoder = encoder
        self._lex = lex = lexicon or load_lexicon()
        preload_identifier()
        self._matcher = CrisisMatcher(lex, settings.resolved_model_cache_dir() / "safety")
        self._speller = lexicon_speller(lex)
        # use_model=False: the rules and exemplars alone (layer tests, ablations in evaluation).
        self._model = (model or load_model(settings.safety_model_path)) if use_model else None

        self._exemplars = ExemplarScorer(encoder, lex, settings.crisis_threshold,
                                         settings.resolved_model_cache_dir() / "safety")
        self._dim = self._exemplars.dim
        if self._model is not None and self._model.dim != self._dim:
            raise ValueError(f"safety model expects {self._model.dim}-dimensional vectors, the "
                             f"encoder gives {self._dim}: retrain it with `ketfaq safety train`")

    # ---------------------------------------------------------------- public API

    def classify(self, question: str, question_vector: np.ndarray | None = None) -> SafetyDecision:
        """The decision for ``question``; ``question_vector`` is its embedding, if computed."""
        return self.analyze(question, question_vector).decision

    def analyze(self, question: str, question_vector: np.ndarray | None = None) -> Analysis:
        """Like :meth:`classify`, with the scores that led to the decision."""
        lex = self._lex
        text = readable(question if isinstance(question, str) else str(question))
        if not text.strip():
            return Analysis(SafetyDecision(None, "empty", "unknown"), "", "unknown")
        text = screened_text(text)  # every message is screened, whatever its length
        normalized = normalize(text, lex)
        language = detect_language(text, lex)
        parts = sentences(normalized)

        # 1. Crisis lexicon (all languages, whatever the detected language); a message with a
        #    misspelt word ("sucidal") is matched a second time with the word read as meant.
        hit, negated = self._matcher.match(parts)
        if hit is None:
            spelled = self._speller.text(normalized)
            if spelled != normalized:
                hit, negated_spelled = self._matcher.match(sentences(spelled))
                negated = negated or negated_spelled
        if hit is not None:
            pattern_id, pattern_lang = hit
            lang = language
            if lang in ("en", "unknown") and pattern_lang != "en":
                lang = pattern_lang
            return Analysis(
                SafetyDecision(CRISIS, f"crisis:lexicon:{pattern_id}", lang,
                               referral=referral_for_pattern(pattern_id)),
                normalized, lang, lexicon_hit=pattern_id,
            )

        # One vector for the whole message, shared by the semantic layer and the model.
        vector = self._vector(text, question_vector)

        # The learned risk model, per window (decides alone in step 3).
        risk, band = self._risk(text, language, vector)
        check_in = risk >= band.check_in
        agree = check_in or self._model is None  # without the model, exemplars decide alone

        # 2. Similarity to crisis exemplars (English only: the embedding model is English). The
        #    exemplars are our own sentences, so a match counts only when the learned model finds
        #    the message worrying too (at least the check-in band): two views must agree.
        crisis_score = near_score = 0.0
        clause_scores: tuple[tuple[str, float, float], ...] = ()
        clauses_encoded = False
        if language == "en":
            crisis_score, near_score = self._exemplars.scores(vector)
            penalty = self._penalty(normalized)
            # A negated crisis phrase ("I'm not suicidal") looks like a crisis to the embedding
            # model, which ignores negation: then only clauses without such a phrase are judged.
            if (not negated and agree
                    and self._exemplars.is_crisis(crisis_score, near_score, penalty, whole=True)):
                return Analysis(
                    SafetyDecision(CRISIS, "crisis:semantic", language), normalized, language,
                    crisis_score=crisis_score, near_miss_score=near_score,
                )
            clauses = [
                c for c in split_clauses(text) if len(WORD.findall(c)) >= self._lex.semantic.min_clause_words
            ]
            # Clauses get their own (one batch) encoder call only when there are several and a cheap
            # cue says it may be worth it: crisis text hidden in an ordinary question.
            if len(clauses) >= 2 and (
                lex.soft_cues.search(normalized) or crisis_score >= self._lex.semantic.clause_gate
            ):
                clauses_encoded = True
                cvecs = np.asarray(self._encoder.encode(clauses), dtype=np.float32)
                scored = []
                for clause, cvec in zip(clauses, cvecs):
                    c_score, n_score = self._exemplars.scores(cvec)
                    scored.append((clause, c_score, n_score))
                    c_norm = normalize(clause, lex)
                    if negated and self._matcher.match(sentences(c_norm))[1]:
                        continue
                    if agree and self._exemplars.is_crisis(c_score, n_score, self._penalty(c_norm)):
                        return Analysis(
                            SafetyDecision(CRISIS, "crisis:semantic:clause", language),
                            normalized, language, crisis_score=crisis_score,
                            near_miss_score=near_score, clause_scores=tuple(scored),
                            clauses_encoded=True,
                        )
                clause_scores = tuple(scored)

        # 3. The learned model alone. Past-only or negated text, and messages under four words,
        #    can only get the check-in line from it (the lexicon still judges those).
        guarded = (negated or len(WORD.findall(text)) < 4
                   or self._penalty(normalized) == float("inf"))
        if risk >= band.crisis and not guarded:
            return Analysis(SafetyDecision(CRISIS, "crisis:model", language, risk=risk),
                            normalized, language, crisis_score=crisis_score,
                            near_miss_score=near_score, clause_scores=clause_scores, risk=risk)

        def done(kind: Kind | None, reason: str) -> Analysis:
            return Analysis(
                SafetyDecision(kind, reason, language, check_in=check_in, risk=risk),
                normalized, language, crisis_score=crisis_score, near_miss_score=near_score,
                clause_scores=clause_scores, clauses_encoded=clauses_encoded, risk=risk,
            )

        # 3. Not English (and not a crisis): out of scope.
        if language != "en":
            return done(OUT_OF_SCOPE, f"out_of_scope:language:{language}")

        # 4. Instructions aimed at the bot, requests to write something.
        if any(p.search(normalized) for p in lex.injection):
            return done(OUT_OF_SCOPE, "out_of_scope:instruction")
        if any(p.search(normalized) for p in lex.writing):
            return done(OUT_OF_SCOPE, "out_of_scope:writing-request")

        # 5. Personal advice.
        if lex.first_person.search(normalized):
            for rule in lex.personal_rules:
                if all(p.search(normalized) for p in rule.all_of):
                    return done(PERSONAL_ADVICE, f"personal_advice:{rule.id}")

        # 6. Opinions asked of the bot, unrelated topics.
        if any(p.search(normalized) for p in lex.opinion):
            return done(OUT_OF_SCOPE, "out_of_scope:opinion")
        if not lex.domain_terms.search(normalized):
            if lex.offtopic_terms.search(normalized):
                return done(OUT_OF_SCOPE, "out_of_scope:unrelated")
            if len(WORD.findall(text)) >= 3:
                if self._exemplars.is_offtopic(vector):
                    return done(OUT_OF_SCOPE, "out_of_scope:unrelated:semantic")

        return done(None, "ordinary")

    # ---------------------------------------------------------------- internals

    def _risk(self, text: str, language: str, vector: np.ndarray) -> tuple[float, Band]:
        """The learned model's highest probability over the whole message and its windows (as in
        training), and the band of the message's regime."""
        if self._model is None:
            return 0.0, _NEVER
        extra = extra_windows(text)
        vectors = vector[None, :]
        if extra:
            vectors = np.vstack([vectors, np.asarray(self._encoder.encode(extra), dtype=np.float32)])
        regime = "spanish" if language == "es" else "long" if extra else "short"
        probabilities = self._model.probabilities([text, *extra], vectors)
        return float(np.max(probabilities)), self._model.band(regime)

    def _vector(self, text: str, given: np.ndarray | None) -> np.ndarray:
        if given is not None:
            vec = np.asarray(given, dtype=np.float32).reshape(-1)
            if vec.shape[0] != self._dim:
                raise ValueError(
                    f"question_vector has dimension {vec.shape[0]}, expected {self._dim}"
                )
            return vec
        return np.asarray(self._encoder.encode([text]), dtype=np.float32)[0]

    def _penalty(self, normalized: str) -> float:
        """How much harder the semantic test is for text framed as information or as the past.

        Text about the distant past only ("I self-harmed as a teen, I'm fine now") is not judged
        semantically at all (infinite penalty); the lexicon still applies its own past guard.
        """
        lex = self._lex
        if lex.past_distant.search(normalized) and not lex.past_recent.search(
            lex.past_distant.sub(" ", normalized)
        ):
            return float("inf")
        return lex.semantic.informational_penalty if lex.informational_cues.search(normalized) else 0.0
