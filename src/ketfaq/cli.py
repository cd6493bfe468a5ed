"""The ``ketfaq`` command line: build, serve, ask; staff commands ``corpus``, ``index``, ``review``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketfaq.safety.commands import safety_app
from ketfaq.settings import Settings, get_settings
from ketfaq.staff.commands import staff_app

if TYPE_CHECKING:  # the index pulls in faiss: only the commands that need it import it
    from ketfaq.index import BuildReport

__all__ = ["app"]

app = typer.Typer(
    help="ketfaq: answers patients' questions with verbatim passages from the clinic's articles.",
    no_args_is_help=True,
    add_completion=False,
)


def _build(settings: Settings, *, progress: bool = True) -> None:
    from ketfaq.embedding import encoder_for
    from ketfaq.index import build_index

    encoder = encoder_for(settings)
    _print_report(build_index(settings, encoder, progress=progress,
                              on_stage=lambda m: typer.echo(m, err=True)))


def _print_report(report: BuildReport) -> None:
    typer.echo(
        f"published index {report.version}: {report.chunks} passages, "
        f"{report.embedded} texts embedded, {report.reused} reused from cache, {report.seconds:.1f}s"
    )
    for label, items in (("added", report.articles_added), ("changed", report.articles_changed),
                         ("removed", report.articles_removed)):
        if items:
            typer.echo(f"  articles {label}: {', '.join(items)}")
    typer.echo(f"  passages added: {report.chunks_added}, changed: {report.chunks_changed}, "
               f"removed: {report.chunks_removed}, unchanged: {report.chunks_unchanged}")
    for doc_id, counts in report.per_article.items():
        typer.echo(f"    {doc_id}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))


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
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes sharing one index "
                                         "(forked after the imports; each encoder gets its share of the cores).")] = 1,
) -> None:
    """Serve the API and chat page; builds the index first when it is missing or stale."""
    from ketfaq.server import serve as run_server
    from ketfaq.server import shared_metrics_dir

    shared_metrics_dir(workers)  # first: the build child and every worker write their metrics there
    from ketfaq.runtime import index_state

    settings = get_settings()
    if (state := index_state(settings)) != "current":
        # In a process of its own: the build imports torch to export the encoder and holds every
        # vector in memory, none of which the server needs afterwards; and gunicorn's forked
        # workers must not inherit the build's ONNX Runtime or torch threads.
        import subprocess

        typer.echo(f"index {state}: building it first", err=True)
        code = subprocess.run([sys.executable, "-m", "ketfaq", "build", "--quiet"]).returncode
        if code:
            raise typer.Exit(code)  # the build said why
    if workers > 1 and settings.rate_limit and settings.rate_limit_storage == "memory://":
        typer.echo(f"note: each of the {workers} workers counts KETFAQ_RATE_LIMIT on its own; set "
                   "KETFAQ_RATE_LIMIT_STORAGE=redis://host:port to share the counters", err=True)
    docs = "  (API docs at /docs)" if settings.api_docs else ""
    typer.echo(f"ketfaq on http://{host}:{port}/{docs}", err=True)
    run_server(host, port, workers)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, as a visitor would type it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API response as JSON.")] = False,
) -> None:
    """Answer one question through the same path as the API."""
    from ketfaq.answer import InvalidQuestion, validate_question
    from ketfaq.runtime import load_answerer

    settings = get_settings()
    try:
        validate_question(question)
        response = load_answerer(settings).ask(question)
    except InvalidQuestion as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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


corpus_app = typer.Typer(help="Add, list, retire and check the articles.", no_args_is_help=True)
index_app = typer.Typer(help="Published index versions: list them, roll back.", no_args_is_help=True)
review_app = typer.Typer(help="What visitors asked that the articles don't answer.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
app.add_typer(index_app, name="index")
app.add_typer(review_app, name="review")
app.add_typer(staff_app, name="staff")
app.add_typer(safety_app, name="safety")
from ketfaq.ranking.commands import rank_app  # noqa: E402

app.add_typer(rank_app, name="rank")

from ketfaq.evaluation.cli import eval_command, qa_app  # noqa: E402  (light: heavy imports are lazy)

app.command("eval")(eval_command)
app.add_typer(qa_app, name="qa")


@corpus_app.command("add")
def corpus_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .md, .txt or .html file.")],
    title: Annotated[str | None, typer.Option(help="Article title (default: the file's own).")] = None,
    url: Annotated[str | None, typer.Option(help="Where the article is published, if anywhere.")] = None,
    publisher: Annotated[str | None, typer.Option(help="Who wrote or published it.")] = None,
    doc_id: Annotated[str | None, typer.Option("--id", help="Article id (default: NNN-title-slug).")] = None,
) -> None:
    """Import an article into the corpus with front matter (HTML is converted to Markdown)."""
    from ketfaq.corpus import CorpusError
    from ketfaq.importer import import_article
    from ketfaq.lint import lint_corpus

    settings = get_settings()
    try:
        article = import_article(file, settings.corpus_dir, title=title, url=url,
                                 publisher=publisher, doc_id=doc_id)
    except CorpusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"added {article.id} -> {article.path}")
    for finding in lint_corpus(settings.corpus_dir, chunk_size=settings.chunk_size,
                               chunk_overlap=settings.chunk_overlap,
                               min_chunk_chars=settings.min_chunk_chars, paths=[article.path]).findings:
        typer.echo(f"  {finding}")
    typer.echo("check it, then run `ketfaq build` to publish it")


@corpus_app.command("list")
def corpus_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The articles a build would index."""
    from ketfaq.importer import list_articles

    articles = list_articles(get_settings().corpus_dir)
    rows = [{"id": a.id, "title": a.title, "reviewed": a.reviewed.isoformat(), "publisher": a.publisher,
             "url": a.url, "file": str(a.path)} for a in articles]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(f"{row['id']}  reviewed {row['reviewed']}  {row['title']}")


@corpus_app.command("remove")
def corpus_remove(doc_id: Annotated[str, typer.Argument(help="The article id (see `corpus list`).")]) -> None:
    """Retire an article: move it to corpus/.retired/ (move it back to restore it)."""
    from ketfaq.corpus import CorpusError
    from ketfaq.importer import retire_article

    try:
        target = retire_article(get_settings().corpus_dir, doc_id)
    except CorpusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retired {doc_id} -> {target}; run `ketfaq build` to publish the change")


@corpus_app.command("lint")
def corpus_lint(as_json: Annotated[bool, typer.Option("--json", help="Print JSON for tools.")] = False) -> None:
    """Check the articles and synonyms file; errors exit 1, warnings don't."""
    from ketfaq.lint import lint_corpus

    settings = get_settings()
    if not settings.corpus_dir.is_dir():
        typer.echo(f"error: corpus directory {settings.corpus_dir} not found", err=True)
        raise typer.Exit(2)
    report = lint_corpus(settings.corpus_dir, chunk_size=settings.chunk_size,
                         chunk_overlap=settings.chunk_overlap, min_chunk_chars=settings.min_chunk_chars)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for finding in report.findings:
            typer.echo(str(finding))
        typer.echo(f"{report.files} files: {report.errors} errors, {report.warnings} warnings")
    if report.errors:
        raise typer.Exit(1)


@index_app.command("list")
def index_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Index versions on disk, newest first; * marks the published one."""
    from ketfaq.corpus import CorpusError, load_corpus
    from ketfaq.index import build_fingerprint, current_version, list_versions

    settings = get_settings()
    published = current_version(settings.index_dir)
    try:
        fingerprint = build_fingerprint(settings, load_corpus(settings.corpus_dir))
    except CorpusError:
        fingerprint = None
    rows = [{"version": m.version, "published": m.version == published,
             "matches_corpus": m.fingerprint == fingerprint, "built_at": m.built_at,
             "passages": m.chunk_count, "articles": len(m.articles)}
            for m in list_versions(settings.index_dir)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no index versions in {settings.index_dir}: run `ketfaq build`")
    for r in rows:
        mark = "*" if r["published"] else " "
        note = "  (matches corpus)" if r["matches_corpus"] else ""
        typer.echo(f"{mark} {r['version']}  {r['articles']} articles, {r['passages']} passages{note}")


@index_app.command("rollback")
def index_rollback(
    version: Annotated[str | None, typer.Argument(help="Version to publish (default: the one before).")] = None,
) -> None:
    """Publish an earlier index version; a running server picks it up within seconds."""
    from ketfaq.index import IndexError_, rollback
    from ketfaq.runtime import index_state

    settings = get_settings()
    try:
        name = rollback(settings.index_dir, version)
    except IndexError_ as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"published {name}")
    if index_state(settings) == "stale":
        typer.echo("note: the corpus differs from this version, and `ketfaq serve` rebuilds a stale "
                   "index when it starts: fix or restore the article, then `ketfaq build`.", err=True)


@review_app.command("unanswered")
def review_unanswered(
    limit: Annotated[int, typer.Option(min=1, help="How many groups to show.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Questions that ended as no_match, grouped and redacted, most asked first."""
    from dataclasses import asdict

    settings = get_settings()
    groups = _store(settings).groups(limit)
    if as_json:
        typer.echo(json.dumps([asdict(g) for g in groups], indent=2, ensure_ascii=False))
        return
    if not groups:
        state = "on" if settings.record_unanswered else "off (KETFAQ_RECORD_UNANSWERED=false)"
        typer.echo(f"no unanswered questions in {settings.db_path} (recording is {state})")
    for g in groups:
        typer.echo(f"[{g.id}] {g.count}x  last {g.last_seen}  first {g.first_seen}\n    {g.text}")
        for variant in g.variants:
            if variant != g.text:
                typer.echo(f"      ~ {variant}")


@review_app.command("feedback")
def review_feedback(
    limit: Annotated[int, typer.Option(min=1, help="How many entries to show.")] = 30,
    handled: Annotated[int | None, typer.Option("--handled", help="Take entry ID off the queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answers visitors marked not helpful (redacted), newest first: the review queue."""
    from dataclasses import asdict

    from ketfaq.feedback import FeedbackStore

    settings = get_settings()
    store = FeedbackStore(settings.db_path, url=settings.database_url)
    if handled is not None:
        if not store.mark_handled(handled):
            typer.echo(f"error: no open feedback entry {handled}", err=True)
            raise typer.Exit(2)
        typer.echo(f"feedback {handled} marked handled")
        return
    entries = store.entries(helpful=False, limit=limit)
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        typer.echo("no answers marked not helpful are waiting")
    for e in entries:
        typer.echo(f"[{e.id}] {e.created}  {e.kind}  index {e.index_version}\n    {e.question}")
        if e.comment:
            typer.echo(f"    comment: {e.comment}")


@review_app.command("purge")
def review_purge(
    older_than: Annotated[int | None, typer.Option(
        "--older-than", min=0, help="Days (default: KETFAQ_UNANSWERED_RETENTION_DAYS; 0 deletes everything).")] = None,
) -> None:
    """Delete unanswered questions past the retention period (and over the cap) now."""
    settings = get_settings()
    days = settings.unanswered_retention_days if older_than is None else older_than
    if days == 0 and older_than is None:
        typer.echo("retention is off (KETFAQ_UNANSWERED_RETENTION_DAYS=0): only the cap applies", err=True)
    removed = _store(settings).purge(older_than_days=days)
    typer.echo(f"deleted {removed} group{'s' if removed != 1 else ''} of unanswered questions")


def _store(settings: Settings):  # type: ignore[no-untyped-def]
    from ketfaq.unanswered import UnansweredStore

    return UnansweredStore(settings.db_path, url=settings.database_url, similarity=settings.unanswered_similarity,
                           retention_days=settings.unanswered_retention_days,
                           max_groups=settings.unanswered_max_groups)


@review_app.command("dismiss")
def review_dismiss(group_id: Annotated[int, typer.Argument(help="Group id from `review unanswered`.")]) -> None:
    """Forget a group of unanswered questions, e.g. once an article answers it."""
    if not _store(get_settings()).dismiss(group_id):
        typer.echo(f"error: no group {group_id}", err=True)
        raise typer.Exit(2)
    typer.echo(f"dismissed group {group_id}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
