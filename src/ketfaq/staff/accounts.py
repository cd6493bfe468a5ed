"""Staff accounts, their sessions and the audit log, in the app's SQLite file.

Passwords are hashed with Argon2id (argon2-cffi) and never stored or logged in clear. A session id
is random, given to the browser once, and stored only as its SHA-256, with its own CSRF token.
Every publish, rollback and review action is written to the audit log with who did it and when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["AuditEntry", "StaffSession", "StaffStore", "MIN_PASSWORD"]

MIN_PASSWORD = 12
SESSION_HOURS = 8
_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff (name TEXT PRIMARY KEY, hash TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staff_session (
    id_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES staff(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StaffSession:
    name: str
    csrf: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: str
    name: str
    action: str
    detail: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class StaffStore:
    """Accounts, sessions and the audit log; safe from several threads and worker processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            conn = self._connect()
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()

    # accounts
    def add(self, name: str, password: str) -> None:
        """Create or reset an account; ValueError for an unusable name or a short password."""
        name = name.strip()
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("a staff name is 1-64 letters, digits, '.', '-' or '_'")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a staff password needs at least {MIN_PASSWORD} characters")
        self._run("INSERT INTO staff (name, hash, created) VALUES (?, ?, ?) "
                  "ON CONFLICT(name) DO UPDATE SET hash = excluded.hash",
                  (name, _hasher.hash(password), _now().isoformat(timespec="seconds")))
        self._run("DELETE FROM staff_session WHERE name = ?", (name,))  # a reset signs them out

    def remove(self, name: str) -> bool:
        existed = bool(self._run("SELECT 1 FROM staff WHERE name = ?", (name,)))
        self._run("DELETE FROM staff WHERE name = ?", (name,))
        return existed

    def names(self) -> list[str]:
        return [n for (n,) in self._run("SELECT name FROM staff ORDER BY name")] if self.path.exists() else []

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s, in the same time whether or not the name exists."""
        rows = self._run("SELECT hash FROM staff WHERE name = ?", (name,)) if self.path.exists() else []
        stored = rows[0][0] if rows else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password) and bool(rows)
        except (VerificationError, InvalidHashError):
            return False
        if ok and _hasher.check_needs_rehash(stored):
            self._run("UPDATE staff SET hash = ? WHERE name = ?", (_hasher.hash(password), name))
        return ok

    # sessions
    def start_session(self, name: str) -> tuple[str, str]:
        """A new session for ``name``: (session id for the cookie, its CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        self._run("DELETE FROM staff_session WHERE expires < ?", (now.isoformat(timespec="seconds"),))
        self._run("INSERT INTO staff_session (id_hash, name, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                  (_digest(session_id), name, csrf, now.isoformat(timespec="seconds"),
                   (now + dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")))
        return session_id, csrf

    def session(self, session_id: str | None) -> StaffSession | None:
        if not session_id or not self.path.exists():
            return None
        rows = self._run("SELECT name, csrf, expires FROM staff_session WHERE id_hash = ?", (_digest(session_id),))
        if not rows or rows[0][2] < _now().isoformat(timespec="seconds"):
            return None
        return StaffSession(rows[0][0], rows[0][1])

    def end_session(self, session_id: str | None) -> None:
        if session_id:
            self._run("DELETE FROM staff_session WHERE id_hash = ?", (_digest(session_id),))

    # audit
    def audit(self, name: str, action: str, detail: str = "") -> None:
        self._run("INSERT INTO audit (at, name, action, detail) VALUES (?, ?, ?, ?)",
                  (_now().isoformat(timespec="seconds"), name, action, detail))

    def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        if not self.path.exists():
            return []
        return [AuditEntry(*row) for row in self._run(
            "SELECT at, name, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))]


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
