"""One evaluation run end to end: records -> answers -> metrics -> files (-> comparison, gate)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ketfaq.evaluation.gate import GateResult, apply_gate, load_gate
from ketfaq.evaluation.metrics import Outcome, summarize
from ketfaq.evaluation.qa import QARecord, load_qa
from ketfaq.evaluation.report import write_metrics, write_plots, write_report, write_results
from ketfaq.evaluation.runner import Config, HttpClient, InProcessClient, answerer_for, run_records
from ketfaq.settings import Settings

__all__ = ["RunResult", "evaluate", "compare_rows", "COMPARE_COLUMNS"]

_SETTING_KEYS = ("retrieval_mode", "top_k", "chunk_size", "chunk_overlap", "candidates", "rrf_k",
                 "bm25_weight", "min_score", "passage_min_score", "dedup_threshold")


@dataclass(slots=True)
class RunResult:
    """The metrics of one configuration and where its files are."""

    config: Config
    metrics: dict
    out_dir: Path
    outcomes: list[Outcome] = field(repr=False, default_factory=list)
    gate: list[GateResult] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return all(r.passed for r in self.gate)


def _metrics(outcomes: list[Outcome], config_info: dict) -> dict:
    sources = list(dict.fromkeys(o.source for o in outcomes))
    return {
        "config": config_info,
        "all": summarize(outcomes),
        "by_source": {s: summarize([o for o in outcomes if o.source == s]) for s in sources},
    }


def _write(result: RunResult, gate_lines: Sequence[str]) -> None:
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_results(result.outcomes, out / "results.jsonl")
    write_metrics(result.metrics, out / "metrics.json")
    write_plots(result.metrics, result.outcomes, out)
    write_report(result.metrics, result.outcomes, out, gate_lines=gate_lines)


def evaluate(settings: Settings, qa_paths: Sequence[Path], out_dir: Path, *, url: str | None = None,
             configs: Sequence[Config] | None = None, gate_path: Path | None = None,
             records: Sequence[QARecord] | None = None, progress: bool = True, answerer=None,
             say: Callable[[str], None] = lambda _m: None) -> list[RunResult]:
    """Evaluate the current settings (or each of ``configs``) and write every run's files.

    With several configurations each gets ``out_dir/<name>/``; the gate, when asked for, is applied
    to the first one (the current settings when no configurations are given).
    """
    records = list(records) if records is not None else load_qa(qa_paths)
    if url and configs:
        raise ValueError("--compare runs configurations in-process; it cannot be combined with --url")
    configs = list(configs) if configs else [Config("current")]
    checks = load_gate(gate_path) if gate_path else None
    results: list[RunResult] = []
    base = answerer  # the API's answerer; loaded from settings when not given
    with tempfile.TemporaryDirectory(prefix="ketfaq-eval-") as tmp:
        for number, config in enumerate(configs):
            if url:
                client, cfg_settings = HttpClient(url), settings
            else:
                if base is None:
                    base = _base_answerer(settings, say)
                answerer, cfg_settings = answerer_for(settings, config, base=base, workdir=Path(tmp), say=say)
                client = InProcessClient(answerer, cfg_settings, mode=config.mode)
            say(f"evaluating {config.name}: {len(records)} records")
            outcomes = run_records(records, client, corpus_dir=cfg_settings.corpus_dir,
                                   max_chars=cfg_settings.max_question_chars, desc=config.name,
                                   progress=progress)
            if isinstance(client, HttpClient):
                client.close()
            info = {k: getattr(cfg_settings, k) for k in _SETTING_KEYS}
            info.update(name=config.name, retrieval_mode=config.mode or cfg_settings.retrieval_mode,
                        overrides=config.overrides, target=url or "in-process",
                        qa_files=list(dict.fromkeys(r.source for r in records)),
                        index_version=next((o.response.get("index_version") for o in outcomes
                                            if o.response), None))
            target = out_dir if len(configs) == 1 else out_dir / _dirname(config.name)
            result = RunResult(config, _metrics(outcomes, info), target, outcomes)
            if checks is not None and number == 0:
                result.gate = apply_gate(result.metrics, checks)
                result.metrics["gate"] = {"passed": result.gate_passed,
                                          "checks": [{"metric": g.check.metric, "value": g.value,
                                                      "min": g.check.min, "max": g.check.max,
                                                      "passed": g.passed} for g in result.gate]}
            _write(result, [g.line() for g in result.gate])
            results.append(result)
    if len(results) > 1:
        _write_comparison(results, out_dir)
    return results


def _dirname(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _base_answerer(settings: Settings, say: Callable[[str], None]):
    """The answerer the API would use: the published index, rebuilt first if missing or stale
    (as ``ketfaq serve`` would)."""
    from ketfaq.runtime import load_answerer

    return load_answerer(settings, rebuild_stale=True, say=say)


COMPARE_COLUMNS = (
    ("hit@1", "all.retrieval.hit@1"), ("hit@3", "all.retrieval.hit@3"), ("hit@5", "all.retrieval.hit@5"),
    ("MRR@5", "all.retrieval.mrr@5"), ("nDCG@5", "all.retrieval.ndcg@5"),
    ("dev hit@1", "dev_qa.retrieval.hit@1"), ("dev hit@3", "dev_qa.retrieval.hit@3"),
    ("crisis recall", "all.routing.crisis_recall"), ("false alarms", "all.routing.crisis_false_alarms"),
    ("over-refusal", "all.routing.over_refusal"), ("routing acc", "all.routing.accuracy"),
    ("invariants", "all.invariants.rate"), ("p50 ms", "all.latency_ms.p50"),
)


def compare_rows(results: Sequence[RunResult]) -> list[list[str]]:
    """One row per configuration with the :data:`COMPARE_COLUMNS` values, formatted."""
    from ketfaq.evaluation.gate import _lookup

    rows = []
    for r in results:
        row = [r.config.name]
        for _label, path in COMPARE_COLUMNS:
            value = _lookup(r.metrics, path)
            counts = path.endswith(("false_alarms", "over_refusal")) or "latency" in path
            row.append("–" if value is None else f"{value:.0f}" if counts else f"{value:.3f}")
        rows.append(row)
    return rows


def _write_comparison(results: Sequence[RunResult], out_dir: Path) -> None:
    import json

    header = ["config", *(label for label, _ in COMPARE_COLUMNS)]
    rows = compare_rows(results)
    md = ["# ketfaq comparison", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += ["", *[f"- [{r.config.name}]({_dirname(r.config.name)}/report.md)" for r in results]]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out_dir / "compare.json").write_text(json.dumps(
        {r.config.name: {"overrides": r.config.overrides, "mode": r.config.mode,
                         "all": r.metrics["all"], "by_source": r.metrics["by_source"]} for r in results},
        indent=2) + "\n", encoding="utf-8")
