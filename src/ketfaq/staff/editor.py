"""The console's article pages: upload, edit with a preview of the passages, retire, and try a
question against the articles as they are on disk (the draft) beside the published answer.

The same functions as ``ketfaq corpus add / remove`` and ``ketfaq build`` run underneath; nothing
is published until a staff member presses Publish on the console.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ketfaq.corpus import CorpusError, load_article
from ketfaq.settings import Settings
from ketfaq.staff.accounts import StaffSession
from ketfaq.staff.console import _back, _page, _store, checked_staff, current_staff

__all__ = ["router"]

router = APIRouter(prefix="/staff", include_in_schema=False)
Staff = Annotated[StaffSession, Depends(checked_staff)]
MAX_UPLOAD = 1_000_000  # bytes: an article, not an archive


def _article_path(settings: Settings, doc_id: str) -> Path:
    from ketfaq.importer import list_articles

    for article in list_articles(settings.corpus_dir):
        if article.id == doc_id:
            return article.path
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"No article {doc_id!r}.")


def _check(settings: Settings, name: str, text: str) -> tuple[object | None, str | None, list, list]:
    """Parse, lint and chunk ``text`` as the article file ``name`` would be, without saving it."""
    from ketfaq.chunking import chunk_article
    from ketfaq.lint import lint_corpus

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8")
        try:
            article = load_article(path)
        except CorpusError as exc:
            return None, str(exc).replace(str(path), name), [], []
        findings = lint_corpus(Path(folder), chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
                               min_chunk_chars=settings.min_chunk_chars, paths=[path]).findings
        chunks = chunk_article(article, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    return article, None, findings, chunks


def _editor(request: Request, staff: StaffSession, doc_id: str, text: str, *, saved: bool = False,
            status_code: int = 200) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    name = _article_path(settings, doc_id).name
    article, error, findings, chunks = _check(settings, name, text)
    return _page("article.html", status_code, staff=staff, doc_id=doc_id, text=text, error=error,
                 findings=findings, chunks=chunks, saved=saved)


@router.get("/articles/{doc_id}")
def edit_page(request: Request, staff: Annotated[StaffSession, Depends(current_staff)], doc_id: str) -> HTMLResponse:
    path = _article_path(request.app.state.settings, doc_id)
    return _editor(request, staff, doc_id, path.read_text(encoding="utf-8"))


@router.post("/articles/{doc_id}")
def save(request: Request, staff: Staff, doc_id: str, text: Annotated[str, Form(max_length=MAX_UPLOAD)],
         action: Annotated[str, Form()] = "preview") -> HTMLResponse:
    """``preview``: show the passages the text would make; ``save``: write it if it parses."""
    settings: Settings = request.app.state.settings
    path = _article_path(settings, doc_id)
    text = text.replace("\r\n", "\n")
    if action != "save":
        return _editor(request, staff, doc_id, text)
    article, error, _, _ = _check(settings, path.name, text)
    if error or article is None:
        return _editor(request, staff, doc_id, text, status_code=422)
    if article.id != doc_id:
        raise HTTPException(422, "The id in the front matter can't change.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".edit-", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    _store(request).audit(staff.name, "edited", doc_id)
    return _editor(request, staff, doc_id, text, saved=True)


@router.post("/articles", response_model=None)
async def upload(request: Request, staff: Staff, file: UploadFile,
                 title: Annotated[str, Form(max_length=200)] = "",
                 url: Annotated[str, Form(max_length=500)] = "") -> RedirectResponse | HTMLResponse:
    """Import a Markdown, text or HTML file as ``ketfaq corpus add`` does, then open it."""
    from ketfaq.importer import import_article

    data = await file.read(MAX_UPLOAD + 1)
    suffix = Path(file.filename or "article.md").suffix.lower()
    if len(data) > MAX_UPLOAD or suffix not in (".md", ".markdown", ".txt", ".html", ".htm"):
        raise HTTPException(422,
                            "Upload one .md, .txt or .html article of at most 1 MB.")
    settings: Settings = request.app.state.settings
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"upload{suffix}"
        source.write_bytes(data)
        try:
            article = await run_in_threadpool(import_article, source, settings.corpus_dir,
                                              title=title.strip() or None, url=url.strip() or None)
        except CorpusError as exc:
            raise HTTPException(422, str(exc).replace(str(source), "the upload"))
    _store(request).audit(staff.name, "added", article.id)
    return RedirectResponse(f"/staff/articles/{article.id}", status.HTTP_303_SEE_OTHER)


@router.post("/articles/{doc_id}/retire")
def retire(request: Request, staff: Staff, doc_id: str) -> RedirectResponse:
    from ketfaq.importer import retire_article

    try:
        retire_article(request.app.state.settings.corpus_dir, doc_id)
    except CorpusError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _store(request).audit(staff.name, "retired", doc_id)
    return _back("retired")


@router.post("/try")
async def try_question(request: Request, staff: Staff,
                       question: Annotated[str, Form(min_length=1, max_length=1000)]) -> HTMLResponse:
    """The question answered from the published index and from the articles as they are now."""
    from ketfaq.answer import Answerer
    from ketfaq.index import build_index, load_index
    from ketfaq.runtime import index_state

    app, settings = request.app, request.app.state.settings
    published = await run_in_threadpool(app.state.answerer.ask, question)
    draft, draft_version = published, published.index_version
    if index_state(settings) == "stale":
        try:
            report = await run_in_threadpool(build_index, settings, app.state.answerer.encoder,
                                             publish_now=False)
        except CorpusError as exc:
            return _page("try.html", 422, staff=staff, question=question, published=published, draft=None,
                         error=str(exc))
        draft_version = report.version
        answerer = Answerer(settings, app.state.answerer.encoder, load_index(settings.index_dir, draft_version))
        draft = await run_in_threadpool(answerer.ask, question)
    return _page("try.html", staff=staff, question=question, published=published, draft=draft,
                 same=draft_version == published.index_version, error=None)
