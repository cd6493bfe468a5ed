"""The shape of ``data/safety_lexicon.yaml``, checked before anything is compiled from it.

Every section forbids keys it doesn't know, so a misspelled option ("negateable: false") stops
the start with its place in the file instead of silently meaning the default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["LexiconFile", "validate_lexicon"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _texts(value: Any) -> Any:
    # YAML reads a bare no / yes / on / off as a boolean: insist on strings so a word is never lost.
    if isinstance(value, list):
        bad = [w for w in value if not isinstance(w, str)]
        if bad:
            raise ValueError(f"non-text entries {bad!r} (quote words like \"no\" in YAML)")
    return value


class Normalization(_Section):
    replacements: list[tuple[str, str]]


class Negation(_Section):
    negators: list[str]
    fillers: list[str]
    boundaries: str

    _words = field_validator("negators", "fillers", mode="before")(_texts)


class Past(_Section):
    distant: str
    recent: str


class Habitual(_Section):
    markers: str
    now: str


class CrisisGroup(_Section):
    id: str
    lang: str = "en"
    patterns: list[str] = Field(min_length=1)
    negatable: bool = True
    past_guard: bool = True
    habitual_guard: bool = False
    negation_probe: bool = False
    scope: Literal["sentence", "message"] = "sentence"


class Semantic(_Section):
    margin: float = 0.0
    tiers: list[tuple[float, float]] = []
    message_tiers: list[tuple[float, float]] = []
    high_threshold: float = Field(0.8, ge=0.0)
    informational_penalty: float = Field(0.05, ge=0.0)
    clause_gate: float = 0.3
    min_clause_words: int = Field(3, ge=1)
    soft_cues: str
    informational_cues: str
    crisis_exemplars: list[str]
    near_miss_exemplars: list[str]


class OfftopicSemantic(_Section):
    threshold: float = 0.45
    margin: float = 0.1
    domain_exemplars: list[str]
    offtopic_exemplars: list[str]


class OutOfScope(_Section):
    injection: list[str]
    opinion: list[str]
    writing: list[str]
    offtopic_terms: str
    domain_terms: str
    offtopic_semantic: OfftopicSemantic


class PersonalRule(_Section):
    id: str
    all: list[str] = Field(min_length=1)


class PersonalAdvice(_Section):
    first_person: str
    macros: dict[str, str] = {}
    rules: list[PersonalRule]


class Language(_Section):
    min_hits: int = Field(2, ge=1)
    stopwords: dict[str, list[str]]
    marker_chars: dict[str, str] = {}
    neutral: list[str] = []
    foreign_spelling: str = r"(?!x)x"

    _words = field_validator("neutral", mode="before")(_texts)

    @field_validator("stopwords", mode="before")
    @classmethod
    def _stopword_texts(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for words in value.values():
                _texts(words)
        return value


class LexiconFile(_Section):
    """The whole file; sections are required, options inside them have the defaults shown."""

    version: Literal[1]
    normalization: Normalization
    macros: dict[str, str] = {}
    negation: Negation
    past: Past
    habitual: Habitual
    crisis_patterns: list[CrisisGroup]
    semantic: Semantic
    out_of_scope: OutOfScope
    personal_advice: PersonalAdvice
    language: Language


def validate_lexicon(data: Any, source: str) -> LexiconFile:
    """``data`` (the parsed YAML) as a :class:`LexiconFile`, or a ValueError naming every bad key."""
    try:
        return LexiconFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_where(data, e["loc"]) + f": {e['msg']}" for e in exc.errors())
        raise ValueError(f"safety lexicon {source}: {problems}") from None


def _where(data: Any, loc: tuple) -> str:
    """A location like ``crisis_patterns[suicidal-intent].negateable``: groups by id, not index."""
    parts, node = [], data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list):
            item = node[step] if step < len(node) else None
            label = item.get("id") if isinstance(item, dict) and item.get("id") else step
            parts[-1] += f"[{label}]"
            node = item
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)
