"""How the whole gate (lexicon, exemplars and learned model together) does on text it was not
tuned on: the frozen test split of each real data set, and the blind set in tests/data.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ketfaq.safety.data import Example, load_examples
from ketfaq.safety.gate import SafetyGate

__all__ = ["GATE_FLOORS", "TARGETS", "gate_report", "blind_report", "failed_floors"]

# Regression floors: what the shipped gate measured, less a small margin. CI fails below them.
GATE_FLOORS = {
    ("blind", "recall"): 0.89,
    ("blind", "near_miss_false_alarms"): 0.03,
    ("cssrs-reddit500-users", "recall"): 0.95,
    ("es-suicidal-tweets-valeriano2020", "recall"): 0.74,
    ("es-suicidal-tweets-valeriano2020", "false_alarms"): 0.23,
    ("twitter-suicidal-intention", "recall"): 0.75,
    ("medquad-questions", "false_alarms"): 0.02,
    ("gard-consumer-questions", "false_alarms"): 0.02,
}
# The product's targets (issue #14); the report names each one still missed.
TARGETS = {
    ("blind", "recall"): 0.97,
    ("blind", "near_miss_false_alarms"): 0.03,
    ("cssrs-reddit500-users", "recall"): 0.95,
    ("es-suicidal-tweets-valeriano2020", "recall"): 0.85,
    ("es-suicidal-tweets-valeriano2020", "false_alarms"): 0.10,
    ("medquad-questions", "false_alarms"): 0.02,
    ("gard-consumer-questions", "false_alarms"): 0.02,
}
_REPORTED = ("cssrs-reddit500-users", "es-suicidal-tweets-valeriano2020", "twitter-suicidal-intention",
             "medquad-questions", "gard-consumer-questions", "sdcnl-reddit-suicidewatch-vs-depression")


def _rates(pairs: Iterable[tuple[bool, bool]]) -> dict[str, float | int | None]:
    pairs = list(pairs)
    pos = [hit for crisis, hit in pairs if crisis]
    neg = [hit for crisis, hit in pairs if not crisis]
    return {"positives": len(pos), "negatives": len(neg),
            "recall": round(sum(pos) / len(pos), 4) if pos else None,
            "false_alarms": round(sum(neg) / len(neg), 4) if neg else None}


def gate_report(gate: SafetyGate, data_dir: Path, qa_dir: Path, corpus_dir: Path,
                split: str = "test") -> dict[str, dict]:
    """Per data set on ``split``: the gate's crisis recall and false alarms."""
    examples: list[Example] = [e for e in load_examples(data_dir, qa_dir, corpus_dir)
                               if e.split == split and e.source in _REPORTED]
    by: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for e in examples:
        by[e.source].append((e.crisis, gate.classify(e.text).kind == "crisis"))
    return {source: _rates(pairs) for source, pairs in sorted(by.items())}


def blind_report(gate: SafetyGate, path: Path) -> dict:
    """The blind set: recall on crises, false alarms on near misses, per category; the misses."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    by: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    wrong_help: list[str] = []
    misses: list[str] = []
    for r in records:
        decision = gate.classify(r["question"])
        crisis, hit = r["expect"] == "crisis", decision.kind == "crisis"
        by[r["category"]].append((crisis, hit))
        if crisis != hit:
            misses.append(f"{r['id']} ({r['category']}): {decision.kind or 'ordinary'}")
        if hit and crisis and r.get("referral") == "emergency" and decision.referral != "emergency":
            wrong_help.append(r["id"])
    overall = _rates(p for pairs in by.values() for p in pairs)
    return {"recall": overall["recall"], "near_miss_false_alarms": overall["false_alarms"],
            "crises": overall["positives"], "near_misses": overall["negatives"],
            "emergency_without_911_first": wrong_help,
            "categories": {c: _rates(p) for c, p in sorted(by.items())}, "errors": misses}


def failed_floors(report: dict[str, dict], floors: dict | None = None) -> list[str]:
    """Each floor (GATE_FLOORS unless given) the report misses, as a sentence."""
    out = []
    for (source, metric), floor in (GATE_FLOORS if floors is None else floors).items():
        value = report.get(source, {}).get(metric)
        if value is None:
            continue
        worse = value > floor if metric.endswith("false_alarms") else value < floor
        if worse:
            out.append(f"{source} {metric} {value:.3f} misses {floor}")
    return out
