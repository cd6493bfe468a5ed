"""Cut articles into passages: along headings first, then paragraphs, lines and sentences.

Every chunk is an exact slice ``article.body[start:end]``, so what a visitor reads is verbatim.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ketfaq.corpus import Article

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

__all__ = [
    "MAX_PASSAGE_CHARS", "Chunk", "Section", "split_sections", "chunk_article", "chunk_corpus",
    "sentence_spans",
]

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# A sentence ends at . ! ? or an ellipsis, optionally followed by a closing quote or bracket.
_SENTENCE_END = r"(?:(?<=[.!?…])|(?<=[.!?…][\"”’)\]]))\s+"
_SEPARATORS = ["\n\n", "\n", _SENTENCE_END, r"(?<=[;:])\s+", r"\s+"]
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?…])[\"”’)\]]?\s+|\n+")
# What a visitor reads at a glance (the response contract, README "The API"): no chunk is ever longer than this.
MAX_PASSAGE_CHARS = 800


@dataclass(frozen=True, slots=True)
class Section:
    """A run of body text under one heading path."""

    headings: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage: a verbatim slice of an article plus where it came from."""

    id: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    text: str
    start: int
    end: int

    @property
    def section(self) -> str:
        """The heading path a visitor sees, e.g. ``Risks › Common Side Effects``."""
        return " › ".join(self.headings)

    @property
    def question(self) -> str | None:
        """The FAQ question this chunk answers, when its heading is a question."""
        if self.headings and self.headings[-1].rstrip().endswith("?"):
            return self.headings[-1]
        return None

    @property
    def embed_text(self) -> str:
        """What is embedded and keyword-indexed: the text under its heading path.

        The article title is left out on purpose: every title here says "ketamine therapy for
        anxiety", which made every passage look alike to the encoder (measured on the QA set).
        """
        return f"{' › '.join(self.headings)}\n{self.text}" if self.headings else self.text


def split_sections(article: Article) -> list[Section]:
    """Sections of the body delimited by Markdown ATX headings, with their heading paths."""
    body = article.body
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    cursor = 0
    current: tuple[str, ...] = ()
    for match in _HEADING_RE.finditer(body):
        if body[cursor:match.start()].strip():
            sections.append(Section(current, cursor, match.start()))
        level, text = len(match.group(1)), match.group(2).strip()
        path = [(lvl, name) for lvl, name in path if lvl < level] + [(level, text)]
        # The article's own title (a lone level-1 heading) adds no information to a path.
        current = tuple(name for lvl, name in path if not (lvl == 1 and name == article.title))
        cursor = match.end()
    if body[cursor:].strip():
        sections.append(Section(current, cursor, len(body)))
    return sections


def _splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    # Imported here: only builds split text, and serving should not pay for the import.
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator=True,
        strip_whitespace=True,
    )


def _bind_lead_ins(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep a sentence that introduces a list ("here's what people find:") with the list.

    A boundary right after such a sentence leaves one passage that promises an answer and
    another that lacks its subject. The two pieces are joined when they fit in
    ``MAX_PASSAGE_CHARS``; otherwise the lead-in sentence alone moves to the next piece.
    """
    spans = list(spans)
    i = 0
    while i < len(spans) - 1:
        (a, b), (c, d) = spans[i], spans[i + 1]
        if not text[a:b].rstrip().endswith(":") or c < b:  # not a lead-in, or overlapping pieces
            i += 1
            continue
        if d - a <= MAX_PASSAGE_CHARS:
            spans[i:i + 2] = [(a, d)]
            continue
        lead = a + sentence_spans(text[a:b])[-1][0]
        if lead > a and d - lead <= MAX_PASSAGE_CHARS:
            spans[i:i + 2] = [(a, a + len(text[a:lead].rstrip())), (lead, d)]
        i += 1
    return spans


def chunk_article(article: Article, *, chunk_size: int, chunk_overlap: int = 0) -> list[Chunk]:
    """Chunks of one article, each at most ``chunk_size`` characters where sentences allow."""
    splitter = _splitter(chunk_size, chunk_overlap)
    chunks: list[Chunk] = []
    for section in split_sections(article):
        text = article.body[section.start:section.end]
        spans: list[tuple[int, int]] = []
        cursor = 0
        for piece in splitter.split_text(text):
            offset = text.find(piece, cursor)
            if offset < 0:  # overlap moved us backwards: search from the section start
                offset = text.find(piece)
            if offset < 0:
                raise AssertionError(f"splitter produced text not found in {article.id}")
            spans.append((offset, offset + len(piece)))
            cursor = offset + 1
        for offset, end in _bind_lead_ins(text, spans):
            piece = text[offset:end]
            start = section.start + offset
            digest = hashlib.sha1(f"{article.id}\n{piece}".encode()).hexdigest()[:12]
            chunks.append(
                Chunk(
                    id=f"{article.id}#{digest}",
                    doc_id=article.id,
                    title=article.title,
                    headings=section.headings,
                    text=piece,
                    start=start,
                    end=start + len(piece),
                )
            )
    return chunks


def chunk_corpus(articles: list[Article], *, chunk_size: int, chunk_overlap: int = 0) -> list[Chunk]:
    """Chunks of every article, in corpus order; ids are unique."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for article in articles:
        for chunk in chunk_article(article, chunk_size=chunk_size, chunk_overlap=chunk_overlap):
            if chunk.id in seen:  # the same passage twice in one article: show it once
                continue
            seen.add(chunk.id)
            chunks.append(chunk)
    return chunks


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the sentences (or list lines) in a passage."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for match in _SENTENCE_SPLIT_RE.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        if text[cursor:end].strip():
            spans.append((cursor, end))
        cursor = match.end()
    if text[cursor:].strip():
        spans.append((cursor, len(text.rstrip())))
    return spans
