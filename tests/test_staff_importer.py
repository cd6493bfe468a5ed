"""``ketfaq corpus add|list|remove``: imports become valid articles; retired ones leave the index."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketfaq.cli import app
from ketfaq.corpus import CorpusError, load_article, load_corpus
from ketfaq.importer import html_to_markdown, import_article, list_articles, retire_article
from ketfaq.settings import get_settings

PAGE = """<!doctype html><html><head><title>Clinic blog</title><style>.x{color:red}</style>
<script>track('visit')</script></head><body>
<nav><a href="/">Home</a> <a href="/book">Book now</a></nav>
<header>Site banner</header>
<article><h1>Ketamine and Sleep</h1>
<p>Many people feel <b>tired</b> after a session, so plan a quiet evening.</p>
<h2>Before your visit</h2><ul><li>Eat a light meal.</li><li>Bring a friend to drive you home.</li></ul>
<img src="thumb.jpg" alt="thumbnail"><script>alert(1)</script>
<p>Read the <a href="https://example.com/x">full study</a> for details.</p></article>
<aside>Related posts</aside><footer>© Clinic 2026</footer></body></html>"""


def test_html_becomes_markdown_without_scripts_navigation_or_styling() -> None:
    markdown, title = html_to_markdown(PAGE)
    assert title == "Ketamine and Sleep"
    assert "# Ketamine and Sleep" in markdown and "## Before your visit" in markdown
    assert "- Eat a light meal." in markdown and "**tired**" in markdown
    assert "Read the full study for details." in markdown
    for debris in ("track(", "alert(", "color:red", "Home", "Book now", "Site banner", "Related posts",
                   "©", "thumb", "https://"):
        assert debris not in markdown


def test_import_html_writes_front_matter_and_a_loadable_article(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus).mkdir()
    (corpus / "007-old.md").write_text("---\nid: 007-old\ntitle: Old\npublisher: null\nurl: null\n"
                                       "reviewed: 2025-01-01\n---\n\n# Old\n\nSome text.\n")
    page = tmp_path / "page.html"
    page.write_text(PAGE)
    article = import_article(page, corpus, url="https://clinic.example/sleep", publisher="Clinic")
    assert article.id == "008-ketamine-and-sleep"
    assert article.path == corpus / "008-ketamine-and-sleep.md"
    assert (article.title, article.url, article.publisher) == ("Ketamine and Sleep", "https://clinic.example/sleep", "Clinic")
    assert article.reviewed == dt.date.today()
    assert load_article(article.path) == article
    assert [a.id for a in load_corpus(corpus)] == ["007-old", "008-ketamine-and-sleep"]


def test_import_plain_text_adds_the_title_heading(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("Ketamine sessions last about an hour.\n\nYou will need a ride home.\n")
    article = import_article(source, tmp_path / "corpus", title="Session Basics: What to Expect")
    assert article.id == "000-session-basics-what-to-expect"
    assert article.body.lstrip().startswith("# Session Basics: What to Expect\n\nKetamine sessions last")


def test_import_refuses_a_duplicate_id_and_a_missing_title(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("Some text without a heading.\n")
    import_article(source, tmp_path / "corpus", title="A", doc_id="010-a")
    with pytest.raises(CorpusError, match="already exists"):
        import_article(source, tmp_path / "corpus", title="A", doc_id="010-a")
    with pytest.raises(CorpusError, match="--title"):
        import_article(source, tmp_path / "corpus")
    assert [p.name for p in (tmp_path / "corpus").iterdir()] == ["010-a.md"]  # no temp debris


def test_cli_add_list_remove(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    source = tmp_path / "aftercare.md"
    source.write_text("# Aftercare\n\nRest for the rest of the day and avoid driving until tomorrow.\n")
    env = {"KETFAQ_CORPUS_DIR": str(corpus)}
    get_settings.cache_clear()  # the CLI reads settings once per process
    runner = CliRunner()
    added = runner.invoke(app, ["corpus", "add", str(source), "--publisher", "Clinic"], env=env)
    assert added.exit_code == 0, added.output
    assert "added 000-aftercare" in added.output
    listed = runner.invoke(app, ["corpus", "list"], env=env)
    assert "000-aftercare" in listed.output and "Aftercare" in listed.output
    removed = runner.invoke(app, ["corpus", "remove", "000-aftercare"], env=env)
    assert removed.exit_code == 0, removed.output
    assert list_articles(corpus) == [] and (corpus / ".retired" / "000-aftercare.md").exists()
    missing = runner.invoke(app, ["corpus", "remove", "000-aftercare"], env=env)
    assert missing.exit_code == 2 and "no article" in missing.output


def test_retire_unknown_id_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(CorpusError, match="corpus list"):
        retire_article(tmp_path / "c", "nope")
