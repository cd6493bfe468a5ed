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

__all__ = ["FailureCounter", "RateLimit", "storage_for"]

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


class FailureCounter:
    """Failed sign-ins per client (admin token, staff password) in the rate-limit storage.

    A storage outage never raises and never locks anyone out: it only stops the counting.
    """

    def __init__(self, spec: str, storage: str, namespace: str) -> None:
        from limits import parse
        from limits.strategies import MovingWindowRateLimiter

        self._limiter = MovingWindowRateLimiter(storage_for(storage, asynchronous=False))
        self._limit, self._namespace = parse(spec), namespace

    def _call(self, method, client: str) -> bool:  # type: ignore[no-untyped-def]
        try:
            return bool(method(self._limit, self._namespace, client))
        except Exception as exc:
            log.warning("sign-in failure counter unavailable (%s): not limiting", type(exc).__name__)
            return True

    def allowed(self, client: str) -> bool:
        """Whether ``client`` may try again (False once it failed too often in the window)."""
        return self._call(self._limiter.test, client)

    def failed(self, client: str) -> None:
        self._call(self._limiter.hit, client)
