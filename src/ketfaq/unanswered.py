"""Questions the articles could not answer, kept (storage.py: SQLite or PostgreSQL) so staff can
see what to write next.

Only redacted text is stored (names, dates, numbers, addresses, contacts replaced: see
redaction.py). Groups not asked for ``retention_days`` are forgotten, and at most ``max_groups``
are kept (the least recently asked go first). Near-identical
questions share a group: the same text after normalization (case, punctuation, spacing), or a
question vector whose cosine similarity to the group's first question is at least ``similarity``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ketfaq.redaction import redact
from ketfaq.storage import created, database_url, engine_for, question_group, question_variant

__all__ = ["UnansweredGroup", "UnansweredStore", "normalize_question", "redact"]

def normalize_question(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: the exact-duplicate key."""
    return " ".join(re.sub(r"[^\w\s\[\]]", " ", text.lower()).split())


@dataclass(frozen=True, slots=True)
class UnansweredGroup:
    """Near-identical unanswered questions: one example, how often, and when."""

    id: int
    text: str
    count: int
    first_seen: str
    last_seen: str
    variants: list[str] = field(default_factory=list)


class UnansweredStore:
    """The unanswered questions; safe to use from several threads, processes and instances."""

    def __init__(self, path: Path, *, similarity: float = 0.85, retention_days: int = 0,
                 max_groups: int = 0, url: str = "") -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError(f"similarity must be in (0, 1], got {similarity}")
        self.path = Path(path)
        self.url = database_url(self.path, url)
        self.similarity = similarity
        self.retention_days = retention_days  # 0: keep until dismissed
        self.max_groups = max_groups  # 0: no cap

    def _writing(self) -> sa.engine.Connection:
        """A transaction that is the only writer of this store while it runs."""
        engine = engine_for(self.url)
        conn = engine.connect()
        conn.begin()  # SQLite: BEGIN IMMEDIATE (storage.py)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(4711)"))  # groups are a shared decision
        return conn

    def record(self, question: str, vector: np.ndarray | None = None, *,
               now: dt.datetime | None = None) -> int:
        """Store one unanswered question (redacted here); returns its group id.

        ``vector`` should be the unit embedding of the *redacted* text; without it, grouping is by
        normalized text only.
        """
        text = redact(question).strip()
        norm = normalize_question(text)
        stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        vec = None if vector is None else np.asarray(vector, dtype=np.float32).ravel()
        with self._writing() as conn:
            group_id = conn.execute(sa.select(question_variant.c.group_id)
                                    .where(question_variant.c.norm == norm)).scalar()
            if group_id is not None:
                conn.execute(question_variant.update().where(question_variant.c.norm == norm)
                             .values(count=question_variant.c.count + 1))
            else:
                group_id = self._nearest_group(conn, vec)
                if group_id is None:
                    group_id = conn.execute(question_group.insert().values(
                        text=text, count=0, first_seen=stamp, last_seen=stamp,
                        vector=None if vec is None else vec.tobytes())).inserted_primary_key[0]
                conn.execute(question_variant.insert().values(norm=norm, group_id=group_id, text=text, count=1))
            conn.execute(question_group.update().where(question_group.c.id == group_id)
                         .values(count=question_group.c.count + 1, last_seen=stamp))
            self._enforce_limits(conn, now or dt.datetime.now(dt.UTC))
            conn.commit()
        return int(group_id)

    def _enforce_limits(self, conn: sa.engine.Connection, now: dt.datetime,
                        retention_days: int | None = None) -> int:
        """Forget groups past the retention period, then the least recently asked over the cap."""
        removed = 0
        days = self.retention_days if retention_days is None else retention_days
        if retention_days == 0:  # asked for explicitly: forget everything
            removed += self._delete(conn, sa.true())
        elif days > 0:
            cutoff = (now - dt.timedelta(days=days)).isoformat(timespec="seconds")
            removed += self._delete(conn, question_group.c.last_seen < cutoff)
        if self.max_groups > 0:
            keep = (sa.select(question_group.c.id).order_by(question_group.c.last_seen.desc(),
                                                            question_group.c.id.desc())
                    .limit(self.max_groups).scalar_subquery())
            removed += self._delete(conn, question_group.c.id.not_in(keep))
        return removed

    @staticmethod
    def _delete(conn: sa.engine.Connection, condition: sa.ColumnElement[bool]) -> int:
        doomed = sa.select(question_group.c.id).where(condition)
        conn.execute(question_variant.delete().where(question_variant.c.group_id.in_(doomed)))
        return conn.execute(question_group.delete().where(question_group.c.id.in_(doomed))).rowcount

    def purge(self, *, older_than_days: int | None = None, now: dt.datetime | None = None) -> int:
        """Apply the retention period (or ``older_than_days``; 0: everything) and the cap now;
        returns the number of groups removed."""
        if not created(self.url, self.path):
            return 0
        keep = self.retention_days if older_than_days is None else older_than_days
        with self._writing() as conn:
            removed = self._enforce_limits(conn, now or dt.datetime.now(dt.UTC), keep)
            conn.commit()
        if self.url.startswith("sqlite"):
            raw = engine_for(self.url).raw_connection()  # outside any transaction, as VACUUM needs
            try:
                raw.cursor().execute("VACUUM")  # deleted text must not linger in free pages
            finally:
                raw.close()
        return removed

    def _nearest_group(self, conn: sa.engine.Connection, vec: np.ndarray | None) -> int | None:
        if vec is None:
            return None
        rows = conn.execute(sa.select(question_group.c.id, question_group.c.vector)
                            .where(question_group.c.vector.is_not(None))).all()
        rows = [(gid, bytes(blob)) for gid, blob in rows if len(blob) == vec.nbytes]
        if not rows:
            return None
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ vec
        best = int(np.argmax(scores))
        return int(rows[best][0]) if scores[best] >= self.similarity else None

    def groups(self, limit: int = 50) -> list[UnansweredGroup]:
        """The most asked groups first (then the most recent), each with up to 5 variants."""
        if not created(self.url, self.path):
            return []
        with engine_for(self.url).connect() as conn:
            rows = conn.execute(sa.select(question_group.c.id, question_group.c.text, question_group.c.count,
                                          question_group.c.first_seen, question_group.c.last_seen)
                                .order_by(question_group.c.count.desc(), question_group.c.last_seen.desc())
                                .limit(limit)).all()
            result = []
            for gid, text, count, first, last in rows:
                variants = conn.execute(sa.select(question_variant.c.text)
                                        .where(question_variant.c.group_id == gid)
                                        .order_by(question_variant.c.count.desc()).limit(5)).scalars().all()
                result.append(UnansweredGroup(gid, text, count, first, last, list(variants)))
        return result

    def dismiss(self, group_id: int) -> bool:
        """Forget a group (e.g. once an article answers it); False if there was none."""
        if not created(self.url, self.path):
            return False
        with self._writing() as conn:
            deleted = self._delete(conn, question_group.c.id == group_id)
            conn.commit()
        return deleted > 0
