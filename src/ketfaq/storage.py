"""The one data layer for what ketfaq keeps about visitors and staff (SQLAlchemy Core).

SQLite by default (``KETFAQ_DB_PATH``: zero set-up); PostgreSQL for several instances by
``KETFAQ_DATABASE_URL=postgresql+psycopg://user:pass@host/db``. The schema is created and upgraded
by Alembic migrations (``ketfaq/migrations``) the first time a store opens a database.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)

__all__ = ["METADATA", "audit", "created", "database_url", "engine_for", "feedback", "question_group",
           "question_variant", "staff", "staff_session"]

METADATA = MetaData()

question_group = Table(
    "question_group", METADATA,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_seen", String(32), nullable=False),
    Column("last_seen", String(32), nullable=False, index=True),
    Column("vector", LargeBinary),
)
question_variant = Table(
    "question_variant", METADATA,
    Column("norm", Text, primary_key=True),
    Column("group_id", Integer, ForeignKey("question_group.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("count", Integer, nullable=False),
)
feedback = Table(
    "feedback", METADATA,
    Column("id", Integer, primary_key=True),
    Column("created", String(32), nullable=False),
    Column("helpful", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("comment", Text),
    Column("index_version", String(100), nullable=False),
    Column("passage_ids", Text, nullable=False),
    Column("handled", String(32)),
    Index("feedback_queue", "helpful", "handled", "created"),
)
staff = Table(
    "staff", METADATA,
    Column("name", String(64), primary_key=True),
    Column("hash", Text, nullable=False),
    Column("created", String(32), nullable=False),
)
staff_session = Table(
    "staff_session", METADATA,
    Column("id_hash", String(64), primary_key=True),
    Column("name", String(64), ForeignKey("staff.name", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created", String(32), nullable=False),
    Column("expires", String(32), nullable=False),
)
audit = Table(
    "audit", METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", String(32), nullable=False),
    Column("name", String(64), nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text, nullable=False),
)

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def database_url(db_path: Path, url: str = "") -> str:
    """``url`` when set, else the SQLite file ``db_path``."""
    return url or f"sqlite:///{Path(db_path)}"


@cache
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:  # type: ignore[no-untyped-def]
            conn.isolation_level = None  # SQLAlchemy's "begin" below issues the BEGIN
            for pragma in ("journal_mode = WAL", "foreign_keys = ON", "secure_delete = ON"):
                conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _immediate(conn) -> None:  # type: ignore[no-untyped-def]
            # One writer at a time across processes, taken at BEGIN: no deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def created(url: str, db_path: Path) -> bool:
    """Whether the database can hold rows yet: False for a SQLite file not made (reading must not
    create it); a server database is there to be migrated on first use."""
    return not url.startswith("sqlite") or Path(db_path).exists()


def engine_for(url: str) -> Engine:
    """The engine for ``url``, its schema migrated to the newest revision on first use."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    with _migrate_lock:
        if url not in _migrated:
            _upgrade(engine)
            _migrated.add(url)
    return engine


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # workers starting together migrate one at a time
            connection.execute(text("SELECT pg_advisory_xact_lock(4710)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
