"""The crisis-lexicon prefilter never drops a pattern that could match: a missed crisis is the
worst bug we can ship, so the rule is checked on its own, on generated matches of every
pattern, and on every QA question against the full scan."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from ketfaq.prefilter import LiteralPrefilter, required_substrings
from ketfaq.safety import SafetyGate, load_lexicon, normalize
from ketfaq.safety import sentences as _sentences

from .conftest import load_qa


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"\boverdose\b", {"overdose"}),
    (r"(?:kill|end) (?:myself|my life)", {"self", " life"}),  # the parser factors out "my"
    (r"took (?:all|every) (?:my )?pills?", {"took "}),
    (r"(?:cut|burn)(?:ing)? myself", {" myself"}),
    (r"(?:a|bc)de", {"de"}),  # a literal run after the group beats the group's shorter strings
    (r"(?:ab)+c", {"ab"}),  # one repetition at least
])
def test_required_substrings(pattern: str, expected: set[str]) -> None:
    assert required_substrings(re.compile(pattern)) == expected


@pytest.mark.parametrize("pattern", [
    r"\w+", r"(?:pills)?", r"[a-z]{3}", r"(?:pills|\d+)", r"(?i)overdose", r"x*y?",
])
def test_patterns_without_a_sure_string_are_always_run(pattern: str) -> None:
    compiled = re.compile(pattern)
    assert required_substrings(compiled) is None
    assert LiteralPrefilter.for_patterns([compiled]).candidates("anything at all") == [0]


def test_candidates_are_the_patterns_whose_strings_occur() -> None:
    prefilter = LiteralPrefilter.for_patterns(
        [re.compile(r"\bpills?\b"), re.compile(r"over ?dose"), re.compile(r"ab|c")])
    assert prefilter.candidates("took all my pills") == [0]
    assert prefilter.candidates("an overdose of pills") == [0, 1]
    assert prefilter.candidates("c") == [2]  # strings shorter than the index key
    assert prefilter.candidates("nothing here") == []


def _sentence_patterns() -> list[re.Pattern[str]]:
    return [p.regex for p in load_lexicon().crisis if not p.message_scope]


def test_every_generated_match_of_every_crisis_pattern_is_a_candidate() -> None:
    import rstr  # a dev dependency: this test must run, never skip

    patterns = _sentence_patterns()
    prefilter = LiteralPrefilter.for_patterns(patterns)
    generate = rstr.Rstr(random.Random(20261123))
    checked = 0
    for index, pattern in enumerate(patterns):
        for _ in range(8):
            text = generate.xeger(pattern.pattern)
            if pattern.search(text):  # lookarounds make some generated strings non-matches
                checked += 1
                assert index in prefilter.candidates(text), (pattern.pattern[:120], text)
    assert checked > 5 * len(patterns)


def test_gate_reports_what_the_full_scan_reports_on_every_qa_question(encoder, settings) -> None:
    """Same pattern, same negation flag, with and without the prefilter (all 561+ records)."""
    gate = SafetyGate(encoder, settings)
    lexicon = load_lexicon()
    full_scan = SafetyGate(encoder, settings)
    full_scan._matcher.prefilter = LiteralPrefilter([None] * len(full_scan._matcher.sentence_patterns))
    questions = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)]
    questions += list(lexicon.crisis_exemplars) + list(lexicon.near_miss_exemplars)
    crises = 0
    for question in questions:
        sentences = _sentences(normalize(question, lexicon))
        expected = full_scan._matcher.match(sentences)
        assert gate._matcher.match(sentences) == expected, question
        crises += expected[0] is not None
    assert crises > 50  # the comparison covered many lexicon crises, not only ordinary questions


def _normalize_without_prefilter(text: str) -> str:
    lexicon = load_lexicon()
    return normalize(text, dataclasses.replace(
        lexicon, replacement_strings=(None,) * len(lexicon.replacements)))


def test_normalize_skips_only_replacements_that_cannot_match() -> None:
    """Every replacement's generated matches, and every QA question, normalize as with all
    replacements run: normalized text is what the crisis lexicon reads."""
    import rstr

    lexicon = load_lexicon()
    generate = rstr.Rstr(random.Random(20261124))
    texts = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)]
    for pattern, _ in lexicon.replacements:
        texts += [f"so {generate.xeger(pattern.pattern)} now" for _ in range(4)]
    assert all(strings for strings in lexicon.replacement_strings)  # the skip is really used
    changed = 0
    for text in texts:
        expected = _normalize_without_prefilter(text)
        assert normalize(text, lexicon) == expected, text
        changed += expected != text.lower().strip()
    assert changed > 100
