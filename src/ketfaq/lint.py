"""Check the corpus for things that must not reach a visitor, per file and line.

Errors (non-zero exit): invalid front matter, duplicate ids, an invalid synonyms file, and leftover
links, e-mail addresses and phone numbers (web debris or another organisation's contact details,
shown verbatim as if they were the clinic's). Warnings (reported, exit 0): calls to action and
other web debris, paragraphs duplicated across articles, passages too short to help, headings
without text, synonyms that match no article, and likely machine-spun text.

Machine-spun text: article spinners replace words with "synonyms" that no writer would choose
("neurotransmitter" → "natural chemical", "fall short" → "autumn short", "appears to" → "shows up
to"). :data:`SPINNER_PHRASES` lists such substitutions seen in spun health articles, each with the
phrase it replaced. A file is flagged when it holds at least :data:`SPUN_MIN_DISTINCT` different
ones at a density of at least :data:`SPUN_PER_1000_WORDS` hits per 1,000 words; ordinary prose
scores 0 on this list, spun prose 10 or more. It is a warning, not an error: spun text can still be
true, but it reads badly and should be replaced by the original article.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import phonenumbers

from ketfaq.chunking import chunk_article
from ketfaq.corpus import SYNONYMS_FILE, Article, CorpusError, load_article, load_synonyms

__all__ = [
    "Finding",
    "LintReport",
    "SPINNER_PHRASES",
    "SPUN_MIN_DISTINCT",
    "SPUN_PER_1000_WORDS",
    "find_emails",
    "find_phones",
    "lint_corpus",
]

Severity = Literal["error", "warning"]

SPUN_PER_1000_WORDS = 3.0
SPUN_MIN_DISTINCT = 4

# spun phrase (regex, lower case) -> what a writer would have written
SPINNER_PHRASES: dict[str, str] = {
    r"stress and anxiety (?:disorders?|conditions?|problems?|sufferers?)": "anxiety disorders",
    r"social stress and anxiety": "social anxiety",
    r"anxiousness (?:disorders?|conditions?|problems?)": "anxiety disorders",
    r"natural chemicals?": "neurotransmitter",
    r"price quotes": "estimates",
    r"autumn (?:short|brief)": "fall short",
    r"breaking cost-free": "breaking free",
    r"semantic networks": "neural networks",
    r"psychological health and wellness": "mental health",
    r"health and wellness problems?": "health problem",
    r"sex-related (?:disorder|dysfunction)": "sexual dysfunction",
    r"in feedback to": "in response to",
    r"shows? up to (?:be|represent|promote|work)": "appears to",
    r"high quality of life": "quality of life",
    r"muscle mass (?:stress|tension)": "muscle tension",
    r"signs and symptom (?:relief|reductions?|enhancements?|monitoring)": "symptom relief",
    r"brand-new (?:neural|cognitive|patterns|connections)": "new",
    r"been afraid (?:results|outcomes|situations|scenarios)": "feared",
    r"home window": "window",
    r"heart price": "heart rate",
    r"blood stress": "blood pressure",
    r"safety account": "safety profile",
    r"yoga exercise": "yoga",
    r"muscular tissue leisure": "muscle relaxation",
    r"insurance policy insurance coverage": "insurance coverage",
    r"smaller sized": "smaller",
    r"dissociative buildings": "dissociative properties",
    r"research studies have actually": "studies have",
    r"therapy training course": "course of treatment",
    r"nerves (?:arousal|activation|guideline)": "nervous system",
    r"emotional guideline": "emotional regulation",
    r"panic condition": "panic disorder",
    r"generalized anxiousness": "generalized anxiety",
    r"comprehending (?:anxiety|anxiousness|it)": "understanding",
    r"due to the fact that": "because",
    r"has never ever": "has never",
}
_SPINNER_RE = [(re.compile(rf"\b{pattern}\b", re.IGNORECASE), original)
               for pattern, original in SPINNER_PHRASES.items()]

_URL_RE = re.compile(
    r"\bhttps?://[^\s)>\]]+|\bwww\.[^\s)>\]]+"
    r"|\b[a-z0-9][a-z0-9-]*\.(?:com|org|net|io|health|clinic|info|co|us|care)\b(?:/[^\s)>\]]*)?",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CTA_RE = re.compile(
    r"\b(?:contact us|call us|call (?:today|now)|give us a call|book (?:a|an|your) "
    r"(?:free )?(?:consultation|appointment|session|call)|schedule (?:a|an|your) (?:free )?"
    r"(?:consultation|appointment|call)|request (?:a|an) (?:consultation|appointment)|"
    r"click here|sign up|subscribe|read more|learn more|get started today|visit our website|"
    r"reach out to (?:us|our team)|free consultation|limited time|follow us|share this)\b",
    re.IGNORECASE,
)
_DEBRIS_RE = re.compile(
    r"!\[[^\]]*\]\([^)]*\)|\b\d+[ -]min(?:ute)?s? read\b|\bthumbnail\b|\badvertisement\b",
    re.IGNORECASE,
)
_HEADING_RE = re.compile(r"^(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$", re.MULTILINE)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*")
_MIN_DUPLICATE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place: ``path:line: severity [code] message``."""

    path: str
    line: int
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity} [{self.code}] {self.message}"


@dataclass(frozen=True, slots=True)
class LintReport:
    """All findings of one run, sorted by file and line."""

    files: int
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def to_dict(self) -> dict:
        """The JSON shape of ``ketfaq corpus lint --json``."""
        return {"files": self.files, "errors": self.errors, "warnings": self.warnings,
                "findings": [asdict(f) for f in self.findings]}


def find_emails(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of e-mail addresses in ``text``."""
    return [m.span() for m in _EMAIL_RE.finditer(text)]


def find_phones(text: str, region: str = "US") -> list[tuple[int, int]]:
    """``(start, end)`` of phone numbers in ``text`` (Google's libphonenumber, lenient matching)."""
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    return [(m.start, m.end) for m in matcher]


class _Lines:
    """Offset → 1-based line number in a file whose body starts at ``body_line``."""

    def __init__(self, body: str, body_line: int) -> None:
        self.starts = [0] + [i + 1 for i, ch in enumerate(body) if ch == "\n"]
        self.body_line = body_line

    def __call__(self, offset: int) -> int:
        lo, hi = 0, len(self.starts)
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid
        return self.body_line + lo


def _body_line(path: Path, article: Article) -> int:
    raw = path.read_bytes().decode("utf-8").replace("\r\n", "\n").lstrip("\ufeff")
    return raw[: len(raw) - len(article.body)].count("\n") + 1


def _paragraphs(body: str) -> Iterable[tuple[int, str]]:
    for match in re.finditer(r"(?:[ \t]*\S[^\n]*(?:\n|$))+", body):
        text = match.group(0)
        if not text.lstrip().startswith("#"):
            yield match.start(), text


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _article_findings(article: Article, rel: str, line: _Lines, *, chunk_size: int,
                      chunk_overlap: int, min_chunk_chars: int) -> list[Finding]:
    body = article.body
    found: list[Finding] = []

    def add(offset: int, severity: Severity, code: str, message: str) -> None:
        found.append(Finding(rel, line(offset), severity, code, message))

    emails = find_emails(body)
    for start, end in emails:
        add(start, "error", "email", f"e-mail address {body[start:end]!r}: remove contact details")
    for m in _URL_RE.finditer(body):
        if any(a <= m.start() < b for a, b in emails):
            continue
        add(m.start(), "error", "url", f"link {m.group(0)!r}: passages are shown without links")
    for start, end in find_phones(body):
        add(start, "error", "phone", f"phone number {body[start:end]!r}: remove contact details")
    for m in _CTA_RE.finditer(body):
        add(m.start(), "warning", "call-to-action", f"call to action {m.group(0)!r} is not article content")
    for m in _DEBRIS_RE.finditer(body):
        add(m.start(), "warning", "web-debris", f"{m.group(0)[:40]!r} looks like web page debris")

    headings = list(_HEADING_RE.finditer(body))
    for i, m in enumerate(headings):
        title, level = (m.group(2) or "").strip(), len(m.group(1))
        if not title:
            add(m.start(), "warning", "empty-heading", "heading has no title")
            continue
        nxt = headings[i + 1] if i + 1 < len(headings) else None
        between = body[m.end(): nxt.start() if nxt else len(body)]
        if not between.strip() and (nxt is None or len(nxt.group(1)) <= level):
            add(m.start(), "warning", "empty-heading", f"heading {title!r} has no text under it")

    for chunk in chunk_article(article, chunk_size=chunk_size, chunk_overlap=chunk_overlap):
        if len(chunk.text) < min_chunk_chars:
            add(chunk.start, "warning", "short-chunk",
                f"passage of {len(chunk.text)} characters (< {min_chunk_chars}) is too short to "
                f"help on its own: {chunk.text[:50]!r}; merge it into a paragraph")

    hits = [(m.start(), m.group(0), original) for rx, original in _SPINNER_RE for m in rx.finditer(body)]
    words = max(1, len(_WORD_RE.findall(body)))
    density = 1000 * len(hits) / words
    distinct = {phrase.lower() for _, phrase, _ in hits}
    if len(distinct) >= SPUN_MIN_DISTINCT and density >= SPUN_PER_1000_WORDS:
        hits.sort()
        examples = ", ".join(f"{p!r} (≈ {o!r}, line {line(o_)})" for o_, p, o in hits[:4])
        add(hits[0][0], "warning", "spun-text",
            f"likely machine-spun text: {len(hits)} spinner substitutions in {words} words "
            f"({density:.1f} per 1,000; threshold {SPUN_PER_1000_WORDS:g}), e.g. {examples}; "
            "replace it with the original article")
    return found


def _synonym_findings(path: Path, rel: str, corpus_text: str) -> list[Finding]:
    try:
        synonyms = load_synonyms(path)
    except CorpusError as exc:
        return [Finding(rel, 1, "error", "synonyms", str(exc).removeprefix(f"{path}: "))]
    raw_lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for key, terms in synonyms.items():
        lineno = next((i for i, text in enumerate(raw_lines, 1) if text.lower().lstrip().startswith(key)), 1)
        unused = [t for t in terms
                  if not re.search(rf"\b{re.escape(_normalized(t))}\b", corpus_text)]
        if len(unused) == len(terms):
            found.append(Finding(rel, lineno, "warning", "synonyms",
                                 f"{key!r}: none of {terms} appears in any article, so it cannot help"))
        if key in terms:
            found.append(Finding(rel, lineno, "warning", "synonyms", f"{key!r} maps to itself"))
    return found


def lint_corpus(corpus_dir: Path, *, chunk_size: int = 700, chunk_overlap: int = 0,
                min_chunk_chars: int = 60, paths: list[Path] | None = None) -> LintReport:
    """Lint every article in ``corpus_dir`` (or just ``paths``) and the synonyms file."""
    files = sorted(paths) if paths is not None else sorted(corpus_dir.glob("*.md"))
    base = corpus_dir if corpus_dir.is_dir() else Path.cwd()

    def rel(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(base.resolve().parent))
        except ValueError:
            return str(p)

    findings: list[Finding] = []
    ids: dict[str, str] = {}
    seen_paragraphs: dict[str, tuple[str, str, int]] = {}
    texts: list[str] = []
    for path in files:
        try:
            article = load_article(path)
        except CorpusError as exc:
            findings.append(Finding(rel(path), 1, "error", "front-matter",
                                    str(exc).removeprefix(f"{path}: ")))
            continue
        line = _Lines(article.body, _body_line(path, article))
        if article.id in ids:
            findings.append(Finding(rel(path), 2, "error", "front-matter",
                                    f"duplicate id {article.id!r} (also in {ids[article.id]})"))
        ids.setdefault(article.id, rel(path))
        if path.stem != article.id:
            findings.append(Finding(rel(path), 2, "warning", "front-matter",
                                    f"file name {path.name!r} does not match id {article.id!r}"))
        findings += _article_findings(article, rel(path), line, chunk_size=chunk_size,
                                      chunk_overlap=chunk_overlap, min_chunk_chars=min_chunk_chars)
        for offset, text in _paragraphs(article.body):
            key = _normalized(text)
            if len(key) < _MIN_DUPLICATE_CHARS:
                continue
            first = seen_paragraphs.get(key)
            if first and first[0] != article.id:
                findings.append(Finding(rel(path), line(offset), "warning", "duplicate-paragraph",
                                        f"paragraph also in {first[1]}:{first[2]}; keep it in one article"))
            elif not first:
                seen_paragraphs[key] = (article.id, rel(path), line(offset))
        texts.append(_normalized(article.title + "\n" + article.body))
    synonyms = corpus_dir / SYNONYMS_FILE
    if paths is None and synonyms.exists():
        findings += _synonym_findings(synonyms, rel(synonyms), "\n".join(texts))
        files = files + [synonyms]
    findings.sort(key=lambda f: (f.path, f.line, f.code))
    return LintReport(files=len(files), findings=findings)
