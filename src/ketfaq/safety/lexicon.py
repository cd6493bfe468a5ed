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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ketfaq.prefilter import required_substrings

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


def _typed(model: type[BaseModel], section: dict[str, Any], where: str, skip: tuple[str, ...] = ()):
    """``section`` (less its exemplar lists) as ``model``, or a ValueError naming the bad key."""
    values = {k: v for k, v in section.items() if not k.endswith("exemplars") and k not in skip}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"safety lexicon: {problems}") from None


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
        macros: dict[str, str] = {k: str(v) for k, v in (data.get("macros") or {}).items()}
        replacements = tuple(
            (re.compile(pat), rep) for pat, rep in data["normalization"]["replacements"]
        )
        crisis: list[CrisisPattern] = []
        for group in data["crisis_patterns"]:
            gid, lang = group["id"], group.get("lang", "en")
            for i, pat in enumerate(group["patterns"]):
                crisis.append(
                    CrisisPattern(
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
            semantic=_typed(SemanticConfig, sem, "semantic", skip=("soft_cues", "informational_cues")),
            soft_cues=re.compile(sem["soft_cues"]),
            informational_cues=re.compile(sem["informational_cues"]),
            injection=tuple(
                _compile(p, macros, "out_of_scope.injection") for p in oos["injection"]
            ),
            opinion=tuple(_compile(p, macros, "out_of_scope.opinion") for p in oos["opinion"]),
            writing=tuple(_compile(p, macros, "out_of_scope.writing") for p in oos["writing"]),
            offtopic_terms=re.compile(oos["offtopic_terms"]),
            domain_terms=re.compile(oos["domain_terms"]),
            offtopic_semantic=_typed(OfftopicConfig, oos["offtopic_semantic"],
                                     "out_of_scope.offtopic_semantic"),
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
    # libyaml's C loader when present: the pure-Python one dominated a cold start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Lexicon.from_mapping(yaml.load(text, Loader=loader), source=source)


