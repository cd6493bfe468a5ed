"""Read a misspelt word as the word it was meant to be, against a vocabulary of our own.

A word is corrected only when it is neither in the vocabulary nor an English word (symspellpy's
82,765-word frequency dictionary) and a vocabulary word lies one edit away (insertion, deletion,
substitution or transposition): "anxeity" -> "anxiety", "sucidal" -> "suicidal". Real words the
vocabulary lacks ("coffee", "medicaid", "death") stay as they are, and so do words under five
letters, where one edit too often makes another word.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from symspellpy import SymSpell, Verbosity

__all__ = ["MIN_LENGTH", "Speller", "english_words"]

MIN_LENGTH = 5
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """symspellpy's English frequency dictionary, as a set of words (read once, ~30 ms)."""
    source = resources.files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt")
    return frozenset(line.split(" ", 1)[0] for line in source.read_text("utf-8").splitlines())


class Speller:
    """Corrections toward ``vocabulary`` (word -> how often it is used; ties go to the commoner)."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self._known = frozenset(vocabulary)
        self._symspell = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
        for word, count in sorted(vocabulary.items()):
            if len(word) >= MIN_LENGTH - 1:
                self._symspell.create_dictionary_entry(word, count)
        self.word = lru_cache(maxsize=16384)(self._word)

    def _word(self, word: str) -> str:
        """``word`` (lower case), or the vocabulary word one edit away when it is a misspelling."""
        if len(word) < MIN_LENGTH or not word.isalpha() or word in self._known or word in english_words():
            return word
        found = self._symspell.lookup(word, Verbosity.TOP, max_edit_distance=1)
        return found[0].term if found else word

    def text(self, text: str) -> str:
        """``text`` (lower case) with every misspelt word replaced by its correction."""
        return _LETTERS.sub(lambda m: self.word(m.group()), text)
