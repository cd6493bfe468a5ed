"""Add → ask → edit → ask → remove → ask: staff changes reach the answers, rebuilds are incremental."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketfaq.answer import Answerer
from ketfaq.importer import import_article, retire_article
from ketfaq.index import build_index, list_versions, rollback
from tests.staff_helpers import edit, private_copy

QUESTION = "Is there parking at the clinic?"
ARTICLE = """# Parking at the Clinic

Free parking is available in the garage behind the clinic. Bring your parking ticket to the front
desk and we will validate it, so the garage costs you nothing on treatment days.

## Getting a ride home

You cannot drive after a ketamine session, so arrange for someone to pick you up at the entrance.
"""


@pytest.fixture()
def staff(tmp_path: Path, settings, encoder, built_index):
    """A private corpus and index, built once, and an answerer over it."""
    own = private_copy(settings, tmp_path)
    first = build_index(own, encoder)
    return own, Answerer(own, encoder), first


def _doc_ids(answerer: Answerer, question: str) -> list[str]:
    return [p.source.doc_id for p in answerer.ask(question).passages]


def test_first_build_from_a_warm_cache_embeds_nothing(staff) -> None:
    _, _, first = staff
    assert first.embedded == 0 and first.reused > 0


def test_add_edit_remove_changes_the_answers(staff, tmp_path: Path, encoder) -> None:
    own, answerer, first = staff
    before = answerer.ask(QUESTION)
    assert before.index_version == first.version
    assert not any("garage" in p.text for p in before.passages)

    source = tmp_path / "parking.md"
    source.write_text(ARTICLE)
    article = import_article(source, own.corpus_dir, publisher="Example Clinic")
    added = build_index(own, encoder)
    assert added.articles_added == [article.id] and not added.articles_changed
    assert added.per_article == {article.id: {"added": 2, "changed": 0, "removed": 0, "unchanged": 0}}
    assert 0 < added.embedded < added.reused  # only the new article's text was embedded
    assert answerer.reload() is True
    answered = answerer.ask(QUESTION)
    assert answered.kind == "answer" and answered.index_version == added.version
    assert answered.passages[0].source.doc_id == article.id
    assert "Free parking is available" in answered.passages[0].text

    edit(article.path, "Free parking is available in the garage behind the clinic.",
         "Parking in the garage behind the clinic costs five dollars per visit.")
    edited = build_index(own, encoder)
    assert edited.articles_changed == [article.id] and not edited.articles_added
    assert edited.per_article[article.id] == {"added": 0, "changed": 1, "removed": 0, "unchanged": 1}
    answerer.reload()
    texts = [p.text for p in answerer.ask(QUESTION).passages if p.source.doc_id == article.id]
    assert texts and "five dollars per visit" in texts[0]
    assert not any("Free parking" in t for t in texts)

    retire_article(own.corpus_dir, article.id)
    removed = build_index(own, encoder)
    assert removed.articles_removed == [article.id] and removed.embedded == 0
    answerer.reload()
    after = answerer.ask(QUESTION)
    assert after.index_version == removed.version
    assert article.id not in [p.source.doc_id for p in after.passages]
    assert (after.kind, [p.text for p in after.passages]) == (before.kind, [p.text for p in before.passages])


def test_rollback_publishes_the_previous_version_and_serves_it(staff, encoder) -> None:
    own, answerer, first = staff
    edit(own.corpus_dir / "003-ketamine-for-anxiety.md", "- Trembling", "- Trembling or shaking hands")
    second = build_index(own, encoder)
    assert second.chunks_changed >= 1 and second.articles_changed == ["003-ketamine-for-anxiety"]
    assert answerer.reload() is True and answerer.version == second.version
    assert [m.version for m in list_versions(own.index_dir)][:2] == [second.version, first.version]
    assert rollback(own.index_dir) == first.version
    assert answerer.reload() is True and answerer.version == first.version
    assert rollback(own.index_dir, second.version) == second.version
    answerer.reload()
    assert answerer.ask("What are common symptoms of anxiety?").index_version == second.version
