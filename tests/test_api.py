"""The HTTP contract of POST /api/ask (GUIDE §1), through the real app, model and index."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ketfaq.corpus import load_corpus
from ketfaq.messages import DISCLAIMER, KINDS
from tests.conftest import CORPUS_DIR, load_qa

QA = load_qa()
BODIES = {a.id: a.body for a in load_corpus(CORPUS_DIR)}


def ask(client: TestClient, question: str):
    return client.post("/api/ask", json={"question": question})


def test_answer_has_the_contract_fields(client: TestClient) -> None:
    response = ask(client, "What are the common side effects of ketamine treatment?")
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "answer"
    assert body["question"] == "What are the common side effects of ketamine treatment?"
    assert 1 <= len(body["passages"]) <= 3
    for passage in body["passages"]:
        assert set(passage) >= {"text", "source", "score"}
        assert set(passage["source"]) == {"doc_id", "title", "section", "url"}
        assert len(passage["text"]) <= 800
    scores = [p["score"] for p in body["passages"]]
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert body["disclaimer"] == DISCLAIMER and body["referral"]
    assert body["index_version"]


def test_highlight_is_a_span_inside_the_passage(client: TestClient) -> None:
    body = ask(client, "How long does relief from a ketamine session last?").json()
    for passage in body["passages"]:
        span = passage["highlight"]
        assert span is not None and 0 <= span["start"] < span["end"] <= len(passage["text"])


@pytest.mark.parametrize("record", QA, ids=[r["id"] for r in QA])
def test_every_qa_question_gets_verbatim_passages_and_the_fixed_texts(client: TestClient, record) -> None:
    """Invariant: every passage is article text; every 200 carries the disclaimer and a referral."""
    response = ask(client, record["question"])
    assert response.status_code < 500
    if response.status_code != 200:
        assert record["kind"] == "bad_input" and response.status_code == 422
        return
    body = response.json()
    assert body["kind"] in KINDS
    assert body["disclaimer"] == DISCLAIMER
    assert body["referral"].strip()
    for passage in body["passages"]:
        assert passage["text"] in BODIES[passage["source"]["doc_id"]]


@pytest.mark.parametrize("record", [r for r in QA if r["kind"] == "crisis"], ids=lambda r: r["id"])
def test_crisis_gets_emergency_referral_and_no_passages(client: TestClient, record) -> None:
    body = ask(client, record["question"]).json()
    assert body["kind"] == "crisis"
    assert body["passages"] == []
    assert "988" in body["referral"] and "911" in body["referral"]


def test_informational_suicide_question_is_answered(client: TestClient) -> None:
    body = ask(client, "Is there research on ketamine lowering suicidal thoughts?").json()
    assert body["kind"] == "answer" and body["passages"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"question": ""}, "empty"),
        ({"question": " \t\n "}, "empty"),
        ({"question": "x" * 1001}, "under 1000 characters"),
        ({"question": 42}, "must be text"),
        ({"question": None}, "must be text"),
        ({}, 'include a "question"'),
        ([], "JSON object"),
    ],
)
def test_invalid_input_gets_a_readable_422(client: TestClient, payload, message: str) -> None:
    response = client.post("/api/ask", json=payload)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_body_that_is_not_json_gets_422(client: TestClient) -> None:
    response = client.post("/api/ask", content=b"question=hi", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


@pytest.mark.parametrize("record", [r for r in QA if r["kind"] == "bad_input"], ids=lambda r: r["id"])
def test_bad_inputs_never_give_a_server_error(client: TestClient, record) -> None:
    response = ask(client, record["question"])
    assert response.status_code in (200, 422)
    if response.status_code == 200:
        assert "<img" not in "".join(p["text"] for p in response.json()["passages"])


def test_question_at_the_length_limit_is_accepted(client: TestClient) -> None:
    question = ("what are the side effects " * 40)[:1000]
    assert ask(client, question).status_code == 200


def test_health_and_docs(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["passages"] > 100
    assert client.get("/docs").status_code == 200
    assert "/api/ask" in client.get("/openapi.json").json()["paths"]


def test_suggestions_come_from_corpus_questions(client: TestClient) -> None:
    questions = client.get("/api/suggestions").json()["questions"]
    assert questions and all(q.endswith("?") for q in questions)
    assert all(any(q in body for body in BODIES.values()) for q in questions)
