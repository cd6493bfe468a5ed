"""``/staff``: the clinic staff's console in the browser, over the same code paths as the CLI.

Sign-in with a staff account (``ketfaq staff add NAME``) gives an HttpOnly, SameSite=Strict session
cookie (Secure over HTTPS), a new id at every sign-in. Every form carries the session's CSRF token
(the sign-in form a double-submit one); failed sign-ins are throttled per client like the admin
token. Without a session every route but the sign-in page answers 401 and shows nothing. Pages
are rendered on the server (Jinja2, autoescaped) and use no script, under the app's CSP.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from ketfaq.settings import Settings
from ketfaq.staff.accounts import StaffSession, StaffStore, same_token
from ketfaq.throttle import FailureCounter

__all__ = ["install_console"]

log = logging.getLogger("ketfaq.staff")
SESSION_COOKIE, LOGIN_COOKIE = "ketfaq_staff", "ketfaq_staff_login"
_pages = Environment(loader=PackageLoader("ketfaq", "staff/templates"), autoescape=select_autoescape())
# Fixed sentences only: nothing from the query string is ever shown.
NOTICES = {"published": "Published: visitors now get answers from the new version.",
           "unchanged": "Nothing to publish: the articles match the published version.",
           "rolled-back": "That version is published again.",
           "handled": "Marked handled.", "retired": "Retired: publish to take it off the chat page.",
           "failed": "That did not work; the log says why."}

router = APIRouter(prefix="/staff", include_in_schema=False)


def _page(name: str, status_code: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(_pages.get_template(name).render(**context), status_code=status_code,
                        headers={"Cache-Control": "no-store"})


def _store(request: Request) -> StaffStore:
    return request.app.state.staff


def current_staff(request: Request) -> StaffSession:
    """The signed-in staff member, or 401 (never a page of the console)."""
    found = _store(request).session(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in at /staff/login first.")
    return found


def checked_staff(request: Request, staff: Annotated[StaffSession, Depends(current_staff)],
                  csrf: Annotated[str, Form()] = "") -> StaffSession:
    """For forms: the session, and its CSRF token in the form (403 without it)."""
    if not same_token(csrf, staff.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This form has expired: reload the page and try again.")
    return staff


Staff = Annotated[StaffSession, Depends(checked_staff)]


def _back(notice: str) -> RedirectResponse:
    return RedirectResponse("/staff?" + urlencode({"notice": notice}), status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _page("login.html", csrf=token, error=error, staff=None)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/staff",
                        secure=request.url.scheme == "https", max_age=3600)
    return response


@router.post("/login", response_model=None)
def login(request: Request, name: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=1024)] = "",
          csrf: Annotated[str, Form()] = "") -> Response:
    if not same_token(csrf, request.cookies.get(LOGIN_COOKIE, "")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This form has expired: reload the page and try again.")
    failures: FailureCounter = request.app.state.staff_failures
    client = request.client.host if request.client else "unknown"
    if not failures.allowed(client):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "Too many failed sign-ins from this "
                            "address; try again in a minute.", headers={"Retry-After": "60"})
    store = _store(request)
    if not store.verify(name, password):
        failures.failed(client)
        log.warning("failed staff sign-in from %s", client)  # never the password, nor the name tried
        return _page("login.html", 401, csrf=csrf, error="That name and password don't match.", staff=None)
    store.end_session(request.cookies.get(SESSION_COOKIE))  # no fixation: an old id never carries over
    session_id, _ = store.start_session(name)
    store.audit(name, "signed in")
    response = RedirectResponse("/staff", status.HTTP_303_SEE_OTHER)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", path="/staff",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_COOKIE, path="/staff")
    return response


@router.post("/logout")
def logout(request: Request, staff: Staff) -> RedirectResponse:
    _store(request).end_session(request.cookies.get(SESSION_COOKIE))
    _store(request).audit(staff.name, "signed out")
    response = RedirectResponse("/staff/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/staff")
    return response


@router.get("")
def console(request: Request, staff: Annotated[StaffSession, Depends(current_staff)],
            notice: str | None = None) -> HTMLResponse:
    from ketfaq.importer import list_articles
    from ketfaq.index import current_version, list_versions
    from ketfaq.lint import lint_corpus
    from ketfaq.runtime import index_state

    settings: Settings = request.app.state.settings
    report = lint_corpus(settings.corpus_dir, chunk_size=settings.chunk_size,
                         chunk_overlap=settings.chunk_overlap, min_chunk_chars=settings.min_chunk_chars)
    by_file: dict[str, list] = {}
    for finding in report.findings:
        by_file.setdefault(Path(finding.path).name, []).append(finding)
    articles = [{"id": a.id, "title": a.title, "reviewed": a.reviewed.isoformat(),
                 "findings": by_file.get(a.path.name, [])} for a in list_articles(settings.corpus_dir)]
    return _page(
        "console.html", staff=staff, notice=NOTICES.get(notice or ""), articles=articles, lint=report,
        stale=index_state(settings) == "stale", versions=list_versions(settings.index_dir),
        published=current_version(settings.index_dir), serving=request.app.state.answerer.version,
        unanswered=request.app.state.unanswered.groups(50),
        feedback=request.app.state.feedback.entries(helpful=False, limit=50),
        audit=_store(request).audit_log(30))


@router.post("/publish")
async def publish(request: Request, staff: Staff) -> RedirectResponse:
    """Build the articles as they are into a new version, publish it, and serve it at once."""
    from ketfaq.index import build_index
    from ketfaq.runtime import index_state

    app, settings = request.app, request.app.state.settings
    if index_state(settings) == "current":
        return _back("unchanged")
    try:
        report = await run_in_threadpool(build_index, settings, app.state.answerer.encoder)
        await run_in_threadpool(app.state.answerer.reload)
    except Exception as exc:  # a corpus error or a full disk: the published version keeps serving
        log.error("staff publish by %s failed: %s", staff.name, exc)
        _store(request).audit(staff.name, "publish failed", f"{type(exc).__name__}: {exc}")
        return _back("failed")
    _store(request).audit(staff.name, "published", report.version)
    return _back("published")


@router.post("/rollback")
async def rollback(request: Request, staff: Staff, version: Annotated[str, Form(max_length=100)]) -> RedirectResponse:
    from ketfaq.index import IndexError_
    from ketfaq.index import rollback as publish_version

    app = request.app
    try:
        publish_version(app.state.settings.index_dir, version)
        await run_in_threadpool(app.state.answerer.reload)
    except IndexError_ as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _store(request).audit(staff.name, "rolled back to", version)
    return _back("rolled-back")


@router.post("/unanswered/{group_id}/handled")
def unanswered_handled(request: Request, staff: Staff, group_id: int) -> RedirectResponse:
    if not request.app.state.unanswered.dismiss(group_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No unanswered group {group_id}.")
    _store(request).audit(staff.name, "marked unanswered group handled", str(group_id))
    return _back("handled")


@router.post("/feedback/{entry_id}/handled")
def feedback_handled(request: Request, staff: Staff, entry_id: int) -> RedirectResponse:
    if not request.app.state.feedback.mark_handled(entry_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No open feedback entry {entry_id}.")
    _store(request).audit(staff.name, "marked feedback handled", str(entry_id))
    return _back("handled")


def install_console(app: FastAPI, settings: Settings) -> None:
    """Add ``/staff`` (pages and their stylesheet) and the staff store to ``app``."""
    from ketfaq.staff.editor import router as editor

    app.state.staff = StaffStore(settings.db_path, url=settings.database_url)
    app.state.staff_failures = FailureCounter(settings.admin_failure_limit, settings.rate_limit_storage,
                                              "staff-login")
    app.include_router(router)
    app.include_router(editor)
    app.mount("/staff/static", StaticFiles(directory=Path(__file__).parent / "static"), name="staff-static")
