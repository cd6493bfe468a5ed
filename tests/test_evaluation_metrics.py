"""Metric computations against hand-computed cases (no model, no index)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ketfaq.evaluation.gate import Check, apply_gate, load_gate
from ketfaq.evaluation.metrics import (
    Outcome,
    is_relevant,
    latency_metrics,
    retrieval_metrics,
    routing_correct,
    routing_metrics,
)
from ketfaq.evaluation.runner import check_invariants, parse_compare
from ketfaq.messages import DISCLAIMER

A1 = "the first anchor text that answers"
A2 = "a second anchor from another article"


def _o(rid: str, ranked: list[str], anchors=(A1,), expected="answer", predicted="answer", **kw) -> Outcome:
    return Outcome(rid, "q", expected, "dev_qa", predicted, {}, kw.pop("latency", 1.0), anchors=tuple(anchors),
                   ranked=[{"text": t} for t in ranked], **kw)


def test_hit_rule_collapses_whitespace_only() -> None:
    assert is_relevant("x  the first\nanchor   text that answers y", [A1])
    assert not is_relevant("The First anchor text that answers", [A1])  # case is compared as is
    assert not is_relevant("the first anchor text", [A1])


def test_ranking_metrics_match_hand_computation() -> None:
    outcomes = [
        _o("q1", ["miss", f".. {A1} ..", "miss"]),                       # first hit at rank 2
        _o("q2", [A1, "miss", A2], anchors=(A1, A2)),                     # hits at 1 and 3
        _o("q3", [], predicted="no_match"),                               # nothing shown
        _o("q4", [A1, "miss"], anchors=(A1, A2)),                         # one of two anchors found
    ]
    m = retrieval_metrics(outcomes)
    ndcg = [1 / math.log2(3),                                   # q1: DCG 1/log2(3), ideal 1
            (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)),   # q2
            0.0,                                                # q3
            1 / (1 + 1 / math.log2(3))]                         # q4: ideal counts the unfound anchor
    assert m["n"] == 4
    assert m["hit@1"] == pytest.approx(2 / 4)
    assert m["hit@2"] == pytest.approx(3 / 4)
    assert m["hit@3"] == pytest.approx(3 / 4)
    assert m["mrr@5"] == pytest.approx((0.5 + 1 + 0 + 1) / 4, abs=1e-4)
    assert m["ndcg@5"] == pytest.approx(sum(ndcg) / 4, abs=1e-4)
    assert m["hit_curve"] == [m[f"hit@{k}"] for k in range(1, 6)]


def test_near_miss_and_safety_records_do_not_count_for_retrieval() -> None:
    outcomes = [_o("q1", [A1]), _o("n1", [], anchors=()), _o("c1", [], anchors=(), expected="crisis")]
    assert retrieval_metrics(outcomes)["n"] == 1


def test_routing_acceptance_rules() -> None:
    assert routing_correct("out_of_scope", "no_match")
    assert not routing_correct("out_of_scope", "answer")
    assert routing_correct("bad_input", "invalid", must_reject=True)
    assert not routing_correct("bad_input", "no_match", must_reject=True)
    assert routing_correct("bad_input", "no_match", must_reject=False)  # "?" may get a safe response
    assert not routing_correct("bad_input", "error")
    assert not routing_correct("crisis", "personal_advice")


def test_routing_metrics_match_hand_computation() -> None:
    outcomes = [
        _o("c1", [], (), expected="crisis", predicted="crisis"),
        _o("c2", [], (), expected="crisis", predicted="answer"),
        _o("a1", [A1], predicted="answer"),
        _o("a2", [], predicted="crisis"),
        _o("a3", [], predicted="no_match"),
        _o("o1", [], (), expected="out_of_scope", predicted="no_match"),
        _o("p1", [], (), expected="personal_advice", predicted="personal_advice"),
        _o("b1", [], (), expected="bad_input", predicted="invalid", must_reject=True),
    ]
    r = routing_metrics(outcomes)
    assert r["crisis_recall"] == 0.5 and r["crisis_missed"] == ["c2"]
    assert r["crisis_false_alarms"] == 1 and r["crisis_false_alarm_ids"] == ["a2"]
    assert r["over_refusal"] == 2 and r["over_refusal_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["accuracy"] == pytest.approx(5 / 8)
    assert r["per_kind"]["crisis"] == {"n": 2, "recall": 0.5, "precision": 0.5}
    assert r["per_kind"]["answer"]["precision"] == 0.5  # c2 was "answered" too
    # a3 (answer -> no_match) counts against out_of_scope precision: not answered is what it claims
    assert r["per_kind"]["out_of_scope"] == {"n": 1, "recall": 1.0, "precision": 0.5}
    assert r["confusion"]["answer"]["crisis"] == 1 and r["confusion"]["bad_input"]["invalid"] == 1


def test_latency_percentiles() -> None:
    lat = latency_metrics([_o(str(i), [], latency=float(i)) for i in range(1, 101)])
    assert lat["p50"] == 50.5 and lat["max"] == 100.0
    assert lat["p95"] == pytest.approx(95.05, abs=0.06)  # linear interpolation between 95 and 96


def _response(**change) -> dict:
    base = {"kind": "answer", "question": "q", "passages": [
        {"text": "Individuals with GAD experience persistent and excessive worry about various aspects of life.",
         "source": {"doc_id": "000-x", "title": "t", "section": "s", "url": None}, "score": 0.5}],
        "disclaimer": DISCLAIMER, "referral": "ask a clinician", "notice": "n", "index_version": "v"}
    return {**base, **change}


def test_invariants() -> None:
    bodies = {"000-x": "Intro. Individuals with GAD experience persistent and excessive worry about various aspects of life."}
    assert check_invariants(_response(), bodies) == []
    assert any(f.startswith("disclaimer") for f in check_invariants(_response(disclaimer=DISCLAIMER + " "), bodies))
    assert any(f.startswith("referral") for f in check_invariants(_response(referral=" "), bodies))
    assert any(f.startswith("verbatim") for f in check_invariants(_response(), {"000-x": "other text"}))
    assert any(f.startswith("crisis_passages") for f in check_invariants(_response(kind="crisis"), bodies))


def test_gate_always_requires_full_crisis_recall() -> None:
    metrics = {"all": {"routing": {"crisis_recall": 0.99}, "retrieval": {"hit@1": 0.9}}, "by_source": {}}
    results = apply_gate(metrics, [Check("all.retrieval.hit@1", min=0.7)])
    assert [r.passed for r in results] == [False, True]
    metrics["all"]["routing"]["crisis_recall"] = 1.0
    assert all(r.passed for r in apply_gate(metrics, [Check("all.retrieval.hit@1", min=0.7)]))
    assert not apply_gate(metrics, [Check("dev_qa.retrieval.hit@1", min=0.1)])[-1].passed  # missing


def test_gate_file_is_checked_eagerly(tmp_path: Path) -> None:
    assert load_gate(Path(__file__).resolve().parents[1] / "qa" / "gate.yaml")
    bad = tmp_path / "gate.yaml"
    bad.write_text("checks:\n  - metric: all.retrieval.hit@1\n    minimum: 0.7\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_gate(bad)


def test_parse_compare() -> None:
    assert [(c.name, c.mode, c.overrides) for c in parse_compare("dense,bm25,hybrid")] == [
        ("dense", "dense", {}), ("bm25", "bm25", {}), ("hybrid", "hybrid", {})]
    sizes = parse_compare("chunk_size=500,700")
    assert [(c.name, c.overrides) for c in sizes] == [("chunk_size=500", {"chunk_size": "500"}),
                                                      ("chunk_size=700", {"chunk_size": "700"})]
    assert all(c.needs_index for c in sizes)
    combo = parse_compare("dense+bm25_weight=0.3")[0]
    assert (combo.mode, combo.overrides, combo.needs_index) == ("dense", {"bm25_weight": "0.3"}, False)
    with pytest.raises(ValueError, match="unknown setting"):
        parse_compare("chunk_sise=500")


def test_a_long_bad_input_may_get_crisis_help_and_that_is_no_false_alarm() -> None:
    # Every message is screened before the length check: a long crisis gets help, not a 422.
    assert routing_correct("bad_input", "crisis", must_reject=True)
    assert not routing_correct("bad_input", "answer", must_reject=True)
