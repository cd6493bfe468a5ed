"""Write an evaluation run to disk: results.jsonl, metrics.json, report.md and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window (CI, servers)
import matplotlib.pyplot as plt
import numpy as np

from ketfaq.evaluation.metrics import CUTOFFS, Outcome

__all__ = ["write_results", "write_metrics", "write_plots", "write_report", "PLOTS"]

PLOTS = ("hit_at_k.png", "confusion.png", "latency.png")


def write_results(outcomes: Sequence[Outcome], path: Path) -> None:
    """One JSON line per record: what was asked, what was expected, what came back and how fast."""
    with path.open("w", encoding="utf-8") as fh:
        for o in outcomes:
            row = {
                "id": o.id, "question": o.question, "expected_kind": o.expected, "source": o.source,
                "predicted": o.predicted, "routing_ok": o.routing_ok, "response": o.response,
                "detail": o.detail or None, "latency_ms": o.latency_ms,
                "invariant_failures": o.invariant_failures,
            }
            if o.is_ranked:
                row["first_hit_rank"] = o.first_hit
                row["ranking"] = [
                    {"rank": i, "doc_id": (p.get("source") or {}).get("doc_id"),
                     "section": (p.get("source") or {}).get("section"), "score": p.get("score"),
                     "relevant": rel}
                    for i, (p, rel) in enumerate(zip(o.ranked, o.relevance), 1)
                ]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_metrics(metrics: dict, path: Path) -> None:
    path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_plots(metrics: dict, outcomes: Sequence[Outcome], out: Path) -> list[Path]:
    """hit@k curve (overall and per QA file), routing confusion matrix, latency histogram."""
    paths = [out / name for name in PLOTS]

    fig, ax = plt.subplots(figsize=(5, 3.5))
    groups = {"all": metrics["all"], **metrics.get("by_source", {})}
    for name, group in groups.items():
        curve = group["retrieval"].get("hit_curve")
        if curve:
            ax.plot(CUTOFFS, curve, marker="o", label=f"{name} (n={group['retrieval']['n']})",
                    linewidth=2.5 if name == "all" else 1.2)
    ax.set(xlabel="k (passages)", ylabel="hit@k", ylim=(0, 1.02), xticks=CUTOFFS, title="hit@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    routing = metrics["all"]["routing"]
    rows, cols = routing["labels"]["expected"], routing["labels"]["predicted"]
    grid = np.array([[routing["confusion"][r][c] for c in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if grid[i, j]:
                ax.text(j, i, str(grid[i, j]), ha="center", va="center",
                        color="white" if grid[i, j] > grid.max() / 2 else "black")
    ax.set(xlabel="what came back", ylabel="expected kind", title="routing confusion matrix")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [o.latency_ms for o in outcomes]
    ax.hist(values, bins=30, color="#4a7ab5")
    lat = metrics["all"]["latency_ms"]
    for key, style in (("p50", "--"), ("p95", ":")):
        if key in lat:
            ax.axvline(lat[key], color="black", linestyle=style, label=f"{key} {lat[key]:.0f} ms")
    ax.set(xlabel="latency (ms)", ylabel="requests", title="latency per request")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    return paths


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retrieval_table(groups: dict[str, dict]) -> list[str]:
    lines = ["| set | n | hit@1 | hit@3 | hit@5 | MRR@5 | nDCG@5 |", "|---|---|---|---|---|---|---|"]
    for name, group in groups.items():
        r = group["retrieval"]
        if r.get("n"):
            lines.append(f"| {name} | {r['n']} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['hit@5']:.3f} "
                         f"| {r['mrr@5']:.3f} | {r['ndcg@5']:.3f} |")
    return lines


def _miss_block(o: Outcome) -> list[str]:
    lines = [f"**{o.id}** ({o.source}) — {_cell(o.question, 300)}", "",
             "- expected anchors: " + "; ".join(f"“{_cell(a, 100)}”" for a in o.anchors),
             f"- came back: `{o.predicted}`" + (f" ({_cell(o.detail, 120)})" if o.detail else "")]
    for rank, (p, rel) in enumerate(zip(o.ranked, o.relevance), 1):
        src = p.get("source") or {}
        mark = "✅" if rel else "✗"
        lines.append(f"  {rank}. {mark} {src.get('doc_id', '?')[:3]} › {_cell(src.get('section') or '(intro)', 60)}"
                     f" ({p.get('score', 0):.2f}): {_cell(p.get('text', ''), 140)}")
    return lines + [""]


def write_report(metrics: dict, outcomes: Sequence[Outcome], out: Path, *, gate_lines: Sequence[str] = (),
                 worst: int = 15) -> Path:
    """A Markdown report an evaluator can read top to bottom: safety first, then retrieval."""
    allm, routing = metrics["all"], metrics["all"]["routing"]
    cfg = metrics.get("config", {})
    lines = ["# ketfaq evaluation", ""]
    lines.append(f"{allm['n_records']} records from {', '.join(cfg.get('qa_files', []))}; "
                 f"target `{cfg.get('target', '?')}`; mode `{cfg.get('retrieval_mode', '?')}`; "
                 f"index `{cfg.get('index_version', '?')}`.")
    lines.append("")
    recall = routing["crisis_recall"]
    missed = routing["crisis_missed"]
    banner = "✅ CRISIS RECALL" if recall == 1.0 else "🚨 CRISIS RECALL BELOW 100%"
    lines += [f"## {banner}: {_pct(recall)} "
              f"({routing['per_kind']['crisis']['n'] - len(missed)}/{routing['per_kind']['crisis']['n']})", ""]
    if missed:
        lines.append("Crisis messages that did NOT get the emergency referral:")
        lines += [f"- **{o.id}**: {_cell(o.question, 200)} → `{o.predicted}`"
                  for o in outcomes if o.id in missed]
        lines.append("")
    lines.append(f"Crisis false alarms (non-crisis questions given the crisis referral): "
                 f"**{routing['crisis_false_alarms']}**")
    lines += [f"- {o.id} ({o.expected}): {_cell(o.question, 160)}" for o in outcomes
              if o.id in routing["crisis_false_alarm_ids"]]
    lines.append("")
    if gate_lines:
        lines += ["## Gate", "", *gate_lines, ""]
    lines += ["## Retrieval (answer records with anchors)", "",
              *_retrieval_table({"all": allm, **metrics.get("by_source", {})}), "",
              "A passage is correct if it contains an expected anchor (whitespace collapsed). "
              f"Ranks past the API's `top_k` come from the same path asked with k={max(CUTOFFS)}.", "",
              "![hit@k](hit_at_k.png)", ""]
    lines += ["## Routing", "", f"Accuracy {_pct(routing['accuracy'])} over {routing['n']} records. "
              f"Over-refusal: {routing['over_refusal']} answer records not answered "
              f"({_pct(routing['over_refusal_rate'])}).", "",
              "| expected kind | n | recall | precision |", "|---|---|---|---|"]
    for kind, row in routing["per_kind"].items():
        if row["n"]:
            lines.append(f"| {kind} | {row['n']} | {_pct(row['recall'])} | {_pct(row['precision'])} |")
    cols = routing["labels"]["predicted"]
    lines += ["", "| expected ↓ / got → | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for kind in routing["labels"]["expected"]:
        lines.append(f"| {kind} | " + " | ".join(str(routing["confusion"][kind][c] or "") for c in cols) + " |")
    lines += ["", "![confusion matrix](confusion.png)", ""]
    wrong = [o for o in outcomes if not o.routing_ok and o.expected != "crisis"]
    if wrong:
        lines += ["### Misrouted (other than crisis)", ""]
        lines += [f"- {o.id} ({o.expected} → `{o.predicted}`): {_cell(o.question, 160)}" for o in wrong]
        lines.append("")
    inv = allm["invariants"]
    lines += ["## Invariants", "", f"{inv.get('ok', 0)}/{inv['n']} responses keep every invariant "
              f"({_pct(inv['rate'])}): schema, passages verbatim from the article, disclaimer "
              "byte-identical, referral present, no passages with a crisis referral.", ""]
    if inv.get("failures"):
        lines += [f"- {name}: {count}" for name, count in inv["failures"].items()]
        lines.append("")
    lat = allm["latency_ms"]
    if lat.get("n"):
        lines += ["## Latency", "", f"p50 {lat['p50']:.0f} ms · p95 {lat['p95']:.0f} ms · max {lat['max']:.0f} ms "
                  f"over {lat['n']} requests.", "", "![latency](latency.png)", ""]
    misses = sorted((o for o in outcomes if o.is_ranked and (o.first_hit or 99) > 1),
                    key=lambda o: (-(o.first_hit or 99), o.source != "dev_qa", o.id))[:worst]
    if misses:
        lines += [f"## Worst misses (top {len(misses)})", "",
                  "No correct passage in the top 5 first, then the latest first hits.", ""]
        for o in misses:
            lines += _miss_block(o)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
