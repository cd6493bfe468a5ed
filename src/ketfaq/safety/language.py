"""Which language a message is written in: script, then a stopword vote (see :func:`detect_language`)."""

from __future__ import annotations

import re
import threading
import unicodedata

from ketfaq.safety.lexicon import Lexicon, load_lexicon
from ketfaq.safety.text import QUOTES, WORD

__all__ = ["detect_language", "preload_identifier"]

# py3langid's second opinion on text the stopword vote calls English; chosen on the frozen val
# split (docs/SAFETY.md, "Language").
_SECOND_OPINION = ("en", "es", "pt", "fr", "it", "de")
_SECOND_OPINION_MIN = 0.95
_identifier_lock = threading.Lock()
_identifier_box: list = []


def _identifier():
    """py3langid's identifier, loaded once (~0.5 s) and shared; thread-safe."""
    with _identifier_lock:
        if not _identifier_box:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(_SECOND_OPINION))
            _identifier_box.append(identifier)
        return _identifier_box[0]


def preload_identifier() -> None:
    """Load the identifier on a background thread, so start-up doesn't wait for it."""
    threading.Thread(target=_identifier, name="ketfaq-langid", daemon=True).start()


def _second_opinion(text: str) -> str | None:
    """``es`` if py3langid is sure the text is Spanish, else None."""
    language, probability = _identifier().classify(text)
    return "es" if language == "es" and probability >= _SECOND_OPINION_MIN else None

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
    lowered = unicodedata.normalize("NFKC", text).translate(QUOTES).lower()
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
    words = WORD.findall(lowered)
    if english == 0 and len(words) >= 3 and (
        any(not ch.isascii() for w in words for ch in w) or lex.foreign_spelling.search(lowered)
    ):
        return best if scores and scores[best] >= 1 else "unknown"
    if len(words) >= 3 and _second_opinion(text):
        return "es"
    return "en"


