"""Chunking: verbatim slices of whole sentences, within the passage limit, with heading paths."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from ketfaq.chunking import (
    MAX_PASSAGE_CHARS,
    chunk_article,
    chunk_corpus,
    sentence_spans,
    split_sections,
)
from ketfaq.corpus import Article, load_corpus
from ketfaq.settings import Settings

from .conftest import CORPUS_DIR

SIZES = (300, 500, 700, 800)
_SENTENCE_END = ".!?…:;\"”’)]"


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return load_corpus(CORPUS_DIR)


def _article(body: str, title: str = "Test Article") -> Article:
    return Article(id="t", title=title, publisher=None, url=None, reviewed=dt.date(2026, 1, 1),
                   body=body, path=Path("t.md"))


def _starts_whole(body: str, start: int) -> bool:
    """True when ``start`` opens a sentence, a line or the body."""
    before = body[:start].rstrip(" \t")
    return not before or before[-1] in _SENTENCE_END or before.endswith("\n")


def _ends_whole(body: str, end: int) -> bool:
    """True when ``end`` closes a sentence, a line or the body."""
    rest = body[end:]
    return not rest.strip() or rest[0] == "\n" or (rest[0] in " \t" and body[end - 1] in _SENTENCE_END)


@pytest.mark.parametrize("size", SIZES)
def test_chunks_are_exact_slices_within_the_limit(articles: list[Article], size: int) -> None:
    by_id = {a.id: a for a in articles}
    for chunk in chunk_corpus(articles, chunk_size=size):
        assert by_id[chunk.doc_id].body[chunk.start:chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= MAX_PASSAGE_CHARS
        assert chunk.text == chunk.text.strip()


@pytest.mark.parametrize("size", (500, 700, 800))  # every sentence in the corpus fits in 500
def test_chunks_hold_whole_sentences(articles: list[Article], size: int) -> None:
    by_id = {a.id: a for a in articles}
    for chunk in chunk_corpus(articles, chunk_size=size):
        body = by_id[chunk.doc_id].body
        assert _starts_whole(body, chunk.start), (chunk.id, body[chunk.start - 20:chunk.start + 20])
        assert _ends_whole(body, chunk.end), (chunk.id, body[chunk.end - 30:chunk.end + 10])


def test_boundary_checks_can_fail() -> None:
    body = "One sentence here. Another one follows."
    assert _ends_whole(body, body.index(" Another")) and not _ends_whole(body, body.index(" here"))
    assert _starts_whole(body, body.index("Another")) and not _starts_whole(body, body.index("here"))


def test_default_chunk_size_is_the_measured_one() -> None:
    assert Settings().chunk_size == 700 and Settings().chunk_size <= MAX_PASSAGE_CHARS


def test_heading_paths_follow_the_outline() -> None:
    body = ("# Test Article\n\nIntro sentence here.\n\n## Risks\n\nRisk text.\n\n### Common Side Effects\n\n"
            "Dizziness is common.\n\n## FAQ\n\n### Is it safe?\n\nUsually it is.\n")
    chunks = chunk_article(_article(body), chunk_size=700)
    assert [c.headings for c in chunks] == [
        (), ("Risks",), ("Risks", "Common Side Effects"), ("FAQ",) + ("Is it safe?",)]
    assert chunks[2].section == "Risks › Common Side Effects"
    assert chunks[3].question == "Is it safe?" and chunks[1].question is None
    assert chunks[2].embed_text == "Risks › Common Side Effects\nDizziness is common."
    assert "Test Article" not in chunks[0].embed_text  # the title adds nothing: measured


def test_sections_never_include_heading_lines(articles: list[Article]) -> None:
    for article in articles:
        for section in split_sections(article):
            assert not re.search(r"^#{1,6} ", article.body[section.start:section.end], re.MULTILINE)


def test_ids_are_stable_unique_and_content_addressed(articles: list[Article]) -> None:
    first = chunk_corpus(articles, chunk_size=700)
    again = chunk_corpus(load_corpus(CORPUS_DIR), chunk_size=700)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    # Editing one article changes only that article's ids.
    edited = [a if a.id != articles[0].id else _replace_body(a, a.body + "\n\nA new closing sentence.")
              for a in articles]
    changed = {c.id for c in chunk_corpus(edited, chunk_size=700)} ^ {c.id for c in first}
    assert changed and all(i.startswith(articles[0].id + "#") for i in changed)


def _replace_body(article: Article, body: str) -> Article:
    return Article(id=article.id, title=article.title, publisher=article.publisher, url=article.url,
                   reviewed=article.reviewed, body=body, path=article.path)


def test_a_list_lead_in_stays_with_its_list() -> None:
    # The splitter alone cuts after the lead-in (416 + 317 characters); together they fit in 800.
    filler = " ".join(f"Sentence number {i} talks about something else entirely." for i in range(7))
    items = "\n".join(f"- Item {i} explains one of the results in a few words." for i in range(6))
    body = f"# Test Article\n\n## Results\n\n{filler}\n\nHere is what many people find:\n\n{items}\n"
    article = _article(body)
    chunks = chunk_article(article, chunk_size=700)
    lead = [c for c in chunks if "Here is what many people find:" in c.text]
    assert len(lead) == 1 and "- Item 0" in lead[0].text and "Sentence number 0" in lead[0].text
    assert all(c.text.rstrip()[-1] != ":" for c in chunks)
    assert all(article.body[c.start:c.end] == c.text and len(c.text) <= MAX_PASSAGE_CHARS for c in chunks)


def test_a_lead_in_moves_alone_when_the_pieces_together_are_too_long() -> None:
    filler = " ".join(f"Sentence number {i} talks about something else entirely here." for i in range(10))
    items = "\n".join(f"- Item {i} explains one of the many results in a few more words." for i in range(9))
    body = f"# Test Article\n\n{filler}\n\nHere is what many people find:\n\n{items}\n"
    chunks = chunk_article(_article(body), chunk_size=700)
    lead = [c for c in chunks if "Here is what many people find:" in c.text]
    assert len(lead) == 1 and lead[0].text.startswith("Here is what many people find:")
    assert "- Item 0" in lead[0].text and all(len(c.text) <= MAX_PASSAGE_CHARS for c in chunks)


def test_the_shipped_corpus_has_no_chunk_ending_in_a_dangling_lead_in_before_its_list(
        articles: list[Article]) -> None:
    chunks = chunk_corpus(articles, chunk_size=700)
    for this, after in zip(chunks, chunks[1:]):
        if this.text.endswith(":") and this.doc_id == after.doc_id and this.headings == after.headings:
            pytest.fail(f"{this.id} ends with a lead-in separated from its list")


def test_sentence_spans_cover_sentences_and_list_lines() -> None:
    text = "First one. Second “quoted.” Third?\n- item one\n- item two"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "First one.", "Second “quoted.”", "Third?", "- item one", "- item two"]
