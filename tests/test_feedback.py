"""Visitor feedback over HTTP: stored redacted with what was shown, never for crises; the review queue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from ketfaq.api import create_app
from ketfaq.feedback import FeedbackStore

TOKEN = "feedback-tests-admin-token"


def _client(settings, answerer, tmp_path: Path, database_url: str) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={
        "admin_token": TOKEN, "db_path": tmp_path / "db.sqlite3", "reload_interval": 0.0,
        "database_url": database_url,
        "metrics_token": "feedback-tests-metrics-token"}), answerer))


def test_feedback_is_stored_redacted_and_not_helpful_joins_the_queue(settings, answerer, tmp_path: Path,
                                                                    database_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with _client(settings, answerer, tmp_path, database_url) as c:
        answer = c.post("/api/ask", json={"question": "How long does a session last?"}).json()
        base = {"question": "How long does a session last? I'm Maria Lopez", "kind": answer["kind"],
                "index_version": answer["index_version"], "passage_ids": [p["id"] for p in answer["passages"]]}
        assert c.post("/api/feedback", json={**base, "helpful": True}).json() == {"recorded": True}
        assert c.post("/api/feedback", json={**base, "helpful": False,
                                             "comment": "call me on (415) 555-0134"}).json()["recorded"]
        queue = c.get("/api/admin/feedback", headers=auth).json()
        assert len(queue) == 1 and queue[0]["comment"] == "call me on [phone]"
        assert queue[0]["question"] == "How long does a session last? I'm [name]"
        assert queue[0]["passage_ids"] == base["passage_ids"] and queue[0]["passage_ids"]
        everything = c.get("/api/admin/feedback", params={"verdict": "all"}, headers=auth).json()
        assert [e["helpful"] for e in everything] == [False, True]
        handled = c.post(f"/api/admin/feedback/{queue[0]['id']}/handled", headers=auth)
        assert handled.status_code == 200 and handled.json()["handled"]
        assert c.get("/api/admin/feedback", headers=auth).json() == []
        assert c.post(f"/api/admin/feedback/{queue[0]['id']}/handled", headers=auth).status_code == 404
        assert c.get("/api/admin/feedback").status_code == 401
        metrics = c.get("/metrics", headers={"Authorization": "Bearer feedback-tests-metrics-token"}).text
        assert 'ketfaq_feedback_total{helpful="false",kind="answer"}' in metrics


def test_crisis_answers_take_no_feedback_and_bad_feedback_is_a_clear_422(settings, answerer, tmp_path: Path,
                                                                        database_url: str) -> None:
    with _client(settings, answerer, tmp_path, database_url) as c:
        crisis = {"question": "I want to die", "kind": "crisis", "index_version": "v", "helpful": False}
        refused = c.post("/api/feedback", json=crisis)
        assert refused.status_code == 422 and "crisis" in refused.json()["detail"]
        too_long = c.post("/api/feedback", json={**crisis, "kind": "answer", "comment": "x" * 501})
        assert too_long.status_code == 422 and isinstance(too_long.json()["detail"], str)
        assert c.post("/api/feedback", json={**crisis, "kind": "nonsense"}).status_code == 422
    assert FeedbackStore(tmp_path / "db.sqlite3", url=database_url).entries(helpful=None) == []


def test_old_feedback_is_forgotten(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3", retention_days=30)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    store.record(question="q1", kind="answer", helpful=False, index_version="v", passage_ids=[], now=start)
    store.record(question="q2", kind="answer", helpful=False, index_version="v", passage_ids=[],
                 now=start + dt.timedelta(days=31))
    assert [e.question for e in store.entries()] == ["q2"]


def test_review_feedback_command(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from ketfaq.cli import app
    from ketfaq.settings import get_settings

    db = tmp_path / "db.sqlite3"
    entry = FeedbackStore(db).record(question="Is there parking?", kind="no_match", helpful=False,
                                     index_version="v1", passage_ids=[], comment="nothing on parking")
    monkeypatch.setenv("KETFAQ_DB_PATH", str(db))
    get_settings.cache_clear()
    try:
        listed = CliRunner().invoke(app, ["review", "feedback"])
        done = CliRunner().invoke(app, ["review", "feedback", "--handled", str(entry)])
        after = CliRunner().invoke(app, ["review", "feedback"])
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 0 and "Is there parking?" in listed.stdout and "nothing on parking" in listed.stdout
    assert done.exit_code == 0 and "no answers marked not helpful" in after.stdout
