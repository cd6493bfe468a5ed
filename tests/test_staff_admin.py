"""Admin endpoints: disabled without a token, refused without the right one; unanswered questions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ketfaq.api import create_app
from ketfaq.unanswered import UnansweredStore, redact

TOKEN = "s3cret-admin-token-for-tests"
# In scope, but no article answers them: at least one must come back as no_match.
# Long enough that "My e-mail is [email]" appended keeps a variant within the grouping similarity
# (a five-word question plus contact details can fall just under 0.85).
UNANSWERED = [
    "Is there a parking garage next to the clinic, and how much does it cost per hour?",
    "Is there parking at the clinic for patients?",
    "Can I pay with a credit card?",
    "Can I bring my dog to my appointment?",
    "Do you accept Medicare for the sessions?",
]


def _client(settings, answerer, **overrides) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"reload_interval": 0.0, **overrides}), answerer))


@pytest.fixture()
def admin(settings, answerer, tmp_path: Path) -> Iterator[TestClient]:
    with _client(settings, answerer, admin_token=TOKEN, record_unanswered=True,
                 db_path=tmp_path / "db.sqlite3") as client:
        yield client


def _no_match_question(client: TestClient) -> str:
    for question in UNANSWERED:
        if client.post("/api/ask", json={"question": question}).json()["kind"] == "no_match":
            return question
    pytest.fail("none of the unanswerable questions came back as no_match")


@pytest.mark.parametrize(("method", "path"), [("post", "/api/admin/reload"), ("get", "/api/admin/unanswered"),
                                              ("get", "/api/admin/versions")])
def test_admin_is_404_when_no_token_is_configured(settings, answerer, method, path) -> None:
    with _client(settings, answerer, admin_token="") as client:
        assert getattr(client, method)(path).status_code == 404
        assert getattr(client, method)(path, headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    f"Bearer {TOKEN[:-1]}"])
@pytest.mark.parametrize(("method", "path"), [("post", "/api/admin/reload"), ("get", "/api/admin/unanswered")])
def test_admin_refuses_a_missing_or_wrong_token(admin: TestClient, header, method, path) -> None:
    headers = {"Authorization": header} if header else {}
    response = getattr(admin, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_admin_accepts_the_token(admin: TestClient, answerer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reload = admin.post("/api/admin/reload", headers=auth)
    assert reload.status_code == 200
    assert reload.json() == {"reloaded": False, "previous_version": answerer.version,
                             "index_version": answerer.version}
    versions = admin.get("/api/admin/versions", headers=auth).json()
    assert [v["version"] for v in versions if v["serving"]] == [answerer.version]


def test_redaction_removes_emails_and_phone_numbers_only() -> None:
    question = ("Email me at jane.doe+k@mail.example.org or call (212) 555-0199 / +44 20 7946 0958: "
                "is 0.5 mg/kg in 2 sessions too much? Call 988?")
    assert redact(question) == ("Email me at [email] or call [phone] / [phone]: "
                                "is 0.5 mg/kg in 2 sessions too much? Call 988?")


def test_no_match_questions_are_stored_redacted_grouped_and_listed(admin: TestClient, tmp_path: Path) -> None:
    question = _no_match_question(admin)
    variants = [f"{question} My e-mail is pat@example.com", f"{question.upper()}  My e-mail is pat@example.com!!",
                f"{question} Call me on 415-555-0123."]
    for text in variants:
        assert admin.post("/api/ask", json={"question": text}).json()["kind"] == "no_match"
    assert admin.post("/api/ask", json={"question": "Is ketamine addictive?"}).json()["kind"] != "no_match"

    listed = admin.get("/api/admin/unanswered", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert listed["recording"] is True
    dump = repr(listed)
    assert "pat@example.com" not in dump and "415-555-0123" not in dump and "addictive" not in dump
    group = next(g for g in listed["groups"] if g["count"] >= 3)
    assert "[email]" in " ".join(group["variants"]) and "[phone]" in " ".join(group["variants"])
    assert group["first_seen"] <= group["last_seen"]
    stored = UnansweredStore(tmp_path / "db.sqlite3").groups()
    assert sum(g.count for g in stored) == 1 + len(variants)  # the probe question too
    raw = (tmp_path / "db.sqlite3").read_bytes()
    assert b"pat@example.com" not in raw and b"415-555-0123" not in raw


def test_grouping_by_normalized_text_and_by_meaning(tmp_path: Path, encoder) -> None:
    store = UnansweredStore(tmp_path / "u.sqlite3", similarity=0.85)
    texts = ["Can I bring my dog to the clinic?", "can i bring my dog to the clinic??",
             "Can I bring my dog to the clinic with me?", "Does insurance cover ketamine?"]
    vectors = encoder.encode(texts)
    ids = [store.record(t, v) for t, v in zip(texts, vectors)]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    groups = store.groups()
    assert [(g.text, g.count) for g in groups] == [(texts[0], 3), (texts[3], 1)]
    assert store.dismiss(ids[3]) and [g.id for g in store.groups()] == [ids[0]]


def test_recording_can_be_switched_off(settings, answerer, tmp_path: Path) -> None:
    with _client(settings, answerer, admin_token=TOKEN, record_unanswered=False,
                 db_path=tmp_path / "off.sqlite3") as client:
        _no_match_question(client)
        listed = client.get("/api/admin/unanswered", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert listed == {"recording": False, "groups": []}
    assert not (tmp_path / "off.sqlite3").exists()


def test_question_text_never_reaches_the_log(admin: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    marker = "zebracorn-4711"
    with caplog.at_level(logging.DEBUG):
        for question in [f"{UNANSWERED[0]} {marker}", f"Is ketamine addictive? {marker}"]:
            assert admin.post("/api/ask", json={"question": question}).status_code == 200
    assert caplog.records and marker not in caplog.text


def test_wrong_admin_tokens_are_throttled_and_then_even_the_right_one_waits(admin: TestClient) -> None:
    wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
    codes = [admin.post("/api/admin/reload", headers=wrong).status_code for _ in range(15)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    right = admin.post("/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 429 and right.headers["retry-after"] == "60"
