"""Text helpers shared by the gate and the learned model: normalisation, sentences, clauses."""

from __future__ import annotations

import re
import unicodedata

from ketfaq.safety.lexicon import Lexicon, load_lexicon
from ketfaq.spelling import Speller

__all__ = ["normalize", "split_clauses", "sentences", "lexicon_speller", "WORD", "QUOTES"]

QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"', "ʼ": "'"})
_SENTENCE_SPLIT = re.compile(r"[.!?;¿¡\n]+|\s[-–—]+\s|\s*[–—]\s*")
_CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?;…])\s+|\n+|\s[-–—]+\s|,\s*(?=(?:but|and|so|because|honestly|tbh|also|anyway|though|"
    r"like|i|i'm|im|it's|its|everything|nothing|nobody|no one)\b)|\?\s*",
    re.IGNORECASE,
)
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize(text: str, lexicon: Lexicon | None = None) -> str:
    """Lower-case, straighten quotes, remove accents, expand contractions and slang."""
    lex = lexicon or load_lexicon()
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    text = re.sub(r"\bIM\b", "intramuscular", text)  # "IM injection", not "I'm"
    text = _fold(text.lower())
    for (pattern, replacement), strings in zip(lex.replacements, lex.replacement_strings):
        # Checked against the text as rewritten so far: an earlier replacement can create a match.
        if strings is None or any(map(text.__contains__, strings)):
            text = pattern.sub(replacement, text)
    text = text.replace("'", " ")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def sentences(normalized: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(normalized) if s and s.strip()]


def split_clauses(text: str) -> list[str]:
    """Split a message into sentence-like clauses (for per-clause embedding)."""
    parts = [p.strip(" ,;:-") for p in _CLAUSE_SPLIT.split(text) if p]
    return [p for p in parts if p]


def lexicon_speller(lexicon: Lexicon) -> Speller:
    """Corrections toward the lexicon's own words: its exemplars' words and the letter runs of its
    crisis patterns (e.g. "suicidal", "overdose", "myself"), so "sucidal" reads as "suicidal"."""
    counts: dict[str, int] = {}
    texts = [normalize(t, lexicon) for t in (*lexicon.crisis_exemplars, *lexicon.near_miss_exemplars)]
    for text in texts + [p.source.lower() for p in lexicon.crisis]:
        for word in WORD.findall(text):
            counts[word] = counts.get(word, 0) + 1
    return Speller(counts)
