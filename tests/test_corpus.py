"""corpus.py: the shipped articles load, and broken files fail with the file and problem named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ketfaq.corpus import CorpusError, corpus_hash, load_article, load_corpus, load_synonyms
from tests.conftest import CORPUS_DIR, load_qa

GOOD = """---
id: sample-article
title: Sample
publisher: null
url: null
reviewed: 2026-11-01
---

# Sample

## Section

Some text.
"""


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_shipped_corpus_loads_with_five_articles() -> None:
    articles = load_corpus(CORPUS_DIR)
    assert len(articles) == 5
    assert all(a.title and a.body.strip() for a in articles)
    assert len({a.id for a in articles}) == 5


def test_every_dev_qa_anchor_is_verbatim_in_the_corpus() -> None:
    collapse = lambda s: re.sub(r"\s+", " ", s)  # noqa: E731 - the QA README's hit rule
    bodies = {a.id[:3]: collapse(a.body) for a in load_corpus(CORPUS_DIR)}
    for record in load_qa():
        for anchor in record.get("anchors", []):
            assert any(collapse(anchor) in bodies[d] for d in record["docs"]), (record["id"], anchor)


def test_corpus_has_no_web_debris() -> None:
    debris = re.compile(r"https?://|www\.|\(\d{3}\)\s*\d{3}-\d{4}|@\w+\.\w+|min read|Back to Home|PDF articles",
                        re.IGNORECASE)
    for article in load_corpus(CORPUS_DIR):
        assert not debris.search(article.body), article.id


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter\n", "missing YAML front matter"),
        (GOOD.replace("title: Sample\n", ""), "missing field(s): title"),
        (GOOD.replace("reviewed: 2026-11-01", "reviewed: someday"), "reviewed must be a date"),
        (GOOD.replace("id: sample-article", "id: Not OK!"), "lowercase letters"),
        (GOOD.split("# Sample")[0], "body is empty"),
    ],
)
def test_broken_article_names_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, "broken.md", text)
    with pytest.raises(CorpusError) as info:
        load_article(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin1.md", GOOD.replace("Some text.", "Caf\xe9").encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        load_article(path)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.md", GOOD)
    _write(tmp_path, "b.md", GOOD)
    with pytest.raises(CorpusError, match="duplicate id 'sample-article'"):
        load_corpus(tmp_path)


def test_corpus_hash_changes_with_content(tmp_path: Path) -> None:
    _write(tmp_path, "a.md", GOOD)
    before = corpus_hash(load_corpus(tmp_path))
    _write(tmp_path, "a.md", GOOD.replace("Some text.", "Other text."))
    assert corpus_hash(load_corpus(tmp_path)) != before


def test_synonyms_file_is_validated(tmp_path: Path) -> None:
    good = _write(tmp_path, "synonyms.yaml", "Hooked: [habit-forming, addictive]\nshots: injections\n")
    assert load_synonyms(good) == {"hooked": ["habit-forming", "addictive"], "shots": ["injections"]}
    bad = _write(tmp_path, "bad.yaml", "hooked: []\n")
    with pytest.raises(CorpusError, match="non-empty list"):
        load_synonyms(bad)
    assert load_synonyms(tmp_path / "missing.yaml") == {}
