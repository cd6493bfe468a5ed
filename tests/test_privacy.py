"""Nothing private kept in clear: redaction of planted PII, retention, a cap, and the database
file itself checked for what it must never hold."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ketfaq.api import create_app
from ketfaq.redaction import redact
from ketfaq.unanswered import UnansweredStore

from .conftest import ROOT, load_qa

PLANTED = [json.loads(line) for line in (ROOT / "tests" / "data" / "planted_pii.jsonl").open(encoding="utf-8")]


def _gone(item: str, text: str) -> bool:
    """No word or number of the planted ``item`` survives in ``text``."""
    tokens = [t for t in re.findall(r"[\w@.+'-]+", item) if any(c.isalnum() for c in t)]
    return all(t not in text for t in tokens if len(t) > 2 or t.isdigit())


def test_planted_pii_is_redacted_and_doses_are_kept() -> None:
    found = [_gone(item, redact(r["text"])) for r in PLANTED for item in r["pii"]]
    recall = sum(found) / len(found)
    assert len(found) >= 150 and recall >= 0.95, f"PII recall {recall:.3f}"
    for r in PLANTED:
        out = redact(r["text"])
        assert all(k in out for k in r["keep"]), (r["id"], out)
    for category in {r["category"] for r in PLANTED}:
        hits = [_gone(i, redact(r["text"])) for r in PLANTED if r["category"] == category for i in r["pii"]]
        assert sum(hits) / len(hits) >= 0.9, category


def test_ordinary_questions_are_left_alone() -> None:
    questions = [r["question"] for name in ("dev_qa.jsonl", "answers_extra.jsonl", "answers_lay.jsonl",
                                            "safety_extra.jsonl", "uncovered_extra.jsonl") for r in load_qa(name)]
    changed = [q for q in questions if redact(q) != q]
    assert len(changed) <= 0.01 * len(questions), changed[:10]


def test_the_database_file_never_holds_the_planted_identifiers(settings, answerer, tmp_path: Path) -> None:
    """Every planted message through the real app; then the raw bytes of the SQLite files."""
    db = tmp_path / "db.sqlite3"
    app = create_app(settings.model_copy(update={"record_unanswered": True, "db_path": db,
                                                 "reload_interval": 0.0}), answerer)
    recorded = 0
    with TestClient(app) as client:
        for r in PLANTED:
            recorded += client.post("/api/ask", json={"question": r["text"]}).json()["kind"] == "no_match"
    assert recorded >= 20  # most of these are logistics questions the articles don't answer
    # The file's own timestamps hold digits of every kind: look for each identifier whole.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite3*")).decode("utf-8", "replace")
    leaked = [(r["id"], item) for r in PLANTED for item in r["pii"]
              if r["category"] in ("contact", "ssn", "number", "date") and item in raw]
    assert not leaked, leaked


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_retention_and_cap_forget_the_oldest(tmp_path: Path) -> None:
    store = UnansweredStore(tmp_path / "u.sqlite3", retention_days=30, max_groups=3)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    store.record("Is there parking?", _vector(1), now=start)
    store.record("Do you take Medicare?", _vector(2), now=start + dt.timedelta(days=40))
    assert [g.text for g in store.groups()] == ["Do you take Medicare?"]  # the first is past 30 days
    for i, question in enumerate(["Are pets allowed?", "Is there a bus?", "Do you open Sundays?"]):
        store.record(question, _vector(3 + i), now=start + dt.timedelta(days=41 + i))
    texts = {g.text for g in store.groups()}
    assert len(texts) == 3 and "Do you take Medicare?" not in texts  # the least recently asked went
    assert store.purge(older_than_days=0, now=start + dt.timedelta(days=50)) == 3
    assert store.groups() == []


def test_review_purge_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ketfaq.cli import app
    from ketfaq.settings import get_settings

    db = tmp_path / "u.sqlite3"
    UnansweredStore(db).record("Is there parking?", _vector(1),
                               now=dt.datetime.now(dt.UTC) - dt.timedelta(days=200))
    UnansweredStore(db).record("Do you take Medicare?", _vector(2))
    monkeypatch.setenv("KETFAQ_DB_PATH", str(db))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["review", "purge"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "deleted 1 group" in result.stdout
    assert [g.text for g in UnansweredStore(db).groups()] == ["Do you take Medicare?"]


def test_recording_reuses_the_answers_vector(answerer) -> None:
    question = "Can I bring my dog to my appointment?"
    answerer.ask(question)
    assert answerer.question_vector(question) is answerer.question_vector(question)
    before = answerer._vectors[question]
    assert answerer.question_vector(question) is before  # no second embedding
