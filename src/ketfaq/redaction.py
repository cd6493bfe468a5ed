"""Remove what identifies a person from a visitor's message before anything stores it.

Replaced by a bracketed mark each: e-mail addresses and phone numbers (libphonenumber), US
social security numbers, dates (of birth or any other: a date next to a question identifies more
than it explains), street addresses and ZIP codes, record / member / account numbers, and names
introduced by the words people use to give them ("my name is", "I'm", a signature, "my son",
"Dr."). Dose figures ("0.5 mg/kg", "2 sessions") and crisis numbers (988, 911) stay: staff need
them to see what the articles are missing. Recall on the planted-PII set: docs/STAFF.md.
"""

from __future__ import annotations

import re

__all__ = ["redact", "MARKS"]

MARKS = ("[email]", "[phone]", "[ssn]", "[date]", "[address]", "[number]", "[name]")

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_SUFFIX = (r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|"
           r"way|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|trail|trl|square|sq)\b\.?")
_UPPER = "A-ZÀ-ÖØ-Þ"
_CAP = rf"[{_UPPER}][a-zA-Zà-öø-ÿ{_UPPER}'’-]+"
_TITLE = r"(?:(?:Dr|Mr|Mrs|Ms|Mx|Prof)\.?\s+)?"
_NAME = rf"{_TITLE}{_CAP}(?:\s+(?:[A-Z]\.\s*)?{_CAP}){{0,2}}"
# Words that follow "I'm" / "this is" without being a name.
_NOT_NAMES = frozenset("""
a an the so very not just really also still here there now on in at from with about worried scared
anxious afraid nervous sure sorry wondering trying thinking going looking asking interested new
currently taking on pregnant depressed tired sad fine ok okay good well better worse ready able
unsure confused curious considering hoping planning feeling struggling having getting seeing
ketamine anxiety therapy treatment english spanish american male female
""".split())

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[ssn]", re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")),
    ("[ssn]", re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)\s*(?:is|:|#)?\s*\d{9}\b")),
    ("[number]", re.compile(
        r"(?i)\b(?:mrn|medical record(?: number| no\.?| #)?|record (?:number|no\.?|#)|chart (?:number|no\.?|#)|"
        r"patient (?:id|number|no\.?|#)|member (?:id|number|no\.?|#)|policy (?:number|no\.?|#)|"
        r"account (?:number|no\.?|#)|insurance (?:id|number|no\.?|#)|id (?:number|no\.?|#)|case (?:number|no\.?|#))"
        r"\s*(?:is|:|#|=)?\s*[A-Z]{0,4}[- ]?\d[\dA-Z-]{3,}\b")),
    ("[date]", re.compile(r"\b(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:19|20)?\d{2}\b")),
    ("[date]", re.compile(r"\b(?:19|20)\d{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])\b")),
    ("[date]", re.compile(rf"(?i)\b{_MONTH}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b")),
    ("[date]", re.compile(rf"(?i)\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(?:19|20)\d{{2}}\b")),
    ("[date]", re.compile(r"(?i)\b(?:dob|d\.o\.b\.?|date of birth|born(?: on| in)?|birthday(?: is)?)\s*(?:is|:|-)?\s*"
                          rf"(?:{_MONTH}\s+\d{{1,2}}|\d{{1,2}}\s+{_MONTH}|(?:19|20)\d{{2}})\b")),
    # number, street words and a city, then a state: "1500 Broadway, New York, NY"
    ("[address]", re.compile(rf"\b\d{{1,6}}[A-Za-z]?\s+(?:[{_UPPER}][\w'’-]*\s*){{1,4}},\s*"
                             rf"(?:[{_UPPER}][\w'’-]*\s*){{1,3}},?\s*[A-Z]{{2}}\b(?:\s+\d{{5}}(?:-\d{{4}})?)?")),
    ("[address]", re.compile(rf"(?i)\b\d{{1,6}}[a-z]?\s+(?:[nsew]\.?\s+)?(?:[a-z0-9'’-]+\s+){{1,4}}{_SUFFIX}"
                             r"(?:[,\s]+(?:apt|apartment|unit|suite|ste|#)\.?\s*[\w-]+)?")),
    ("[address]", re.compile(r"(?i)\b(?:apt|apartment|unit|suite)\.?\s*#?\s*\d+[a-z]?\b")),
    ("[address]", re.compile(r"(?i)\bp\.?\s?o\.?\s+box\s+\d+\b")),
    ("[address]", re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")),  # "NY 10001"
    ("[address]", re.compile(r"(?i)\b(?:zip(?: code)?|postal code)\s*(?:is|:)?\s*\d{5}(?:-\d{4})?\b")),
    ("[number]", re.compile(r"\b\d{7,}\b")),  # any long run of digits identifies something
]

_BEFORE_PHONES = [p for p in _PATTERNS if p[0] in ("[ssn]", "[date]")] + [_PATTERNS[2]]
_AFTER_PHONES = [p for p in _PATTERNS if p not in _BEFORE_PHONES]

# A name is only taken where the message introduces one: these cues, then capitalised words.
_NAME_CUES = re.compile(
    r"(?i:\b(?:my name is|my name's|name is|name:|i am|i'm|im|this is|call me|it's|signed|regards,?|"
    r"thanks,?|thank you,?|cheers,?|sincerely,?|best,?|love,?|"
    r"(?:my|our) (?:son|daughter|wife|husband|partner|mom|mum|mother|dad|father|brother|sister|"
    r"friend|boyfriend|girlfriend|fiance|fiancee|child|kid|grandson|granddaughter|aunt|uncle|cousin|"
    r"doctor|therapist|psychiatrist|nurse|prescriber|provider|gp|counselor|counsellor)(?: is| named| called|,)?|"
    r"dr\.?|doctor|mr\.?|mrs\.?|ms\.?|miss|nurse))\s+"
    rf"(?P<name>{_NAME})")
# A lone signature line: "- Maria", "— Tom B." at the end of a message.
_SIGNATURE = re.compile(rf"(?m)^[ \t]*[-–—~]+[ \t]*(?P<name>{_NAME})[ \t]*$")
# After the strongest cues a name may be typed in lower case: "my name is lena park".
_LOWER_CUES = re.compile(r"(?i:\b(?:my name is|my name's|name:|call me))\s+(?P<name>[a-zà-ÿ'’-]{2,}(?:\s+[a-zà-ÿ'’-]{2,})?)")


def _name_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _NAME_CUES.finditer(text):
        start, end = match.span("name")
        words = match.group("name").split()
        # "I'm Worried about..." is not a name: drop words that are ordinary ones.
        kept = []
        for word in words:
            # an ordinary word, or a shouted one ("IM DONE"): capitals are no sign of a name there
            if word.lower().strip("'’") in _NOT_NAMES or (word.isupper() and len(word) > 1):
                break
            kept.append(word)
        if kept:
            spans.append((start, start + len(" ".join(kept)) if len(kept) < len(words) else end))
    spans += [m.span("name") for m in _SIGNATURE.finditer(text)]
    for match in _LOWER_CUES.finditer(text):
        words = match.group("name").split()
        kept = [w for w in words[:1] if w not in _NOT_NAMES]
        if kept and len(words) > 1 and words[1] not in _NOT_NAMES:
            kept.append(words[1])
        if kept:
            start = match.start("name")
            spans.append((start, start + len(" ".join(kept))))
    return spans


def redact(text: str) -> str:
    """``text`` with personal identifiers replaced by the marks in :data:`MARKS`."""
    from ketfaq.lint import find_emails, find_phones  # phonenumbers: not imported at start-up

    spans: list[tuple[int, int, str]] = [(a, b, "[email]") for a, b in find_emails(text)]
    masked = _blank(text, spans)
    # SSNs, record numbers and dates before phones: 123-45-6789 or 04/12/1987 is no phone number.
    for mark, pattern in _BEFORE_PHONES:
        spans += [(*m.span(), mark) for m in pattern.finditer(masked)]
        masked = _blank(text, spans)
    spans += [(a, b, "[phone]") for a, b in find_phones(masked) if _digits(masked[a:b]) >= 7]
    masked = _blank(text, spans)
    for mark, pattern in _AFTER_PHONES:
        spans += [(*m.span(), mark) for m in pattern.finditer(masked)]
        masked = _blank(text, spans)
    spans += [(a, b, "[name]") for a, b in _name_spans(masked) if masked[a:b].strip()]
    for a, b, mark in sorted(_merged(spans), reverse=True):
        text = text[:a] + mark + text[b:]
    return text


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _blank(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with the found spans blanked out (offsets kept), so later patterns skip them."""
    chars = list(text)
    for a, b, _ in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _merged(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans joined (the first found keeps its mark)."""
    result: list[tuple[int, int, str]] = []
    for a, b, mark in sorted(spans):
        if result and a < result[-1][1]:
            prev = result[-1]
            result[-1] = (prev[0], max(prev[1], b), prev[2])
        else:
            result.append((a, b, mark))
    return result
