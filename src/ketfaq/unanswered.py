"""Questions the articles could not answer, kept in SQLite so staff can see what to write next.

Only redacted text is stored (names, dates, numbers, addresses, contacts replaced: see
redaction.py). Groups not asked for ``retention_days`` are forgotten, and at most ``max_groups``
are kept (the least recently asked go first). Near-identical
questions share a group: the same text after normalization (case, punctuation, spacing), or a
question vector whose cosine similarity to the group's first question is at least ``similarity``.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ketfaq.redaction import redact

__all__ = ["UnansweredGroup", "UnansweredStore", "normalize_question", "redact"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS question_group (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    vector BLOB
);
CREATE TABLE IF NOT EXISTS question_variant (
    norm TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES question_group(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS variant_group ON question_variant(group_id);
"""


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
    """An SQLite file of unanswered questions, safe to use from several threads and processes."""

    def __init__(self, path: Path, *, similarity: float = 0.85, retention_days: int = 0,
                 max_groups: int = 0) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ValueError(f"similarity must be in (0, 1], got {similarity}")
        self.path = Path(path)
        self.similarity = similarity
        self.retention_days = retention_days  # 0: keep until dismissed
        self.max_groups = max_groups  # 0: no cap
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # a forgotten question is overwritten, not left in free pages
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
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
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes too
                row = conn.execute("SELECT group_id FROM question_variant WHERE norm = ?", (norm,)).fetchone()
                if row:
                    group_id = row[0]
                    conn.execute("UPDATE question_variant SET count = count + 1 WHERE norm = ?", (norm,))
                else:
                    group_id = self._nearest_group(conn, vec)
                    if group_id is None:
                        group_id = conn.execute(
                            "INSERT INTO question_group (text, count, first_seen, last_seen, vector) "
                            "VALUES (?, 0, ?, ?, ?)",
                            (text, stamp, stamp, None if vec is None else vec.tobytes()),
                        ).lastrowid
                    conn.execute("INSERT INTO question_variant (norm, group_id, text, count) VALUES (?, ?, ?, 1)",
                                 (norm, group_id, text))
                conn.execute("UPDATE question_group SET count = count + 1, last_seen = ? WHERE id = ?",
                             (stamp, group_id))
                self._enforce_limits(conn, now or dt.datetime.now(dt.UTC))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
        return int(group_id)

    def _enforce_limits(self, conn: sqlite3.Connection, now: dt.datetime,
                        retention_days: int | None = None) -> int:
        """Forget groups past the retention period, then the least recently asked over the cap."""
        removed = 0
        days = self.retention_days if retention_days is None else retention_days
        if retention_days == 0:  # asked for explicitly: forget everything
            removed += conn.execute("DELETE FROM question_group").rowcount
        elif days > 0:
            cutoff = (now - dt.timedelta(days=days)).isoformat(timespec="seconds")
            removed += conn.execute("DELETE FROM question_group WHERE last_seen < ?", (cutoff,)).rowcount
        if self.max_groups > 0:
            removed += conn.execute(
                "DELETE FROM question_group WHERE id NOT IN (SELECT id FROM question_group "
                "ORDER BY last_seen DESC, id DESC LIMIT ?)", (self.max_groups,)).rowcount
        return removed

    def purge(self, *, older_than_days: int | None = None, now: dt.datetime | None = None) -> int:
        """Apply the retention period (or ``older_than_days``; 0: everything) and the cap now;
        returns the number of groups removed."""
        if not self.path.exists():
            return 0
        keep = self.retention_days if older_than_days is None else older_than_days
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                removed = self._enforce_limits(conn, now or dt.datetime.now(dt.UTC), keep)
                conn.execute("COMMIT")
                conn.execute("VACUUM")  # deleted text must not linger in free pages of the file
                return removed
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()

    def _nearest_group(self, conn: sqlite3.Connection, vec: np.ndarray | None) -> int | None:
        if vec is None:
            return None
        rows = conn.execute("SELECT id, vector FROM question_group WHERE vector IS NOT NULL").fetchall()
        rows = [(gid, blob) for gid, blob in rows if len(blob) == vec.nbytes]
        if not rows:
            return None
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ vec
        best = int(np.argmax(scores))
        return int(rows[best][0]) if scores[best] >= self.similarity else None

    def groups(self, limit: int = 50) -> list[UnansweredGroup]:
        """The most asked groups first (then the most recent), each with up to 5 variants."""
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT id, text, count, first_seen, last_seen FROM question_group "
                "ORDER BY count DESC, last_seen DESC LIMIT ?", (limit,)).fetchall()
            result = []
            for gid, text, count, first, last in rows:
                variants = [v for (v,) in conn.execute(
                    "SELECT text FROM question_variant WHERE group_id = ? ORDER BY count DESC LIMIT 5",
                    (gid,))]
                result.append(UnansweredGroup(gid, text, count, first, last, variants))
            return result
        finally:
            conn.close()

    def dismiss(self, group_id: int) -> bool:
        """Forget a group (e.g. once an article answers it); False if there was none."""
        if not self.path.exists():
            return False
        with self._lock:
            conn = self._connect()
            try:
                deleted = conn.execute("DELETE FROM question_group WHERE id = ?", (group_id,)).rowcount
                return deleted > 0
            finally:
                conn.close()
