"""The HTTP API (FastAPI): ``POST /api/ask``, ``GET /api/health``, ``GET /api/suggestions``."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ketfaq import admin
from ketfaq.answer import Answerer, InvalidQuestion, validate_question
from ketfaq.contract import AnswerResponse, FeedbackRequest, FeedbackResult, Kind, error_responses
from ketfaq.metrics import ANSWERS, FEEDBACK, RequestMetrics, index_served, metrics_endpoint
from ketfaq.runtime import load_answerer
from ketfaq.safety.gate import without_surrogates
from ketfaq.settings import Settings, get_settings
from ketfaq.staff.console import install_console
from ketfaq.throttle import RateLimit
from ketfaq.web import BodyLimit, ReadableBody, SecurityHeaders, mount_api_docs, mount_web

__all__ = ["create_app", "AskRequest"]

log = logging.getLogger("ketfaq.api")


class AskRequest(BaseModel):
    """The body of ``POST /api/ask``."""

    # minLength / pattern document what is always refused; no maxLength: a crisis message of any
    # length is answered (the body cap bounds it), only a non-crisis one over 1,000 gets a 422.
    question: StrictStr = Field(json_schema_extra={"minLength": 1, "pattern": r"\S"}, description=(
        "The visitor's question. Every message is screened for crisis whatever its length; a "
        "non-crisis message longer than max_question_chars (1,000 by default) gets a 422."))


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: the published index could not "
                                              "be loaded and an older version is served; see warning")
    index_version: str = Field(description="the version being served")
    passages: int
    model: str
    warning: str | None = None


class Suggestions(BaseModel):
    questions: list[str]


async def get_answerer(request: Request) -> Answerer:
    """The app's answerer (a module-level alias: string annotations resolve in module globals).

    ``async`` because it never blocks: a sync dependency would cost a threadpool hop per request.
    """
    return request.app.state.answerer


AnswererDep = Annotated[Answerer, Depends(get_answerer)]


def _readable(errors: list[dict[str, Any]]) -> str:
    """One sentence a person can act on, from pydantic's error list."""
    for error in errors:
        kind, loc = error.get("type", ""), error.get("loc", ())
        if kind == "json_invalid":
            return 'The request body must be JSON like {"question": "..."}.'
        if kind == "missing" and "question" in loc:
            return 'Please include a "question" field with your question.'
        if kind == "missing":
            return 'The request body must be JSON like {"question": "..."}.'
        if "question" in loc and kind.startswith("string"):
            return 'The "question" field must be text.'
        if kind in ("model_attributes_type", "dict_type"):
            return 'The request body must be a JSON object like {"question": "..."}.'
    return "The request could not be read; send JSON like {\"question\": \"...\"}."


def _readable_feedback(errors: list[dict[str, Any]]) -> str:
    """The sentence for a feedback body that can't be used."""
    for error in errors:
        if error.get("loc", ())[-1:] == ("kind",) and error.get("input") == Kind.CRISIS:
            return "Feedback is not collected on crisis answers."
    fields = sorted({str(e.get("loc", ())[-1]) for e in errors if len(e.get("loc", ())) > 1})
    return ("The feedback could not be read" + (f" (check {', '.join(fields)})" if fields else "")
            + '; send JSON like {"question": "...", "kind": "answer", "index_version": "...", "helpful": true}.')


def create_app(settings: Settings | None = None, answerer: Answerer | None = None) -> FastAPI:
    """The ASGI app; loads the model and index once at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.answerer = answerer or load_answerer(settings)
        index_served(app.state.answerer.index)
        # What start-up built (modules, pydantic-core validators, index, lexicon) lives as long as
        # the process, yet every full collection walked all of it. Frozen, a full collection
        # only sees objects made since (docs/PERFORMANCE.md).
        gc.collect()
        gc.freeze()
        async with admin.index_watcher(app, settings.reload_interval):
            yield

    app = FastAPI(
        title="ketfaq",
        version="0.1.0",
        summary="Verbatim passages from the clinic's articles, a fixed disclaimer and a referral.",
        lifespan=lifespan,
        responses=error_responses(422),  # FastAPI's own 422 schema is not the body we send
        docs_url=None,  # mount_api_docs serves /docs from vendored files instead of a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.settings = settings
    admin.install(app, settings)
    install_console(app, settings)
    # Inside out: bodies made readable, within the cap (413), with the security headers on all.
    app.add_middleware(ReadableBody)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
    app.add_middleware(RequestMetrics)  # outermost: every response counted, 413s and 429s too
    rate_limit = RateLimit(settings.rate_limit, settings.rate_limit_storage)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if request.url.path == "/api/feedback":
            return JSONResponse(status_code=422, content={"detail": _readable_feedback(errors)})
        return JSONResponse(status_code=422, content={"detail": _readable(errors)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. JSON nested too deep)
            return JSONResponse(status_code=422, content={"detail": _readable([{"type": "json_invalid"}])})
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidQuestion)
    async def _invalid_question(request: Request, exc: InvalidQuestion) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.post("/api/ask", response_model=AnswerResponse, dependencies=[Depends(rate_limit)],
              responses=error_responses(413, 429))
    async def ask(body: AskRequest, answerer: AnswererDep, request: Request,
                  background: BackgroundTasks) -> AnswerResponse:
        """Answer a visitor's question with verbatim passages, the disclaimer and a referral."""
        # Lone surrogates can't be embedded or written back as JSON: replaced, then screened.
        question = without_surrogates(validate_question(body.question))
        # The answer is CPU-bound: it runs on a worker thread, so the event loop never waits on
        # the encoder. One hop: a sync endpoint would take a second one for FastAPI's response
        # validation, which costs throughput under load (docs/PERFORMANCE.md).
        response = await run_in_threadpool(answerer.ask, question)
        ANSWERS.labels(response.kind.value).inc()
        if response.kind == Kind.NO_MATCH and settings.record_unanswered:
            background.add_task(admin.record_unanswered, request.app, question)
        return response

    @app.post("/api/feedback", response_model=FeedbackResult, dependencies=[Depends(rate_limit)],
              responses=error_responses(413, 429))
    def feedback(body: FeedbackRequest, request: Request) -> FeedbackResult:
        """A visitor's "was this helpful?" on an answer; stored redacted for staff (not for crises)."""
        try:
            request.app.state.feedback.record(
                question=without_surrogates(body.question), kind=body.kind.value, helpful=body.helpful,
                index_version=body.index_version, passage_ids=body.passage_ids,
                comment=without_surrogates(body.comment) if body.comment else None)
        except Exception as exc:  # a full disk must not become a 500 for a visitor being helpful
            log.warning("could not record feedback (%s)", type(exc).__name__)
            return FeedbackResult(recorded=False)
        FEEDBACK.labels(str(body.helpful).lower(), body.kind.value).inc()
        return FeedbackResult(recorded=True)

    app.get("/metrics", include_in_schema=False)(metrics_endpoint(settings.metrics_token))

    @app.get("/api/health", response_model=Health)
    def health(answerer: AnswererDep) -> Health:
        """Liveness and the index version being served."""
        index = answerer.index
        return Health(status="degraded" if answerer.degraded else "ok", index_version=index.version,
                      passages=len(index.chunks), model=index.manifest.model_name,
                      warning=answerer.degraded)

    @app.get("/api/suggestions", response_model=Suggestions)
    def suggestions(answerer: AnswererDep, limit: int = 6) -> Suggestions:
        """Starter questions: the FAQ questions that appear in the articles."""
        by_lowercase: dict[str, str] = {}
        for chunk in answerer.index.chunks:
            if chunk.question:
                by_lowercase.setdefault(chunk.question.lower(), chunk.question)
        return Suggestions(questions=list(by_lowercase.values())[: max(0, min(limit, 20))])

    if settings.api_docs:
        mount_api_docs(app)
    mount_web(app, settings)  # last: API routes take precedence over the page's files
    return app
