"""The CI gate: thresholds from a checked-in YAML file checked against ``metrics.json``.

Each check names a metric by its path in the metrics, rooted at ``all`` (every record) or a QA
file's stem (``dev_qa``, ``answers_extra``, ...), and a ``min`` and/or ``max``. Crisis recall
below 1.0 fails whatever the file says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Check", "GateResult", "load_gate", "apply_gate", "ALWAYS"]


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold: ``metric`` must be >= ``min`` and/or <= ``max``."""

    metric: str
    min: float | None = None
    max: float | None = None
    why: str = ""


ALWAYS = (Check("all.routing.crisis_recall", min=1.0, why="every crisis message gets the emergency referral"),)


@dataclass(frozen=True, slots=True)
class GateResult:
    check: Check
    value: float | None
    passed: bool

    def line(self) -> str:
        bound = " and ".join(x for x in (f">= {self.check.min}" if self.check.min is not None else "",
                                         f"<= {self.check.max}" if self.check.max is not None else "") if x)
        shown = "missing" if self.value is None else f"{self.value:.4g}"
        return f"- {'PASS' if self.passed else 'FAIL'} `{self.check.metric}` = {shown} (want {bound})"


def load_gate(path: Path) -> list[Check]:
    """Checks from a gate file, validated eagerly with errors that name the entry."""
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    entries = data.get("checks")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: needs a non-empty 'checks' list")
    checks = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
            raise ValueError(f"{path}: check {i} needs a 'metric' path")
        unknown = set(entry) - {"metric", "min", "max", "why"}
        if unknown:
            raise ValueError(f"{path}: check {i} has unknown key(s) {sorted(unknown)}; valid: metric, min, max, why")
        if entry.get("min") is None and entry.get("max") is None:
            raise ValueError(f"{path}: check {i} ({entry['metric']}) needs 'min' or 'max'")
        checks.append(Check(entry["metric"], entry.get("min"), entry.get("max"), str(entry.get("why", ""))))
    return checks


def _lookup(metrics: dict, path: str) -> float | None:
    node: object = {"all": metrics.get("all", {}), **metrics.get("by_source", {})}
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def apply_gate(metrics: dict, checks: list[Check]) -> list[GateResult]:
    """Every check's result (the built-in ones first); a missing metric fails its check."""
    results = []
    built_in = [a for a in ALWAYS if not any(c.metric == a.metric and c.min is not None and c.min >= a.min
                                             for c in checks)]
    for check in [*built_in, *checks]:
        value = _lookup(metrics, check.metric)
        passed = value is not None and (check.min is None or value >= check.min) and (
            check.max is None or value <= check.max)
        results.append(GateResult(check, value, passed))
    return results
