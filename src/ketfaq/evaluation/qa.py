"""The QA test set: load records from ``qa/*.jsonl`` and check they are well formed and verbatim.

Record formats are documented in ``qa/README.md``. Anchors are compared with the hit rule:
every run of whitespace collapsed to one space on both sides, nothing else normalised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ketfaq.contract import Kind
from ketfaq.corpus import Article, load_corpus

__all__ = [
    "DEFAULT_QA_FILES", "HELDOUT_QA", "QA_KINDS", "QARecord", "QAError", "collapse",
    "load_qa", "validate_qa", "doc_key",
]

# Every response kind but no_match (a QA record expecting "not covered" says out_of_scope, and
# either passes), plus bad_input for messages that must be refused.
QA_KINDS = (*(k for k in Kind if k != Kind.NO_MATCH), "bad_input")
DEFAULT_QA_FILES = ("dev_qa.jsonl", "answers_extra.jsonl", "answers_lay.jsonl", "safety_extra.jsonl",
                    "spanish_extra.jsonl", "uncovered_extra.jsonl", "retired_heldout.jsonl")
# The frozen held-out questions (issue 15): scored by `ketfaq eval`, never trained or tuned on.
HELDOUT_QA = Path("tests/data/fresh_qa.jsonl")
ANCHOR_MIN, ANCHOR_MAX, MAX_ANCHORS = 40, 160, 4
_WS_RE = re.compile(r"\s+")
_ID_RE = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")
_ALLOWED_KEYS = {"id", "kind", "question", "anchors", "docs", "note"}


class QAError(ValueError):
    """A QA file cannot be read; the message names the file and line."""


def collapse(text: str) -> str:
    """The hit rule's normal form: each run of whitespace becomes one space, ends stripped."""
    return _WS_RE.sub(" ", text).strip()


def doc_key(article_id: str) -> str:
    """The 3-digit prefix a QA record uses to name an article (``000-ketamine-...`` -> ``000``)."""
    return article_id[:3]


@dataclass(frozen=True, slots=True)
class QARecord:
    """One QA record plus where it was read from (``source`` is the file stem, e.g. ``dev_qa``)."""

    id: str
    kind: str
    question: str
    anchors: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    note: str = ""
    source: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_ranked(self) -> bool:
        """Answer records with anchors count for retrieval metrics; near-misses only for routing."""
        return self.kind == "answer" and bool(self.anchors)


def _read_lines(path: Path) -> Iterable[tuple[int, dict]]:
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise QAError(f"{path}:{number}: a record must be a JSON object")
        yield number, data


def load_qa(paths: Sequence[Path]) -> list[QARecord]:
    """Records of the given JSONL files in order; shape problems are left to :func:`validate_qa`."""
    records: list[QARecord] = []
    for path in paths:
        if not path.is_file():
            raise QAError(f"{path}: QA file not found")
        for _number, data in _read_lines(path):
            records.append(QARecord(
                id=str(data.get("id", "")),
                kind=str(data.get("kind", "")),
                question=data.get("question") if isinstance(data.get("question"), str) else "",
                anchors=tuple(data.get("anchors") or ()),
                docs=tuple(data.get("docs") or ()),
                note=str(data.get("note") or ""),
                source=path.stem,
                raw=data,
            ))
    return records


def _record_problems(data: dict, bodies: dict[str, str]) -> list[str]:
    """What is wrong with one raw record (empty list when it is fine)."""
    problems: list[str] = []
    unknown = set(data) - _ALLOWED_KEYS
    if unknown:
        problems.append(f"unknown field(s) {sorted(unknown)}")
    rid, kind, question = data.get("id"), data.get("kind"), data.get("question")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        problems.append(f"id {rid!r} must look like 'x-r-001'")
    if kind not in QA_KINDS:
        problems.append(f"kind {kind!r} is not one of {', '.join(QA_KINDS)}")
    if not isinstance(question, str):
        problems.append("question must be a string")
    elif kind != "bad_input" and not question.strip():
        problems.append("question is empty (only bad_input records may be)")
    if "note" in data and not isinstance(data["note"], str):
        problems.append("note must be a string")
    anchors, docs = data.get("anchors"), data.get("docs")
    if kind != "answer":
        if anchors or docs:
            problems.append(f"{kind} records take no anchors or docs")
        return problems
    if not isinstance(anchors, list) or not isinstance(docs, list):
        problems.append("answer records need 'anchors' and 'docs' lists")
        return problems
    if not anchors:
        if docs:
            problems.append("docs given without anchors")
        if "near-miss" not in str(data.get("note", "")):
            problems.append("an answer record without anchors must be noted 'near-miss'")
        return problems
    if len(anchors) > MAX_ANCHORS:
        problems.append(f"{len(anchors)} anchors (at most {MAX_ANCHORS})")
    if len(set(anchors)) != len(anchors):
        problems.append("duplicate anchors")
    found_in: set[str] = set()
    for anchor in anchors:
        if not isinstance(anchor, str):
            problems.append(f"anchor {anchor!r} is not a string")
            continue
        if "\n" in anchor or "\r" in anchor:
            problems.append(f"anchor has a line break: {anchor[:50]!r}")
        if not ANCHOR_MIN <= len(anchor) <= ANCHOR_MAX:
            problems.append(f"anchor is {len(anchor)} chars (want {ANCHOR_MIN}-{ANCHOR_MAX}): {anchor[:50]!r}")
        where = {key for key, body in bodies.items() if collapse(anchor) in body}
        if not where:
            problems.append(f"anchor not found verbatim in the corpus: {anchor[:70]!r}")
        elif not where & set(docs):
            problems.append(f"anchor found in {sorted(where)} but docs say {docs}: {anchor[:50]!r}")
        found_in |= where
    if not all(isinstance(d, str) and d in bodies for d in docs):
        problems.append(f"docs {docs} must name articles by their 3-digit prefix {sorted(bodies)}")
    elif len(set(docs)) != len(docs):
        problems.append("duplicate docs")
    else:
        stray = [d for d in docs if d not in found_in]
        if stray:
            problems.append(f"docs {stray} have no anchor in them")
    return problems


def validate_qa(paths: Sequence[Path], corpus: Path | list[Article]) -> list[str]:
    """Every problem in the QA files, as ``file:line id: problem`` strings (empty when valid)."""
    articles = load_corpus(corpus) if isinstance(corpus, Path) else corpus
    bodies = {doc_key(a.id): collapse(a.body) for a in articles}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            problems.append(f"{path}: QA file not found")
            continue
        try:
            lines = list(_read_lines(path))
        except QAError as exc:
            problems.append(str(exc))
            continue
        for number, data in lines:
            where = f"{path.name}:{number} {data.get('id', '?')}"
            rid = data.get("id")
            if isinstance(rid, str):
                if rid in seen:
                    problems.append(f"{where}: duplicate id (first in {seen[rid]})")
                seen.setdefault(rid, where)
            problems.extend(f"{where}: {p}" for p in _record_problems(data, bodies))
    return problems
