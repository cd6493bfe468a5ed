"""Visitors' "was this helpful?" on answers, kept (redacted) for staff to review.

Stored in the same SQLite file as the unanswered questions: the question and the optional comment
redacted like them (redaction.py), the answer's kind, the passages shown and the index version.
"Not helpful" entries form the staff review queue until marked handled. Crisis answers take no
feedback. Entries older than the retention period are deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ketfaq.redaction import redact

__all__ = ["FeedbackEntry", "FeedbackStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    comment TEXT,
    index_version TEXT NOT NULL,
    passage_ids TEXT NOT NULL,
    handled TEXT
);
CREATE INDEX IF NOT EXISTS feedback_queue ON feedback(helpful, handled, created);
"""


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
    """The feedback table; safe from several threads and worker processes (SQLite WAL)."""

    def __init__(self, path: Path, *, retention_days: int = 0) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA secure_delete = ON")
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def record(self, *, question: str, kind: str, helpful: bool, index_version: str,
               passage_ids: list[str], comment: str | None = None, now: dt.datetime | None = None) -> int:
        """Store one verdict (redacted here); returns its id."""
        moment = now or dt.datetime.now(dt.UTC)
        comment = (redact(comment).strip() or None) if comment else None
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                row_id = conn.execute(
                    "INSERT INTO feedback (created, helpful, kind, question, comment, index_version, "
                    "passage_ids) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (moment.isoformat(timespec="seconds"), int(helpful), kind, redact(question).strip(),
                     comment, index_version, json.dumps(passage_ids))).lastrowid
                if self.retention_days > 0:
                    cutoff = (moment - dt.timedelta(days=self.retention_days)).isoformat(timespec="seconds")
                    conn.execute("DELETE FROM feedback WHERE created < ?", (cutoff,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
        return int(row_id)

    def entries(self, *, helpful: bool | None = None, include_handled: bool = False,
                limit: int = 50) -> list[FeedbackEntry]:
        """Newest first; ``helpful=False`` without handled ones is the review queue."""
        if not self.path.exists():
            return []
        where, args = [], []
        if helpful is not None:
            where.append("helpful = ?")
            args.append(int(helpful))
        if not include_handled:
            where.append("handled IS NULL")
        return self._select(" WHERE " + " AND ".join(where) if where else "", args, limit)

    def get(self, entry_id: int) -> FeedbackEntry | None:
        """One entry by id, handled or not."""
        if not self.path.exists():
            return None
        found = self._select(" WHERE id = ?", [entry_id], 1)
        return found[0] if found else None

    def _select(self, where: str, args: list, limit: int) -> list[FeedbackEntry]:
        sql = ("SELECT id, created, helpful, kind, question, comment, index_version, passage_ids, handled "
               f"FROM feedback{where} ORDER BY created DESC, id DESC LIMIT ?")
        conn = self._connect()
        try:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        finally:
            conn.close()
        return [FeedbackEntry(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], json.loads(r[7]), r[8])
                for r in rows]

    def mark_handled(self, entry_id: int, *, now: dt.datetime | None = None) -> bool:
        """Take an entry off the review queue; False if there is none."""
        if not self.path.exists():
            return False
        stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        with self._lock:
            conn = self._connect()
            try:
                return conn.execute("UPDATE feedback SET handled = ? WHERE id = ? AND handled IS NULL",
                                    (stamp, entry_id)).rowcount > 0
            finally:
                conn.close()
