"""Visitors' "was this helpful?" on answers, kept (redacted) for staff to review.

Stored in the same database as the unanswered questions (storage.py): the question and the optional comment
redacted like them (redaction.py), the answer's kind, the passages shown and the index version.
"Not helpful" entries form the staff review queue until marked handled. Crisis answers take no
feedback. Entries older than the retention period are deleted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ketfaq.redaction import redact
from ketfaq.storage import created, database_url, engine_for, feedback

__all__ = ["FeedbackEntry", "FeedbackStore"]

@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    """One visitor's verdict on one answer (text already redacted)."""

    id: int
    created: str
    helpful: bool
    kind: str
    question: str
    comment: str | None
    index_version: str
    passage_ids: list[str]
    handled: str | None


class FeedbackStore:
    """The feedback table; safe from several threads, worker processes and instances."""

    def __init__(self, path: Path, *, retention_days: int = 0, url: str = "") -> None:
        self.path = Path(path)
        self.url = database_url(self.path, url)
        self.retention_days = retention_days

    def record(self, *, question: str, kind: str, helpful: bool, index_version: str,
               passage_ids: list[str], comment: str | None = None, now: dt.datetime | None = None) -> int:
        """Store one verdict (redacted here); returns its id."""
        moment = now or dt.datetime.now(dt.UTC)
        comment = (redact(comment).strip() or None) if comment else None
        with engine_for(self.url).begin() as conn:
            row_id = conn.execute(feedback.insert().values(
                created=moment.isoformat(timespec="seconds"), helpful=int(helpful), kind=kind,
                question=redact(question).strip(), comment=comment, index_version=index_version,
                passage_ids=json.dumps(passage_ids))).inserted_primary_key[0]
            if self.retention_days > 0:
                cutoff = (moment - dt.timedelta(days=self.retention_days)).isoformat(timespec="seconds")
                conn.execute(feedback.delete().where(feedback.c.created < cutoff))
        return int(row_id)

    def entries(self, *, helpful: bool | None = None, include_handled: bool = False,
                limit: int = 50) -> list[FeedbackEntry]:
        """Newest first; ``helpful=False`` without handled ones is the review queue."""
        conditions = []
        if helpful is not None:
            conditions.append(feedback.c.helpful == int(helpful))
        if not include_handled:
            conditions.append(feedback.c.handled.is_(None))
        return self._select(conditions, limit)

    def get(self, entry_id: int) -> FeedbackEntry | None:
        """One entry by id, handled or not."""
        found = self._select([feedback.c.id == entry_id], 1)
        return found[0] if found else None

    def _select(self, conditions: list, limit: int) -> list[FeedbackEntry]:
        if not created(self.url, self.path):
            return []
        query = (sa.select(feedback).where(*conditions)
                 .order_by(feedback.c.created.desc(), feedback.c.id.desc()).limit(limit))
        with engine_for(self.url).connect() as conn:
            rows = conn.execute(query).all()
        return [FeedbackEntry(r.id, r.created, bool(r.helpful), r.kind, r.question, r.comment,
                              r.index_version, json.loads(r.passage_ids), r.handled) for r in rows]

    def mark_handled(self, entry_id: int, *, now: dt.datetime | None = None) -> bool:
        """Take an entry off the review queue; False if there is none."""
        if not created(self.url, self.path):
            return False
        stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        with engine_for(self.url).begin() as conn:
            return conn.execute(feedback.update().where(feedback.c.id == entry_id, feedback.c.handled.is_(None))
                                .values(handled=stamp)).rowcount > 0
