"""The ``ketfaq`` command line: build the index, serve the app, ask a question."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ketfaq.settings import Settings, get_settings

__all__ = ["app"]

app = typer.Typer(
    help="ketfaq: answers patients' questions with verbatim passages from the clinic's articles.",
    no_args_is_help=True,
    add_completion=False,
)


def _build(settings: Settings, *, progress: bool = True) -> None:
    from ketfaq.embedding import load_encoder
    from ketfaq.index import build_index

    encoder = load_encoder(settings.resolved_model_path(), settings.model_name, settings.encoder_backend)
    report = build_index(settings, encoder, progress=progress, on_stage=lambda m: typer.echo(m, err=True))
    typer.echo(
        f"published index {report.version}: {report.chunks} passages, "
        f"{report.embedded} texts embedded, {report.reused} reused from cache, {report.seconds:.1f}s"
    )
    for label, items in (("added", report.articles_added), ("changed", report.articles_changed),
                         ("removed", report.articles_removed)):
        if items:
            typer.echo(f"  articles {label}: {', '.join(items)}")
    typer.echo(f"  passages added: {report.chunks_added}, removed: {report.chunks_removed}")


@app.command()
def build(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Chunk and embed corpus/ into a new index version and publish it."""
    from ketfaq.corpus import CorpusError

    try:
        _build(get_settings(), progress=not quiet)
    except CorpusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes sharing one index.")] = 1,
) -> None:
    """Serve the API and chat page; builds the index first when it is missing or stale."""
    import uvicorn

    from ketfaq.index import index_is_stale

    settings = get_settings()
    if index_is_stale(settings):
        typer.echo("index missing or stale: building it first", err=True)
        _build(settings)
    typer.echo(f"ketfaq on http://{host}:{port}/  (API docs at /docs)", err=True)
    uvicorn.run("ketfaq.api:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, as a visitor would type it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API response as JSON.")] = False,
) -> None:
    """Answer one question through the same path as the API."""
    from ketfaq.answer import InvalidQuestion, validate_question
    from ketfaq.api import load_answerer

    settings = get_settings()
    try:
        validate_question(question, max_chars=settings.max_question_chars)
    except InvalidQuestion as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    response = load_answerer(settings).ask(question)
    if as_json:
        typer.echo(json.dumps(response.model_dump(), indent=2, ensure_ascii=False))
        return
    typer.echo(f"[{response.kind}] {response.notice}\n")
    for i, passage in enumerate(response.passages, 1):
        src = passage.source
        typer.echo(f"{i}. {src.title} — {src.section or '(introduction)'}  (score {passage.score:.2f})")
        typer.echo(f"   {passage.text}\n")
    typer.echo(response.referral)
    typer.echo(f"\n{response.disclaimer}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
