"""Skip regexes that cannot match: a required-substring prefilter for a list of patterns.

Each pattern is parsed once into a set of literal strings of which every match must contain at
least one (as RE2 and Hyperscan do). For a text, only the patterns whose strings occur in it are
worth running. The safety lexicon has ~330 crisis patterns; an ordinary question contains the
strings of about three, so the gate runs three regexes instead of ~330.

The analysis is conservative: whatever it cannot reason about (a class, a lookaround, an
optional part, case-insensitive matching) contributes nothing, and a pattern with no required
string at all is always run. Dropping a pattern that could match would be a missed crisis, so
``tests/test_prefilter.py`` checks the rule on every QA question as well as by construction.

Example::

    prefilter = LiteralPrefilter.for_patterns([re.compile(r"\\bpills?\\b"), re.compile(r"over ?dose")])
    prefilter.candidates("took all my pills")   # [0]
"""

from __future__ import annotations

import re
from collections import defaultdict
from re import _constants as sre  # the parse-tree opcodes of the stdlib engine
from re import _parser as sre_parse

__all__ = ["PREFILTER_VERSION", "LiteralPrefilter", "required_substrings"]

PREFILTER_VERSION = 1  # bump when the analysis changes: cached results are then recomputed
_KEY = 3  # strings are indexed by their first three characters


def _selectivity(strings: frozenset[str]) -> tuple[int, int]:
    # Longer shortest-string first (rarer in text), then fewer strings.
    return min(map(len, strings)), -len(strings)


def _required(items: sre_parse.SubPattern) -> frozenset[str] | None:
    """The best required-string set of a parsed sequence, or None when nothing is required."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(strings: frozenset[str] | None) -> None:
        nonlocal best
        if strings and (best is None or _selectivity(strings) > _selectivity(best)):
            best = strings

    def flush() -> None:
        if run:
            consider(frozenset(["".join(run)]))
            run.clear()

    for op, arg in items:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        flush()  # anything else ends a literal run (conservative: shorter strings stay correct)
        if op is sre.SUBPATTERN:
            _group, add_flags, _del_flags, body = arg
            if not add_flags & (re.IGNORECASE | re.VERBOSE):
                consider(_required(body))
        elif op is sre.BRANCH:
            alternatives = [_required(branch) for branch in arg[1]]
            if all(alternatives):
                consider(frozenset().union(*alternatives))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, _high, body = arg
            if low >= 1:
                consider(_required(body))
    flush()
    return best


def required_substrings(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings of which every match of ``pattern`` contains one; None if the analysis can't tell."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE) or not isinstance(pattern.pattern, str):
        return None
    return _required(sre_parse.parse(pattern.pattern, pattern.flags))


class LiteralPrefilter:
    """Which of ``patterns`` might match a text (indices, in order); built once, thread-safe.

    ``required`` is :func:`required_substrings` of each pattern (None: always run it); parsing
    every pattern is slow next to a start-up, so callers may compute it once and cache it.
    """

    def __init__(self, required: list[frozenset[str] | None]) -> None:
        self._always = [i for i, strings in enumerate(required) if not strings]
        self._by_key: dict[str, set[str]] = defaultdict(set)
        self._short: set[str] = set()
        self._owners: dict[str, list[int]] = defaultdict(list)
        for index, strings in enumerate(required):
            for string in strings or ():
                self._owners[string].append(index)
                if len(string) < _KEY:
                    self._short.add(string)
                else:
                    self._by_key[string[:_KEY]].add(string)

    @classmethod
    def for_patterns(cls, patterns: list[re.Pattern[str]]) -> LiteralPrefilter:
        """The prefilter of ``patterns``, analysing each one."""
        return cls([required_substrings(p) for p in patterns])

    def present(self, text: str) -> set[str]:
        """The required strings that occur in ``text``."""
        found = {s for s in self._short if s in text}
        by_key = self._by_key
        for start in range(len(text) - _KEY + 1):
            strings = by_key.get(text[start:start + _KEY])
            if strings:
                found.update(s for s in strings if text.startswith(s, start))
        return found

    def candidates(self, text: str) -> list[int]:
        """Indices of the patterns that may match ``text``, ascending; the others cannot."""
        indices = set(self._always)
        for string in self.present(text):
            indices.update(self._owners[string])
        return sorted(indices)
