"""Metric definitions over evaluated records: retrieval ranking, routing, invariants, latency.

Retrieval (answer records with anchors), over the ranked passages a record got back:
  * a passage is *relevant* if it contains one of the record's anchors after collapsing whitespace;
  * hit@k  = share of records with a relevant passage in the top k (``Success@k``);
  * MRR@5  = mean of 1/rank of the first relevant passage in the top 5, 0 if none (``RR@5``);
  * nDCG@5 = binary-gain nDCG over the top 5 (``nDCG@5``). The ideal ranking holds every returned
    relevant passage plus one placeholder per anchor no returned passage contains, so covering
    more of the answering passages (often from several articles) scores higher.
  A record answered without passages (no_match, crisis, an error) scores 0 on all of them.
  The ranking measures are computed by ir-measures (pytrec_eval), not by hand.

Routing: the expected kind of each record against what came back (a response kind, ``invalid``
for a 422, ``error`` for anything else). Accepted outcomes per expected kind: see :data:`ACCEPTED`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import ir_measures
import numpy as np
from ir_measures import RR, Success, nDCG

from ketfaq.contract import Kind
from ketfaq.evaluation.qa import QA_KINDS, collapse

__all__ = [
    "ACCEPTED", "EXPECTED_KINDS", "PREDICTED_LABELS", "Outcome",
    "is_relevant", "routing_correct", "retrieval_metrics", "routing_metrics",
    "invariant_metrics", "latency_metrics", "summarize",
]

# Crisis first: the confusion matrix reads in order of what matters most.
EXPECTED_KINDS = (Kind.CRISIS, *(k for k in QA_KINDS if k != Kind.CRISIS))
# What a record can end as: a response kind, or refused (invalid) / failed (error).
PREDICTED_LABELS = (Kind.CRISIS, *(k for k in Kind if k != Kind.CRISIS), "invalid", "error")
# out_of_scope means "not answered from the articles": no_match is that too.
ACCEPTED: dict[str, frozenset[str]] = {
    **{kind: frozenset({kind}) for kind in QA_KINDS if kind in set(Kind)},
    Kind.OUT_OF_SCOPE: frozenset({Kind.OUT_OF_SCOPE, Kind.NO_MATCH}),
    "bad_input": frozenset({"invalid"}),
}
CUTOFFS = (1, 2, 3, 4, 5)


@dataclass(slots=True)
class Outcome:
    """What one QA record got back, plus what was expected of it."""

    id: str
    question: str
    expected: str
    source: str
    predicted: str
    response: dict | None
    latency_ms: float
    anchors: tuple[str, ...] = ()
    ranked: list[dict] = field(default_factory=list)  # passages in rank order (text, source, score)
    detail: str = ""
    must_reject: bool = False  # breaks the input contract (empty, blank, too long): 422 (or crisis help)
    invariant_failures: list[str] = field(default_factory=list)

    @property
    def is_ranked(self) -> bool:
        return self.expected == "answer" and bool(self.anchors)

    @property
    def relevance(self) -> list[bool]:
        return [is_relevant(p.get("text", ""), self.anchors) for p in self.ranked]

    @property
    def first_hit(self) -> int | None:
        """1-based rank of the first relevant passage, None when there is none."""
        return next((i for i, rel in enumerate(self.relevance, 1) if rel), None)

    @property
    def routing_ok(self) -> bool:
        return routing_correct(self.expected, self.predicted, must_reject=self.must_reject)


def is_relevant(passage: str, anchors: Sequence[str]) -> bool:
    """The hit rule: the passage contains an anchor once whitespace is collapsed on both sides."""
    text = collapse(passage)
    return any(collapse(anchor) in text for anchor in anchors)


def routing_correct(expected: str, predicted: str, *, must_reject: bool = False) -> bool:
    """Whether ``predicted`` is an accepted outcome for a record of kind ``expected``.

    bad_input: a 422 when the question breaks the input contract; otherwise a 422 or any
    proper response (a clear error or a safe response, never a server error).
    """
    if expected == "bad_input" and not must_reject:
        return predicted != "error"
    if expected == "bad_input":  # every message is screened first: a long crisis gets help
        return predicted in ("invalid", "crisis")
    return predicted in ACCEPTED[expected]


def _run_and_qrels(outcomes: Sequence[Outcome]) -> tuple[dict, dict]:
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for o in outcomes:
        relevance = o.relevance[: max(CUTOFFS)]
        texts = [collapse(p.get("text", "")) for p in o.ranked[: max(CUTOFFS)]]
        uncovered = [a for a in o.anchors if not any(collapse(a) in t for t in texts)]
        qrels[o.id] = {f"p{rank}": 1 for rank, rel in enumerate(relevance, 1) if rel}
        qrels[o.id].update({f"missing-{i}": 1 for i, _ in enumerate(uncovered)})
        # Distinct descending scores keep the system's order; an empty answer is a sure miss.
        run[o.id] = {f"p{rank}": 1.0 / rank for rank in range(1, len(relevance) + 1)} or {"none": 0.0}
    return run, qrels


def retrieval_metrics(outcomes: Sequence[Outcome]) -> dict:
    """hit@1..5, MRR@5 and nDCG@5 over the ranked (answer-with-anchors) outcomes."""
    ranked = [o for o in outcomes if o.is_ranked]
    if not ranked:
        return {"n": 0}
    run, qrels = _run_and_qrels(ranked)
    measures = [Success @ k for k in CUTOFFS] + [RR @ 5, nDCG @ 5]
    per_query: dict[str, dict[str, float]] = {o.id: {} for o in ranked}
    for m in ir_measures.iter_calc(measures, qrels, run):
        per_query[m.query_id][str(m.measure)] = float(m.value)
    def mean(name: str) -> float:
        return round(float(np.mean([per_query[q].get(name, 0.0) for q in per_query])), 4)
    result = {"n": len(ranked)}
    result.update({f"hit@{k}": mean(f"Success@{k}") for k in CUTOFFS})
    result["mrr@5"] = mean("RR@5")
    result["ndcg@5"] = mean("nDCG@5")
    result["hit_curve"] = [result[f"hit@{k}"] for k in CUTOFFS]
    return result


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def routing_metrics(outcomes: Sequence[Outcome]) -> dict:
    """Confusion matrix, per-kind precision/recall, crisis recall and false alarms, over-refusal."""
    matrix = {e: {p: 0 for p in PREDICTED_LABELS} for e in EXPECTED_KINDS}
    for o in outcomes:
        matrix[o.expected][o.predicted if o.predicted in PREDICTED_LABELS else "error"] += 1
    per_kind: dict[str, dict] = {}
    for kind in EXPECTED_KINDS:
        mine = [o for o in outcomes if o.expected == kind]
        claimed = [o for o in outcomes if o.predicted in ACCEPTED[kind]]
        true_pos = [o for o in claimed if o.expected == kind]
        per_kind[kind] = {
            "n": len(mine),
            "recall": _rate(sum(o.routing_ok for o in mine), len(mine)),
            "precision": _rate(len(true_pos), len(claimed)),
        }
    crisis = [o for o in outcomes if o.expected == "crisis"]
    # False alarms are questions a visitor means as ordinary (answer, personal advice, out of
    # scope); bad input has no meaning to mistake, and a crisis reply to it is a safe response.
    alarms = [o for o in outcomes if o.expected not in ("crisis", "bad_input") and o.predicted == "crisis"]
    answers = [o for o in outcomes if o.expected == "answer"]
    # Questions the articles don't answer (out_of_scope records) that were shown passages anyway.
    uncovered = [o for o in outcomes if o.expected == "out_of_scope"]
    shown = [o for o in uncovered if o.response and o.response.get("passages")]
    refused = [o for o in answers if o.predicted != "answer"]
    return {
        "n": len(outcomes),
        "accuracy": _rate(sum(o.routing_ok for o in outcomes), len(outcomes)),
        "crisis_recall": _rate(sum(o.predicted == "crisis" for o in crisis), len(crisis)),
        "crisis_missed": [o.id for o in crisis if o.predicted != "crisis"],
        "crisis_false_alarms": len(alarms),
        "crisis_false_alarm_ids": [o.id for o in alarms],
        "over_refusal": len(refused),
        "over_refusal_rate": _rate(len(refused), len(answers)),
        "over_refusal_ids": [o.id for o in refused],
        "uncovered_answered_rate": _rate(len(shown), len(uncovered)),
        "uncovered_answered_ids": [o.id for o in shown],
        "per_kind": per_kind,
        "confusion": matrix,
        "labels": {"expected": list(EXPECTED_KINDS), "predicted": list(PREDICTED_LABELS)},
    }


def invariant_metrics(outcomes: Sequence[Outcome]) -> dict:
    """Share of proper responses that keep every contract invariant, and failures by invariant."""
    checked = [o for o in outcomes if o.response is not None and o.predicted not in ("invalid", "error")]
    failures = Counter(f.split(":", 1)[0] for o in checked for f in o.invariant_failures)
    ok = sum(not o.invariant_failures for o in checked)
    return {"n": len(checked), "ok": ok, "rate": _rate(ok, len(checked)), "failures": dict(failures),
            "failed_ids": [o.id for o in checked if o.invariant_failures]}


def latency_metrics(outcomes: Sequence[Outcome]) -> dict:
    """p50, p95 and max latency in milliseconds over every request made."""
    values = np.array([o.latency_ms for o in outcomes], dtype=float)
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), "p50": round(float(np.percentile(values, 50)), 1),
            "p95": round(float(np.percentile(values, 95)), 1), "max": round(float(values.max()), 1),
            "mean": round(float(values.mean()), 1)}


def summarize(outcomes: Sequence[Outcome]) -> dict:
    """Every metric for one group of outcomes."""
    return {
        "n_records": len(outcomes),
        "retrieval": retrieval_metrics(outcomes),
        "routing": routing_metrics(outcomes),
        "invariants": invariant_metrics(outcomes),
        "latency_ms": latency_metrics(outcomes),
    }
