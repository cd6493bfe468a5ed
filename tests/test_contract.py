"""The response vocabulary has one owner (contract.Kind); fixed texts, evaluation and the API follow it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ketfaq.contract import Kind
from ketfaq.evaluation.metrics import ACCEPTED, EXPECTED_KINDS, PREDICTED_LABELS
from ketfaq.evaluation.qa import QA_KINDS
from ketfaq.messages import NOTICES, referral_for


def test_every_kind_has_its_fixed_texts() -> None:
    for kind in Kind:
        assert NOTICES[kind].strip()
        assert referral_for(kind, crisis_referral="call 988").strip()
    assert referral_for(Kind.CRISIS, crisis_referral="call 988") == "call 988"


def test_evaluation_labels_come_from_the_enum() -> None:
    assert set(PREDICTED_LABELS) == {*Kind, "invalid", "error"}
    assert set(EXPECTED_KINDS) == set(QA_KINDS) == set(ACCEPTED)
    assert set(QA_KINDS) - {"bad_input"} == set(Kind) - {Kind.NO_MATCH}


def test_openapi_lists_the_kinds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["Kind"]["enum"]) == {k.value for k in Kind}
    assert schema["AnswerResponse"]["properties"]["kind"] == {"$ref": "#/components/schemas/Kind"}
