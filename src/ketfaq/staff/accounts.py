"""Staff accounts, their sessions and the audit log, in the app's database (storage.py).

Passwords are hashed with Argon2id (argon2-cffi) and never stored or logged in clear. A session id
is random, given to the browser once, and stored only as its SHA-256, with its own CSRF token.
Every publish, rollback and review action is written to the audit log with who did it and when.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ketfaq.storage import audit, created, database_url, engine_for, staff, staff_session

__all__ = ["AuditEntry", "StaffSession", "StaffStore", "MIN_PASSWORD"]

MIN_PASSWORD = 12
SESSION_HOURS = 8
_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

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
    """Accounts, sessions and the audit log; safe from several threads, processes and instances."""

    def __init__(self, path: Path, *, url: str = "") -> None:
        self.path = Path(path)
        self.url = database_url(self.path, url)

    # accounts
    def add(self, name: str, password: str) -> None:
        """Create or reset an account; ValueError for an unusable name or a short password."""
        name = name.strip()
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("a staff name is 1-64 letters, digits, '.', '-' or '_'")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a staff password needs at least {MIN_PASSWORD} characters")
        with engine_for(self.url).begin() as conn:
            conn.execute(staff_session.delete().where(staff_session.c.name == name))  # a reset signs them out
            conn.execute(staff.delete().where(staff.c.name == name))
            conn.execute(staff.insert().values(name=name, hash=_hasher.hash(password),
                                               created=_now().isoformat(timespec="seconds")))

    def remove(self, name: str) -> bool:
        if not created(self.url, self.path):
            return False
        with engine_for(self.url).begin() as conn:
            conn.execute(staff_session.delete().where(staff_session.c.name == name))
            return conn.execute(staff.delete().where(staff.c.name == name)).rowcount > 0

    def names(self) -> list[str]:
        if not created(self.url, self.path):
            return []
        with engine_for(self.url).connect() as conn:
            return list(conn.execute(sa.select(staff.c.name).order_by(staff.c.name)).scalars())

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s, in the same time whether or not the name exists."""
        stored = None
        if created(self.url, self.path):
            with engine_for(self.url).connect() as conn:
                stored = conn.execute(sa.select(staff.c.hash).where(staff.c.name == name)).scalar()
        try:
            ok = _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
        if ok and _hasher.check_needs_rehash(stored):
            with engine_for(self.url).begin() as conn:
                conn.execute(staff.update().where(staff.c.name == name).values(hash=_hasher.hash(password)))
        return ok

    # sessions
    def start_session(self, name: str) -> tuple[str, str]:
        """A new session for ``name``: (session id for the cookie, its CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with engine_for(self.url).begin() as conn:
            conn.execute(staff_session.delete().where(staff_session.c.expires < now.isoformat(timespec="seconds")))
            conn.execute(staff_session.insert().values(
                id_hash=_digest(session_id), name=name, csrf=csrf, created=now.isoformat(timespec="seconds"),
                expires=(now + dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")))
        return session_id, csrf

    def session(self, session_id: str | None) -> StaffSession | None:
        if not session_id or not created(self.url, self.path):
            return None
        with engine_for(self.url).connect() as conn:
            row = conn.execute(sa.select(staff_session.c.name, staff_session.c.csrf, staff_session.c.expires)
                               .where(staff_session.c.id_hash == _digest(session_id))).first()
        if row is None or row.expires < _now().isoformat(timespec="seconds"):
            return None
        return StaffSession(row.name, row.csrf)

    def end_session(self, session_id: str | None) -> None:
        if session_id and created(self.url, self.path):
            with engine_for(self.url).begin() as conn:
                conn.execute(staff_session.delete().where(staff_session.c.id_hash == _digest(session_id)))

    # audit
    def audit(self, name: str, action: str, detail: str = "") -> None:
        with engine_for(self.url).begin() as conn:
            conn.execute(audit.insert().values(at=_now().isoformat(timespec="seconds"), name=name,
                                               action=action, detail=detail))

    def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        if not created(self.url, self.path):
            return []
        with engine_for(self.url).connect() as conn:
            rows = conn.execute(sa.select(audit.c.at, audit.c.name, audit.c.action, audit.c.detail)
                                .order_by(audit.c.id.desc()).limit(limit)).all()
        return [AuditEntry(*row) for row in rows]


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
