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

import hashlib
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ketfaq.embedding import Encoder
from ketfaq.prefilter import PREFILTER_VERSION, LiteralPrefilter, required_substrings
from ketfaq.settings import Settings

__all__ = [
    "SafetyDecision",
    "SafetyGate",
    "Lexicon",
    "Analysis",
    "load_lexicon",
    "normalize",
    "detect_language",
    "split_clauses",
]

CRISIS = "crisis"
PERSONAL_ADVICE = "personal_advice"
OUT_OF_SCOPE = "out_of_scope"

_LEXICON_FILE = "safety_lexicon.yaml"


@dataclass(frozen=True, slots=True)
class SafetyDecision:
    """What the gate decided: ``kind`` is None for an ordinary question (go on to retrieval)."""

    kind: str | None
    reason: str
    language: str


# --------------------------------------------------------------------------------------------------
# Loading the lexicon
# --------------------------------------------------------------------------------------------------


@cache
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source)


@dataclass(frozen=True, slots=True)
class _CrisisPattern:
    id: str
    lang: str
    source: str  # the pattern with its macros expanded
    where: str  # its place in the lexicon file, for error messages
    negatable: bool
    past_guard: bool
    habitual_guard: bool
    negation_probe: bool
    message_scope: bool

    @property
    def regex(self) -> re.Pattern[str]:
        """Compiled on first use: with the prefilter most patterns are rarely needed, and compiling
        all ~340 took ~0.25 s of every start. :class:`SafetyGate` checks them all when the
        lexicon changes (see ``_crisis_prefilter``)."""
        return _compiled(self.source)

    def check(self) -> re.Pattern[str]:
        """The compiled pattern, or a ValueError naming where in the lexicon it is broken."""
        try:
            return self.regex
        except re.error as exc:
            raise ValueError(f"bad regex in {self.where}: {self.source!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    all_of: tuple[re.Pattern[str], ...]


def _expand(pattern: str, macros: dict[str, str]) -> str:
    # Macros may refer to earlier macros; expand until stable (bounded).
    for _ in range(3):
        new = pattern
        for name, value in macros.items():
            new = new.replace("{" + name + "}", value)
        if new == pattern:
            break
        pattern = new
    return pattern


def _words(items: Any, where: str) -> frozenset[str]:
    # YAML reads a bare no / yes / on / off as a boolean: insist on strings so a word is never lost.
    bad = [w for w in items if not isinstance(w, str)]
    if bad:
        raise ValueError(f"{where}: non-text entries {bad!r} (quote words like \"no\" in YAML)")
    return frozenset(items)


def _compile(pattern: str, macros: dict[str, str], where: str) -> re.Pattern[str]:
    try:
        return re.compile(_expand(pattern, macros))
    except re.error as exc:  # pragma: no cover - caught by the lexicon test
        raise ValueError(f"bad regex in {where}: {pattern!r}: {exc}") from exc


@dataclass(frozen=True)
class Lexicon:
    """The compiled contents of ``safety_lexicon.yaml``."""

    replacements: tuple[tuple[re.Pattern[str], str], ...]
    # Per replacement, strings of which every match contains one (None: always run it).
    replacement_strings: tuple[frozenset[str] | None, ...]
    crisis: tuple[_CrisisPattern, ...]
    negators: frozenset[str]
    fillers: frozenset[str]
    boundaries: re.Pattern[str]
    past_distant: re.Pattern[str]
    past_recent: re.Pattern[str]
    habitual_markers: re.Pattern[str]
    habitual_now: re.Pattern[str]
    crisis_exemplars: tuple[str, ...]
    near_miss_exemplars: tuple[str, ...]
    semantic: dict[str, Any]
    soft_cues: re.Pattern[str]
    informational_cues: re.Pattern[str]
    injection: tuple[re.Pattern[str], ...]
    opinion: tuple[re.Pattern[str], ...]
    writing: tuple[re.Pattern[str], ...]
    offtopic_terms: re.Pattern[str]
    domain_terms: re.Pattern[str]
    offtopic_semantic: dict[str, Any]
    domain_exemplars: tuple[str, ...]
    offtopic_exemplars: tuple[str, ...]
    first_person: re.Pattern[str]
    personal_rules: tuple[_Rule, ...]
    stopwords: dict[str, frozenset[str]]
    marker_chars: dict[str, str]
    neutral: frozenset[str]
    min_language_hits: int
    foreign_spelling: re.Pattern[str]
    source: str = field(default="")

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str = "") -> Lexicon:
        macros: dict[str, str] = {k: str(v) for k, v in (data.get("macros") or {}).items()}
        replacements = tuple(
            (re.compile(pat), rep) for pat, rep in data["normalization"]["replacements"]
        )
        crisis: list[_CrisisPattern] = []
        for group in data["crisis_patterns"]:
            gid, lang = group["id"], group.get("lang", "en")
            for i, pat in enumerate(group["patterns"]):
                crisis.append(
                    _CrisisPattern(
                        id=gid,
                        lang=lang,
                        source=_expand(pat, macros),
                        where=f"crisis_patterns[{gid}/{lang}][{i}]",
                        negatable=bool(group.get("negatable", True)),
                        past_guard=bool(group.get("past_guard", True)),
                        habitual_guard=bool(group.get("habitual_guard", False)),
                        negation_probe=bool(group.get("negation_probe", False)),
                        message_scope=group.get("scope", "sentence") == "message",
                    )
                )
        neg = data["negation"]
        sem = data["semantic"]
        oos = data["out_of_scope"]
        pa = data["personal_advice"]
        pa_macros = {**macros, **{k: str(v) for k, v in (pa.get("macros") or {}).items()}}
        rules = tuple(
            _Rule(
                id=r["id"],
                all_of=tuple(
                    _compile(p, pa_macros, f"personal_advice.rules[{r['id']}]") for p in r["all"]
                ),
            )
            for r in pa["rules"]
        )
        lang = data["language"]
        return cls(
            replacements=replacements,
            replacement_strings=tuple(required_substrings(p) for p, _ in replacements),
            crisis=tuple(crisis),
            negators=_words(neg["negators"], "negation.negators"),
            fillers=_words(neg["fillers"], "negation.fillers"),
            boundaries=re.compile(neg["boundaries"]),
            past_distant=re.compile(data["past"]["distant"]),
            past_recent=re.compile(data["past"]["recent"]),
            habitual_markers=re.compile(data["habitual"]["markers"]),
            habitual_now=re.compile(data["habitual"]["now"]),
            crisis_exemplars=tuple(str(x) for x in sem["crisis_exemplars"]),
            near_miss_exemplars=tuple(str(x) for x in sem["near_miss_exemplars"]),
            semantic={k: v for k, v in sem.items() if not k.endswith("exemplars")},
            soft_cues=re.compile(sem["soft_cues"]),
            informational_cues=re.compile(sem["informational_cues"]),
            injection=tuple(
                _compile(p, macros, "out_of_scope.injection") for p in oos["injection"]
            ),
            opinion=tuple(_compile(p, macros, "out_of_scope.opinion") for p in oos["opinion"]),
            writing=tuple(_compile(p, macros, "out_of_scope.writing") for p in oos["writing"]),
            offtopic_terms=re.compile(oos["offtopic_terms"]),
            domain_terms=re.compile(oos["domain_terms"]),
            offtopic_semantic={
                k: v for k, v in oos["offtopic_semantic"].items() if not k.endswith("exemplars")
            },
            domain_exemplars=tuple(oos["offtopic_semantic"]["domain_exemplars"]),
            offtopic_exemplars=tuple(oos["offtopic_semantic"]["offtopic_exemplars"]),
            first_person=re.compile(pa["first_person"]),
            personal_rules=rules,
            stopwords={
                k: _words(v, f"language.stopwords.{k}") for k, v in lang["stopwords"].items()
            },
            marker_chars={k: str(v) for k, v in (lang.get("marker_chars") or {}).items()},
            neutral=_words(lang.get("neutral") or (), "language.neutral"),
            min_language_hits=int(lang.get("min_hits", 2)),
            foreign_spelling=re.compile(lang.get("foreign_spelling") or r"(?!x)x"),
            source=source,
        )


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The compiled lexicon: ``path`` or the one shipped in ``ketfaq/data``."""
    if path is None:
        text = resources.files("ketfaq").joinpath("data", _LEXICON_FILE).read_text(encoding="utf-8")
        source = f"ketfaq/data/{_LEXICON_FILE}"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = str(path)
    # libyaml's C loader when present: the pure-Python one took ~2 s of every cold start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Lexicon.from_mapping(yaml.load(text, Loader=loader), source=source)


# --------------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"', "ʼ": "'"})
_SENTENCE_SPLIT = re.compile(r"[.!?;¿¡\n]+|\s[-–—]+\s|\s*[–—]\s*")
_CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?;…])\s+|\n+|\s[-–—]+\s|,\s*(?=(?:but|and|so|because|honestly|tbh|also|anyway|though|"
    r"like|i|i'm|im|it's|its|everything|nothing|nobody|no one)\b)|\?\s*",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize(text: str, lexicon: Lexicon | None = None) -> str:
    """Lower-case, straighten quotes, remove accents, expand contractions and slang."""
    lex = lexicon or load_lexicon()
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = re.sub(r"\bIM\b", "intramuscular", text)  # "IM injection", not "I'm"
    text = _fold(text.lower())
    for (pattern, replacement), strings in zip(lex.replacements, lex.replacement_strings):
        # Checked against the text as rewritten so far: an earlier replacement can create a match.
        if strings is None or any(map(text.__contains__, strings)):
            text = pattern.sub(replacement, text)
    text = text.replace("'", " ")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def _sentences(normalized: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(normalized) if s and s.strip()]


def split_clauses(text: str) -> list[str]:
    """Split a message into sentence-like clauses (for per-clause embedding)."""
    parts = [p.strip(" ,;:-") for p in _CLAUSE_SPLIT.split(text) if p]
    return [p for p in parts if p]


# Unambiguous scripts -> ISO 639-1 code; everything else non-Latin -> "unknown".
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"), ("CJK", "zh"), ("GREEK", "el"),
    ("HEBREW", "he"), ("THAI", "th"), ("DEVANAGARI", "hi"), ("ARABIC", "ar"),
    ("CYRILLIC", "unknown"),
)


def _script_language(text: str) -> str | None:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    latin = sum(1 for ch in letters if ch < "ɏ")  # Basic Latin .. Latin Extended-B
    if latin / len(letters) >= 0.5:
        return None
    found: dict[str, int] = {}
    for ch in letters:
        if ch < "ɏ":
            continue
        name = unicodedata.name(ch, "")
        for key, code in _SCRIPTS:
            if key in name:
                found[code] = found.get(code, 0) + 1
                break
        else:
            found["unknown"] = found.get("unknown", 0) + 1
    if "ja" in found:  # Japanese mixes kana with kanji
        return "ja"
    return max(found, key=found.__getitem__)


def detect_language(text: str, lexicon: Lexicon | None = None) -> str:
    """ISO 639-1 code of ``text`` ("en" unless there is clear evidence of another language).

    A stopword vote: each language scores one point per word of its stopword list (words listed as
    neutral count for nobody) and per marker character (ñ ¿ ¡ for Spanish...). Another language wins
    only with at least ``min_hits`` points and more points than English, so short or misspelled
    English questions ("side effects?", "ketamin anxeity side efects") stay English.
    """
    lex = lexicon or load_lexicon()
    script = _script_language(text)
    if script is not None:
        return script
    lowered = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    tokens = [t for t in re.split(r"[^\w']+|_|'(?=\W|$)", lowered) if t and not t.isdigit()]
    tokens = [t.strip("'") for t in tokens]
    expanded: list[str] = []
    for t in tokens:
        expanded.append(t)
        if "'" in t:  # c'est -> c'est, c, est ; j'ai -> j'ai, j, ai
            expanded.extend(p for p in t.split("'") if p)
    scores: dict[str, int] = {}
    for language, words in lex.stopwords.items():
        scores[language] = sum(1 for t in expanded if t in words and t not in lex.neutral)
    for language, chars in lex.marker_chars.items():
        scores[language] = scores.get(language, 0) + sum(lowered.count(c) for c in chars)
    english = scores.pop("en", 0)
    best = max(scores, key=lambda k: (scores[k], k == "es")) if scores else "en"
    if scores and scores[best] >= lex.min_language_hits and scores[best] > english:
        return best
    words = _WORD.findall(lowered)
    if english == 0 and len(words) >= 3 and (
        any(not ch.isascii() for w in words for ch in w) or lex.foreign_spelling.search(lowered)
    ):
        return best if scores and scores[best] >= 1 else "unknown"
    return "en"


# --------------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------------


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


def _cache_file(cache_dir: Path, kind: str, suffix: str, parts: list[str]) -> Path:
    """Where a start-up cache lives: named by a hash of everything its content depends on."""
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return cache_dir / f"{kind}-{key}{suffix}"


def _store(path: Path, data: bytes) -> None:
    """Write a cache file atomically; a read-only deployment just recomputes at every start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass


def _exemplar_vectors(encoder: Encoder, texts: list[str], cache_dir: Path) -> np.ndarray:
    """Exemplar vectors in one batch call, cached on disk per encoder and exemplar list.

    Embedding ~250 exemplars took ~1.7 s of every cold start; the cache key changes whenever the
    lexicon or the encoder (model, export or variant) changes, so a stale vector is never used.
    """
    fingerprint = getattr(encoder, "fingerprint", getattr(encoder, "variant", ""))
    path = _cache_file(cache_dir, "exemplars", ".npy", [getattr(encoder, "name", ""), fingerprint, *texts])
    try:
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    _store(path, buffer.getvalue())
    return vectors


def _crisis_prefilter(patterns: list[_CrisisPattern], cache_dir: Path) -> LiteralPrefilter:
    """The required-substring prefilter of the sentence patterns, its analysis cached on disk.

    The cache is keyed by the patterns themselves and the analysis version. On a miss (a new or
    edited lexicon) every pattern is compiled, so a broken one stops the start with its place in
    the file; on a hit the patterns are the ones that compiled before, and each is compiled when
    a sentence first needs it. Together that saves ~0.4 s of every start.
    """
    path = _cache_file(cache_dir, "prefilter", ".json",
                       [f"prefilter-v{PREFILTER_VERSION}", *(p.source for p in patterns)])
    try:
        cached = json.loads(path.read_text("utf-8"))
        if len(cached) == len(patterns):
            return LiteralPrefilter([frozenset(s) if s is not None else None for s in cached])
    except (OSError, ValueError):
        pass
    required = [required_substrings(p.check()) for p in patterns]
    _store(path, json.dumps([sorted(s) if s is not None else None for s in required]).encode())
    return LiteralPrefilter(required)


class SafetyGate:
    """Routes a question to crisis / personal_advice / out_of_scope, or None for retrieval.

    Semantic crisis test, with c the best cosine to a crisis exemplar and n the best to a
    near-miss exemplar: crisis if ``c >= settings.crisis_threshold`` and ``c - n >= margin`` (the
    nearest exemplar is a crisis one), or ``c >= t`` and ``c - n >= m`` for one of the ``[t, m]``
    tiers of the lexicon file (less similar but clearly on the crisis side), or
    ``c >= high_threshold``. Informational framing raises every bar; text only about the distant
    past, or a clause holding a negated crisis phrase, is left to the lexicon.

    The exemplars are embedded once, in one batch, here; :meth:`classify` makes no encoder call
    when the caller passes ``question_vector``, except one batch of clauses for multi-clause
    messages with a crisis cue (about 7% of messages).
    """

    def __init__(
        self, encoder: Encoder, settings: Settings, *, lexicon: Lexicon | None = None
    ) -> None:
        self._encoder = encoder
        self._lex = lex = lexicon or load_lexicon()
        self._threshold = float(settings.crisis_threshold)
        sem = lex.semantic
        self._margin = float(sem.get("margin", 0.0))
        self._tiers = tuple((float(t), float(m)) for t, m in sem.get("tiers", ()))
        self._message_tiers = tuple((float(t), float(m)) for t, m in sem.get("message_tiers", ()))
        self._high = float(sem.get("high_threshold", 0.8))
        self._info_penalty = float(sem.get("informational_penalty", 0.05))
        self._clause_gate = float(sem.get("clause_gate", 0.3))
        self._min_clause_words = int(sem.get("min_clause_words", 3))
        ots = lex.offtopic_semantic
        self._ot_threshold = float(ots.get("threshold", 0.45))
        self._ot_margin = float(ots.get("margin", 0.1))

        self._message_patterns = tuple(p for p in lex.crisis if p.message_scope)
        self._sentence_patterns = tuple(p for p in lex.crisis if not p.message_scope)
        for pattern in self._message_patterns:
            pattern.check()
        self._prefilter = _crisis_prefilter(list(self._sentence_patterns),
                                            settings.model_cache_dir / "safety")

        groups = [
            lex.crisis_exemplars,
            lex.near_miss_exemplars,
            lex.domain_exemplars,
            lex.offtopic_exemplars,
        ]
        texts = [t for g in groups for t in g]
        vectors = _exemplar_vectors(encoder, texts, settings.model_cache_dir / "safety")
        if vectors.shape[0] != len(texts):
            raise ValueError("encoder returned a different number of vectors than texts")
        self._dim = vectors.shape[1]
        bounds = np.cumsum([0] + [len(g) for g in groups])
        self._crisis_vecs, self._near_vecs, self._domain_vecs, self._offtopic_vecs = (
            np.ascontiguousarray(vectors[bounds[i] : bounds[i + 1]]) for i in range(4)
        )
        for v in (self._crisis_vecs, self._near_vecs, self._domain_vecs, self._offtopic_vecs):
            v.setflags(write=False)

    # ---------------------------------------------------------------- public API

    def classify(self, question: str, question_vector: np.ndarray | None = None) -> SafetyDecision:
        """The decision for ``question``; ``question_vector`` is its embedding, if computed."""
        return self.analyze(question, question_vector).decision

    def analyze(self, question: str, question_vector: np.ndarray | None = None) -> Analysis:
        """Like :meth:`classify`, with the scores that led to the decision."""
        lex = self._lex
        text = question if isinstance(question, str) else str(question)
        if not text.strip():
            return Analysis(SafetyDecision(None, "empty", "unknown"), "", "unknown")
        normalized = normalize(text, lex)
        language = detect_language(text, lex)
        sentences = _sentences(normalized)

        # 1. Crisis lexicon (all languages, whatever the detected language).
        hit, negated = self._crisis_lexicon(sentences)
        if hit is not None:
            pattern_id, pattern_lang = hit
            lang = language
            if lang in ("en", "unknown") and pattern_lang != "en":
                lang = pattern_lang
            return Analysis(
                SafetyDecision(CRISIS, f"crisis:lexicon:{pattern_id}", lang),
                normalized, lang, lexicon_hit=pattern_id,
            )

        # 2. Crisis semantics (English only: the embedding model is English).
        crisis_score = near_score = 0.0
        clause_scores: tuple[tuple[str, float, float], ...] = ()
        clauses_encoded = False
        vector: np.ndarray | None = None
        if language == "en":
            vector = self._vector(text, question_vector)
            crisis_score, near_score = self._scores(vector)
            penalty = self._penalty(normalized)
            # A negated crisis phrase ("I'm not suicidal") looks like a crisis to the embedding
            # model, which ignores negation: then only clauses without such a phrase are judged.
            if not negated and self._is_crisis(crisis_score, near_score, penalty, whole=True):
                return Analysis(
                    SafetyDecision(CRISIS, "crisis:semantic", language), normalized, language,
                    crisis_score=crisis_score, near_miss_score=near_score,
                )
            clauses = [
                c for c in split_clauses(text) if len(_WORD.findall(c)) >= self._min_clause_words
            ]
            # Clauses get their own (one batch) encoder call only when there are several and a cheap
            # cue says it may be worth it: crisis text hidden in an ordinary question.
            if len(clauses) >= 2 and (
                lex.soft_cues.search(normalized) or crisis_score >= self._clause_gate
            ):
                clauses_encoded = True
                cvecs = np.asarray(self._encoder.encode(clauses), dtype=np.float32)
                scored = []
                for clause, cvec in zip(clauses, cvecs):
                    c_score, n_score = self._scores(cvec)
                    scored.append((clause, c_score, n_score))
                    c_norm = normalize(clause, lex)
                    if negated and self._crisis_lexicon(_sentences(c_norm))[1]:
                        continue
                    if self._is_crisis(c_score, n_score, self._penalty(c_norm)):
                        return Analysis(
                            SafetyDecision(CRISIS, "crisis:semantic:clause", language),
                            normalized, language, crisis_score=crisis_score,
                            near_miss_score=near_score, clause_scores=tuple(scored),
                            clauses_encoded=True,
                        )
                clause_scores = tuple(scored)

        def done(kind: str | None, reason: str) -> Analysis:
            return Analysis(
                SafetyDecision(kind, reason, language), normalized, language,
                crisis_score=crisis_score, near_miss_score=near_score,
                clause_scores=clause_scores, clauses_encoded=clauses_encoded,
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
            if len(_WORD.findall(text)) >= 3:
                vector = self._vector(text, question_vector) if vector is None else vector
                domain = float(np.max(self._domain_vecs @ vector))
                offtopic = float(np.max(self._offtopic_vecs @ vector))
                if offtopic >= self._ot_threshold and offtopic - domain >= self._ot_margin:
                    return done(OUT_OF_SCOPE, "out_of_scope:unrelated:semantic")

        return done(None, "ordinary")

    # ---------------------------------------------------------------- internals

    def _vector(self, text: str, given: np.ndarray | None) -> np.ndarray:
        if given is not None:
            vec = np.asarray(given, dtype=np.float32).reshape(-1)
            if vec.shape[0] != self._dim:
                raise ValueError(
                    f"question_vector has dimension {vec.shape[0]}, expected {self._dim}"
                )
            return vec
        return np.asarray(self._encoder.encode([text]), dtype=np.float32)[0]

    def _scores(self, vector: np.ndarray) -> tuple[float, float]:
        return (
            float(np.max(self._crisis_vecs @ vector)),
            float(np.max(self._near_vecs @ vector)),
        )

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
        return self._info_penalty if lex.informational_cues.search(normalized) else 0.0

    def _is_crisis(
        self, crisis: float, near: float, penalty: float, *, whole: bool = False
    ) -> bool:
        """The semantic test (see ``semantic`` in the lexicon file); penalty raises every bar."""
        if crisis >= self._high + penalty:
            return True
        tiers = [(self._threshold, self._margin), *self._tiers]
        if whole:
            tiers.extend(self._message_tiers)
        return any(
            crisis >= threshold + penalty and crisis - near >= margin + penalty
            for threshold, margin in tiers
        )

    def _crisis_lexicon(self, sentences: list[str]) -> tuple[tuple[str, str] | None, bool]:
        """The first crisis pattern that matches (id, language); whether a negated one was seen."""
        lex = self._lex
        negated = False
        # Message-scope patterns see every sentence at once (" . " between them).
        message = " . ".join(sentences)
        for pattern in self._message_patterns:
            if pattern.regex.search(message):
                return (pattern.id, pattern.lang), negated
        for sentence in sentences:
            # Only patterns whose required strings occur in the sentence can match it.
            candidates = [self._sentence_patterns[i] for i in self._prefilter.candidates(sentence)]
            if not candidates:
                continue
            distant = lex.past_distant.search(sentence)
            in_past = bool(distant) and not lex.past_recent.search(
                lex.past_distant.sub(" ", sentence)
            )
            habitual = bool(lex.habitual_markers.search(sentence)) and not lex.habitual_now.search(
                sentence
            )
            for pattern in candidates:
                if pattern.past_guard and in_past:
                    continue
                if pattern.habitual_guard and habitual:
                    continue
                for match in pattern.regex.finditer(sentence):
                    if pattern.negatable and self._negated(sentence[: match.start()]):
                        negated = True
                        continue
                    if pattern.negation_probe:
                        continue
                    return (pattern.id, pattern.lang), negated
        return None, negated

    def _negated(self, prefix: str) -> bool:
        """True if ``prefix`` (the sentence up to a hit) ends with a negation governing the hit."""
        lex = self._lex
        pieces = lex.boundaries.split(prefix)
        last = pieces[-1] if pieces else prefix
        words = _WORD.findall(last)[-8:]
        for word in reversed(words):
            if word in lex.negators:
                return True
            if word in lex.fillers:
                continue
            return False
        return False
