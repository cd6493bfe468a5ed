"""Matching the crisis lexicon sentence by sentence, with its negation, past and habitual guards."""

from __future__ import annotations

from pathlib import Path

from ketfaq.safety.cache import crisis_prefilter
from ketfaq.safety.lexicon import Lexicon
from ketfaq.safety.text import WORD

__all__ = ["CrisisMatcher", "referral_for_pattern"]

# Which help a lexicon hit needs: a medical emergency gets 911 first, danger from another person
# the violence line; everything else the suicide and crisis line.
_REFERRALS = {
    "medical-emergency": "emergency",
    "overdose-ingestion": "emergency",
    "danger-from-others": "danger",
}


def referral_for_pattern(pattern_id: str) -> str:
    """``crisis``, ``emergency`` or ``danger`` for a crisis pattern group id."""
    return _REFERRALS.get(pattern_id, "crisis")


class CrisisMatcher:
    """The crisis patterns of a lexicon, checked once and prefiltered; read-only after init."""

    def __init__(self, lexicon: Lexicon, cache_dir: Path) -> None:
        self.lexicon = lexicon
        self.message_patterns = tuple(p for p in lexicon.crisis if p.message_scope)
        self.sentence_patterns = tuple(p for p in lexicon.crisis if not p.message_scope)
        for pattern in self.message_patterns:
            pattern.check()
        self.prefilter = crisis_prefilter(list(self.sentence_patterns), cache_dir)

    def match(self, sentences: list[str]) -> tuple[tuple[str, str] | None, bool]:
        """The first crisis pattern that matches (id, language); whether a negated one was seen."""
        lex = self.lexicon
        negated = False
        # Message-scope patterns see every sentence at once (" . " between them).
        message = " . ".join(sentences)
        for pattern in self.message_patterns:
            if pattern.regex.search(message):
                return (pattern.id, pattern.lang), negated
        for sentence in sentences:
            # Only patterns whose required strings occur in the sentence can match it.
            candidates = [self.sentence_patterns[i] for i in self.prefilter.candidates(sentence)]
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
        lex = self.lexicon
        pieces = lex.boundaries.split(prefix)
        last = pieces[-1] if pieces else prefix
        words = WORD.findall(last)[-8:]
        for word in reversed(words):
            if word in lex.negators:
                return True
            if word in lex.fillers:
                continue
            return False
        return False
