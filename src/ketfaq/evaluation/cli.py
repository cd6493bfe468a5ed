"""``ketfaq eval`` and ``ketfaq qa validate``: the evaluator's commands (registered in ketfaq.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ketfaq.evaluation.qa import DEFAULT_QA_FILES, HELDOUT_QA

__all__ = ["eval_command", "qa_app", "default_qa_paths"]

QA_DIR = Path("qa")
DEFAULT_GATE = QA_DIR / "gate.yaml"

qa_app = typer.Typer(help="The QA test set: check it.", no_args_is_help=True)


def default_qa_paths() -> list[Path]:
    """The project's QA set: every default file that exists in ``qa/``, then the frozen held-out
    questions (reported on their own as ``fresh_qa``)."""
    paths = [QA_DIR / name for name in DEFAULT_QA_FILES if (QA_DIR / name).is_file()]
    return paths + ([HELDOUT_QA] if HELDOUT_QA.is_file() else [])


def _validate(paths: list[Path], corpus_dir: Path) -> int:
    from ketfaq.evaluation.qa import load_qa, validate_qa

    problems = validate_qa(paths, corpus_dir)
    for problem in problems:
        typer.echo(f"invalid: {problem}", err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {', '.join(map(str, paths))}", err=True)
        return 2
    records = load_qa(paths)
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    typer.echo(f"ok: {len(records)} records in {len(paths)} file(s): "
               + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return 0


@qa_app.command("validate")
def qa_validate(
    qa: Annotated[list[Path] | None, typer.Option("--qa", help="QA file(s); default: the project's set.")] = None,
) -> None:
    """Check every record is well formed and every anchor is verbatim in the corpus."""
    from ketfaq.settings import get_settings

    raise typer.Exit(_validate(qa or default_qa_paths(), get_settings().corpus_dir))


def _print_summary(results, gate_requested: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ketfaq.evaluation.evaluate import COMPARE_COLUMNS, compare_rows

    console = Console(stderr=False)
    for r in results:
        routing = r.metrics["all"]["routing"]
        recall = routing["crisis_recall"]
        style = "bold green" if recall == 1.0 else "bold white on red"
        console.print(f"[{style}]CRISIS RECALL {recall if recall is not None else '–'}[/] "
                      f"({r.config.name}; missed: {', '.join(routing['crisis_missed']) or 'none'}; "
                      f"false alarms: {routing['crisis_false_alarms']})")
    table = Table(title="ketfaq eval" if len(results) == 1 else "ketfaq eval --compare")
    rows = compare_rows(results)
    table.add_column("metric")
    for row in rows:
        table.add_column(row[0], justify="right")
    for i, (label, _) in enumerate(COMPARE_COLUMNS, 1):
        table.add_row(label, *(row[i] for row in rows))
    console.print(table)
    for r in results:
        console.print(f"report: {r.out_dir / 'report.md'}")
        for g in r.gate:
            console.print(g.line().replace("- PASS", "[green]PASS[/]").replace("- FAIL", "[bold red]FAIL[/]"))
    if gate_requested and results:
        passed = results[0].gate_passed
        console.print("[bold green]gate passed[/]" if passed else "[bold red]gate FAILED[/]")


def eval_command(
    qa: Annotated[list[Path] | None, typer.Option("--qa", help="QA file(s) (repeatable); default: every qa/*.jsonl set, then the frozen held-out tests/data/fresh_qa.jsonl (reported as fresh_qa).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for results.jsonl, metrics.json, report.md, plots.")] = Path("eval-out"),
    url: Annotated[str | None, typer.Option("--url", help="Evaluate a running server (e.g. http://127.0.0.1:8000) instead of in-process.")] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="Configurations side by side: 'dense,bm25,hybrid', 'chunk_size=500,700', 'dense+bm25_weight=0.3'.")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 when a threshold in the gate file is missed.")] = False,
    gate_file: Annotated[Path, typer.Option("--gate-file", help="Thresholds for --gate.")] = DEFAULT_GATE,
    validate: Annotated[bool, typer.Option("--validate", help="Only validate the QA files, then exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the QA set through the answer path and write metrics, a report and plots."""
    from ketfaq.settings import get_settings

    settings = get_settings()
    paths = qa or default_qa_paths()
    if validate:
        raise typer.Exit(_validate(paths, settings.corpus_dir))
    from ketfaq.evaluation.qa import validate_qa

    problems = validate_qa(paths, settings.corpus_dir)
    if problems:
        for problem in problems:
            typer.echo(f"invalid: {problem}", err=True)
        typer.echo("fix the QA files first (`ketfaq qa validate`)", err=True)
        raise typer.Exit(2)
    from ketfaq.evaluation.evaluate import evaluate
    from ketfaq.evaluation.runner import parse_compare

    try:
        configs = parse_compare(compare) if compare else None
        results = evaluate(settings, paths, out, url=url, configs=configs,
                           gate_path=gate_file if gate else None, progress=not quiet,
                           say=lambda m: typer.echo(m, err=True))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print_summary(results, gate)
    if gate and not results[0].gate_passed:
        raise typer.Exit(1)
