"""Per-client limits: questions per minute on ``/api/ask`` and failed admin sign-ins.

Counters live where ``KETFAQ_RATE_LIMIT_STORAGE`` says: ``memory://`` (the default) counts per
process, so with N workers a client may ask N times as often; ``redis://host:port`` shares the
counters between every worker and every machine, so a limit holds as configured.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["RateLimit", "failure_limiter", "storage_for"]

log = logging.getLogger("ketfaq.throttle")


def storage_for(uri: str, *, asynchronous: bool):  # type: ignore[no-untyped-def]
    """The `limits` storage for ``uri`` (async for request paths, sync for sync endpoints)."""
    from limits.storage import storage_from_string

    redis = uri.startswith(("redis://", "rediss://"))
    if asynchronous:
        return storage_from_string(f"async+{uri}", **({"implementation": "redispy"} if redis else {}))
    return storage_from_string(uri)  # the sync Redis storage uses redis-py already


class RateLimit:
    """A FastAPI dependency answering ``429`` when one client asks too often (moving window).

    The client is the connection's address; behind a reverse proxy set ``KETFAQ_TRUSTED_PROXIES``
    to the proxy's address so that ``ketfaq serve`` takes the visitor's from X-Forwarded-For.

    Example::

        limit = RateLimit("20/minute;200/hour", "redis://127.0.0.1:6379")
        app.post("/api/ask", dependencies=[Depends(limit)])
    """

    def __init__(self, spec: str, storage: str = "memory://") -> None:
        self.items: list[RateLimitItem] = []
        if not spec.strip():
            return  # off (the default): `limits` is not even imported at start
        from limits import parse_many
        from limits.aio.strategies import MovingWindowRateLimiter

        self.items = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage_for(storage, asynchronous=True))

    async def __call__(self, request: Request) -> None:
        if not self.items:
            return
        client = request.client.host if request.client else "unknown"
        try:
            blocked = [item for item in self.items if not await self._limiter.test(item, "ask", client)]
            if not blocked:
                for item in self.items:
                    await self._limiter.hit(item, "ask", client)
                return
            stats = [await self._limiter.get_window_stats(item, "ask", client) for item in blocked]
        except Exception as exc:  # the shared store is down: visitors still get answers
            log.warning("rate limit storage unavailable (%s): not limiting", type(exc).__name__)
            return
        wait = max(1, math.ceil(max(s.reset_time for s in stats) - time.time()))
        raise HTTPException(
            status_code=429,
            detail=(f"You've sent a lot of questions in a short time. Please wait about {wait} "
                    f"second{'s' if wait != 1 else ''} and then ask again. If you are struggling "
                    "right now, call or text 988; in an emergency, call 911."),
            headers={"Retry-After": str(wait)},
        )


def failure_limiter(spec: str, storage: str):  # type: ignore[no-untyped-def]
    """A (limiter, limit) pair counting failed sign-ins per client, in the same storage."""
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    return MovingWindowRateLimiter(storage_for(storage, asynchronous=False)), parse(spec)
