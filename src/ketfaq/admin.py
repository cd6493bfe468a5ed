"""What staff need from the running server: admin endpoints, index hot reload, unanswered log.

``/api/admin/*`` needs ``Authorization: Bearer <KETFAQ_ADMIN_TOKEN>``, compared in constant time.
With no token configured the endpoints do not exist (404): admin is never open by default.
The watcher notices a newly published index (``index/CURRENT``) within ``reload_interval``
seconds; ``POST /api/admin/reload`` does it at once. Either way requests already running finish
on the snapshot they started with (see :meth:`ketfaq.answer.Answerer.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ketfaq.contract import error_responses
from ketfaq.feedback import FeedbackStore
from ketfaq.index import current_version, list_versions
from ketfaq.metrics import index_served
from ketfaq.redaction import redact
from ketfaq.settings import Settings
from ketfaq.throttle import FailureCounter
from ketfaq.unanswered import UnansweredStore

__all__ = ["index_watcher", "install", "record_unanswered", "require_admin", "router"]

log = logging.getLogger("ketfaq.admin")
_bearer = HTTPBearer(auto_error=False)


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """404 when admin is disabled, 401 without or with a wrong bearer token, 429 once a client
    has sent ``admin_failure_limit`` wrong tokens (then even the right token waits: no guessing
    on)."""
    settings: Settings = request.app.state.settings
    if not settings.admin_token:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    if credentials is None:  # no token at all is not a guess: told to sign in, never throttled
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid admin bearer token is required.",
                            headers={"WWW-Authenticate": "Bearer"})
    failures: FailureCounter = request.app.state.admin_failures
    client = request.client.host if request.client else "unknown"
    if not failures.allowed(client):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            "Too many failed admin sign-ins from this address; try again in a minute.",
                            headers={"Retry-After": "60"})
    given = credentials.credentials.encode()
    if not hmac.compare_digest(given, settings.admin_token.encode()):
        failures.failed(client)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid admin bearer token is required.",
                            headers={"WWW-Authenticate": "Bearer"})


def _unloadable(published: str | None, exc: Exception, serving: str) -> str:
    """What staff read (log, /api/health, the reload response) when a publication can't be loaded."""
    return (f"The published index {published} cannot be loaded ({type(exc).__name__}: {exc}); still "
            f"serving {serving}. Roll back with `ketfaq index rollback` or rebuild with `ketfaq build`.")


router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=error_responses(401, 404, 429))


class ReloadResult(BaseModel):
    reloaded: bool
    previous_version: str
    index_version: str


class VersionInfo(BaseModel):
    version: str
    built_at: str
    chunk_count: int
    articles: int
    published: bool
    serving: bool


class UnansweredGroupOut(BaseModel):
    id: int
    text: str
    count: int
    first_seen: str
    last_seen: str
    variants: list[str]


class UnansweredList(BaseModel):
    recording: bool
    groups: list[UnansweredGroupOut]


@router.post("/reload", response_model=ReloadResult,
             responses=error_responses(503))
def reload(request: Request) -> ReloadResult:
    """Serve the newly published index now; requests already running finish on the old one."""
    answerer = request.app.state.answerer
    previous = answerer.version
    try:
        changed = answerer.reload()
    except Exception as exc:  # a corrupt or half-copied version: keep serving, say why
        published = current_version(request.app.state.settings.index_dir)
        answerer.degraded = _unloadable(published, exc, previous)
        log.error(answerer.degraded)
        raise HTTPException(503, detail=answerer.degraded) from None
    if changed:
        log.info("index reloaded on request: %s -> %s", previous, answerer.version)
        index_served(answerer.index, previous)
    return ReloadResult(reloaded=changed, previous_version=previous, index_version=answerer.version)


@router.get("/versions", response_model=list[VersionInfo])
def versions(request: Request) -> list[VersionInfo]:
    """Index versions on disk, newest first, with which one is published and which is served."""
    settings: Settings = request.app.state.settings
    published = current_version(settings.index_dir)
    serving = request.app.state.answerer.version
    return [VersionInfo(version=m.version, built_at=m.built_at, chunk_count=m.chunk_count,
                        articles=len(m.articles), published=m.version == published,
                        serving=m.version == serving)
            for m in list_versions(settings.index_dir)]


@router.get("/unanswered", response_model=UnansweredList)
def unanswered(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> UnansweredList:
    """Questions that ended as no_match (redacted, grouped), most asked first."""
    settings: Settings = request.app.state.settings
    store: UnansweredStore = request.app.state.unanswered
    groups = [UnansweredGroupOut(id=g.id, text=g.text, count=g.count, first_seen=g.first_seen,
                                 last_seen=g.last_seen, variants=g.variants)
              for g in store.groups(limit)]
    return UnansweredList(recording=settings.record_unanswered, groups=groups)


class FeedbackOut(BaseModel):
    id: int
    created: str
    helpful: bool
    kind: str
    question: str
    comment: str | None
    index_version: str
    passage_ids: list[str]
    handled: str | None


@router.get("/feedback", response_model=list[FeedbackOut])
def feedback(request: Request, verdict: Literal["not_helpful", "helpful", "all"] = "not_helpful",
             include_handled: bool = False,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[FeedbackOut]:
    """Visitors' verdicts, newest first; by default the review queue (not helpful, not handled)."""
    helpful = {"not_helpful": False, "helpful": True, "all": None}[verdict]
    entries = request.app.state.feedback.entries(helpful=helpful, include_handled=include_handled, limit=limit)
    return [FeedbackOut(**asdict(e)) for e in entries]


@router.post("/feedback/{entry_id}/handled", response_model=FeedbackOut,
             responses=error_responses(404))
def feedback_handled(request: Request, entry_id: int) -> FeedbackOut:
    """Take a feedback entry off the review queue."""
    store = request.app.state.feedback
    if not store.mark_handled(entry_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No open feedback entry {entry_id}.")
    return FeedbackOut(**asdict(store.get(entry_id)))


def install(app: FastAPI, settings: Settings) -> None:
    """Add the admin routes and the unanswered-question store to ``app``."""
    app.state.admin_failures = FailureCounter(settings.admin_failure_limit, settings.rate_limit_storage,
                                              "admin-failures")
    app.state.feedback = FeedbackStore(settings.db_path, url=settings.database_url,
                                       retention_days=settings.unanswered_retention_days)
    app.state.unanswered = UnansweredStore(settings.db_path, url=settings.database_url,
                                           similarity=settings.unanswered_similarity,
                                           retention_days=settings.unanswered_retention_days,
                                           max_groups=settings.unanswered_max_groups)
    app.include_router(router)


def record_unanswered(app: FastAPI, question: str) -> None:
    """Keep a no_match question (redacted) for staff; never logs the question, never raises."""
    try:
        text = redact(question)
        app.state.unanswered.record(text, app.state.answerer.question_vector(text))
    except Exception as exc:  # a full disk must not turn into a failed answer
        log.warning("could not record an unanswered question (%s)", type(exc).__name__)


async def _watch(app: FastAPI, interval: float) -> None:
    failed_on: str | None = None
    while True:
        await asyncio.sleep(interval)
        answerer = app.state.answerer
        previous = answerer.version
        try:
            if await asyncio.to_thread(answerer.reload):
                log.info("newly published index picked up: %s -> %s", previous, answerer.version)
                index_served(answerer.index, previous)
            failed_on = None
        except Exception as exc:
            published = current_version(app.state.settings.index_dir)
            if published != failed_on:  # say it once per bad version, keep serving the old one
                answerer.degraded = _unloadable(published, exc, answerer.version)
                log.error(answerer.degraded)
                failed_on = published


@contextlib.asynccontextmanager
async def index_watcher(app: FastAPI, interval: float) -> AsyncIterator[None]:
    """Run the publication watcher for the app's lifetime (``interval`` 0 turns it off)."""
    if interval <= 0:
        yield
        return
    task = asyncio.create_task(_watch(app, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
