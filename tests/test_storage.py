"""The data layer on SQLite and on a real PostgreSQL: the same behaviour, through the same stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ketfaq.api import create_app
from ketfaq.feedback import FeedbackStore
from ketfaq.staff.accounts import StaffStore
from ketfaq.storage import database_url as url_for
from ketfaq.storage import engine_for
from ketfaq.unanswered import UnansweredStore


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_schema_is_migrated_by_alembic(database_url: str, tmp_path: Path) -> None:
    engine = engine_for(url_for(tmp_path / "db.sqlite3", database_url))
    tables = set(sa.inspect(engine).get_table_names())
    assert {"question_group", "question_variant", "feedback", "staff", "staff_session", "audit",
            "alembic_version"} <= tables
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_unanswered_grouping_retention_and_cap(database_url: str, tmp_path: Path) -> None:
    store = UnansweredStore(tmp_path / "db.sqlite3", url=database_url, retention_days=30, max_groups=2)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = store.record("Is there parking?", _vector(1), now=start)
    assert store.record("is there PARKING", _vector(9), now=start) == first  # same words
    assert store.record("Is there parking??", _vector(1), now=start) == first
    store.record("Do you take Medicare?", _vector(2), now=start + dt.timedelta(days=40))
    assert [(g.text, g.count) for g in store.groups()] == [("Do you take Medicare?", 1)]
    store.record("Are pets allowed?", _vector(3), now=start + dt.timedelta(days=41))
    store.record("Is there a bus?", _vector(4), now=start + dt.timedelta(days=42))
    assert {g.text for g in store.groups()} == {"Are pets allowed?", "Is there a bus?"}
    gid = store.groups()[0].id
    assert store.dismiss(gid) and not store.dismiss(gid)
    assert store.purge(older_than_days=0) == 1 and store.groups() == []


def test_feedback_and_staff_accounts(database_url: str, tmp_path: Path) -> None:
    feedback = FeedbackStore(tmp_path / "db.sqlite3", url=database_url)
    entry = feedback.record(question="Is there parking? I'm Maria Lopez", kind="no_match", helpful=False,
                            index_version="v1", passage_ids=["a", "b"], comment="mail a@b.example")
    assert feedback.entries()[0].comment == "mail [email]" and feedback.get(entry).passage_ids == ["a", "b"]
    assert feedback.mark_handled(entry) and feedback.entries() == []
    staff = StaffStore(tmp_path / "db.sqlite3", url=database_url)
    staff.add("dana", "correct horse battery staple")
    assert staff.verify("dana", "correct horse battery staple") and not staff.verify("dana", "wrong password!!")
    session_id, csrf = staff.start_session("dana")
    assert staff.session(session_id).csrf == csrf
    staff.add("dana", "another long password")  # a reset signs every session out
    assert staff.session(session_id) is None
    staff.audit("dana", "published", "v2")
    assert [(e.name, e.action) for e in staff.audit_log()] == [("dana", "published")]
    assert staff.remove("dana") and staff.names() == []


def test_the_app_keeps_its_records_in_the_configured_database(database_url: str, settings, answerer,
                                                             tmp_path: Path) -> None:
    """Over HTTP: unanswered questions and feedback land in that database (PostgreSQL or SQLite)."""
    own = settings.model_copy(update={"database_url": database_url, "db_path": tmp_path / "db.sqlite3",
                                      "record_unanswered": True, "reload_interval": 0.0})
    with TestClient(create_app(own, answerer)) as client:
        kinds = [client.post("/api/ask", json={"question": q}).json()["kind"]
                 for q in ("Can I bring my dog to my appointment?", "Is there parking at the clinic for patients?")]
        assert "no_match" in kinds
        answer = client.post("/api/ask", json={"question": "Does a ketamine infusion hurt?"}).json()
        client.post("/api/feedback", json={"question": answer["question"], "kind": answer["kind"],
                                           "index_version": answer["index_version"], "helpful": False})
    assert UnansweredStore(own.db_path, url=database_url).groups()
    assert FeedbackStore(own.db_path, url=database_url).entries()[0].question == "Does a ketamine infusion hurt?"
    assert (tmp_path / "db.sqlite3").exists() == (database_url == "")  # PostgreSQL: no SQLite file at all
