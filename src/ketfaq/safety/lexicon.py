"""The crisis lexicon: patterns, guards, exemplars and rules, compiled from ``data/safety_lexicon.yaml``.

The lexicon is the fast, auditable half of the gate: clinicians review the YAML without reading
Python, and a pattern that matches is a crisis whatever the learned model says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ketfaq.prefilter import required_substrings
from ketfaq.safety.lexicon_schema import validate_lexicon

__all__ = ["Lexicon", "OfftopicConfig", "SemanticConfig", "load_lexicon"]

_LEXICON_FILE = "safety_lexicon.yaml"


@cache
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source)


@dataclass(frozen=True, slots=True)
class CrisisPattern:
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
        all of them slowed every start. The prefilter cache compiles them all whenever the
        lexicon changes (``safety/cache.py``), so a broken pattern still stops the start."""
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


def _compile(pattern: str, macros: dict[str, str], where: str) -> re.Pattern[str]:
    try:
        return re.compile(_expand(pattern, macros))
    except re.error as exc:  # pragma: no cover - caught by the lexicon test
        raise ValueError(f"bad regex in {where}: {pattern!r}: {exc}") from exc


class SemanticConfig(BaseModel):
    """The exemplar test's numbers (``semantic`` in the lexicon file; see safety/semantic.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: float = 0.0
    tiers: tuple[tuple[float, float], ...] = ()
    message_tiers: tuple[tuple[float, float], ...] = ()
    high_threshold: float = Field(0.8, ge=0.0)
    informational_penalty: float = Field(0.05, ge=0.0)
    clause_gate: float = 0.3
    min_clause_words: int = Field(3, ge=1)


class OfftopicConfig(BaseModel):
    """When a question is nearer the off-topic exemplars than the domain ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = 0.45
    margin: float = 0.1


@dataclass(frozen=True)
class Lexicon:
    """The compiled contents of ``safety_lexicon.yaml``."""

    replacements: tuple[tuple[re.Pattern[str], str], ...]
    # Per replacement, strings of which every match contains one (None: always run it).
    replacement_strings: tuple[frozenset[str] | None, ...]
    crisis: tuple[CrisisPattern, ...]
    negators: frozenset[str]
    fillers: frozenset[str]
    boundaries: re.Pattern[str]
    past_distant: re.Pattern[str]
    past_recent: re.Pattern[str]
    habitual_markers: re.Pattern[str]
    habitual_now: re.Pattern[str]
    crisis_exemplars: tuple[str, ...]
    near_miss_exemplars: tuple[str, ...]
    semantic: SemanticConfig
    soft_cues: re.Pattern[str]
    informational_cues: re.Pattern[str]
    injection: tuple[re.Pattern[str], ...]
    opinion: tuple[re.Pattern[str], ...]
    writing: tuple[re.Pattern[str], ...]
    offtopic_terms: re.Pattern[str]
    domain_terms: re.Pattern[str]
    offtopic_semantic: OfftopicConfig
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
        """Compile the parsed YAML, after checking its shape (a bad key raises, naming it)."""
        f = validate_lexicon(data, source or "(mapping)")
        macros = f.macros
        crisis = tuple(
            CrisisPattern(
                id=group.id,
                lang=group.lang,
                source=_expand(pat, macros),
                where=f"crisis_patterns[{group.id}/{group.lang}][{i}]",
                negatable=group.negatable,
                past_guard=group.past_guard,
                habitual_guard=group.habitual_guard,
                negation_probe=group.negation_probe,
                message_scope=group.scope == "message",
            )
            for group in f.crisis_patterns
            for i, pat in enumerate(group.patterns)
        )
        sem, oos, pa, lang = f.semantic, f.out_of_scope, f.personal_advice, f.language
        pa_macros = {**macros, **pa.macros}
        rules = tuple(
            _Rule(id=r.id, all_of=tuple(_compile(p, pa_macros, f"personal_advice.rules[{r.id}]")
                                        for p in r.all))
            for r in pa.rules
        )
        replacements = tuple((re.compile(pat), rep) for pat, rep in f.normalization.replacements)
        return cls(
            replacements=replacements,
            replacement_strings=tuple(required_substrings(p) for p, _ in replacements),
            crisis=crisis,
            negators=frozenset(f.negation.negators),
            fillers=frozenset(f.negation.fillers),
            boundaries=re.compile(f.negation.boundaries),
            past_distant=re.compile(f.past.distant),
            past_recent=re.compile(f.past.recent),
            habitual_markers=re.compile(f.habitual.markers),
            habitual_now=re.compile(f.habitual.now),
            crisis_exemplars=tuple(sem.crisis_exemplars),
            near_miss_exemplars=tuple(sem.near_miss_exemplars),
            semantic=SemanticConfig.model_validate(sem.model_dump(
                exclude={"soft_cues", "informational_cues", "crisis_exemplars", "near_miss_exemplars"})),
            soft_cues=re.compile(sem.soft_cues),
            informational_cues=re.compile(sem.informational_cues),
            injection=tuple(_compile(p, macros, "out_of_scope.injection") for p in oos.injection),
            opinion=tuple(_compile(p, macros, "out_of_scope.opinion") for p in oos.opinion),
            writing=tuple(_compile(p, macros, "out_of_scope.writing") for p in oos.writing),
            offtopic_terms=re.compile(oos.offtopic_terms),
            domain_terms=re.compile(oos.domain_terms),
            offtopic_semantic=OfftopicConfig(threshold=oos.offtopic_semantic.threshold,
                                             margin=oos.offtopic_semantic.margin),
            domain_exemplars=tuple(oos.offtopic_semantic.domain_exemplars),
            offtopic_exemplars=tuple(oos.offtopic_semantic.offtopic_exemplars),
            first_person=re.compile(pa.first_person),
            personal_rules=rules,
            stopwords={k: frozenset(v) for k, v in lang.stopwords.items()},
            marker_chars=dict(lang.marker_chars),
            neutral=frozenset(lang.neutral),
            min_language_hits=lang.min_hits,
            foreign_spelling=re.compile(lang.foreign_spelling),
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
    # libyaml's C loader when present: the pure-Python one dominated a cold start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Lexicon.from_mapping(yaml.load(text, Loader=loader), source=source)


