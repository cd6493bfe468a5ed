"""A bounded async HTTP load generator (httpx): N connections asking questions for D seconds."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx


async def _run(url: str, questions: list[str], connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                question = questions[next(counter) % len(questions)]
                start = time.perf_counter()
                try:
                    response = await client.post(url, json={"question": question})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return {"requests": len(latencies), "errors": errors, "seconds": elapsed,
            "rps": len(latencies) / elapsed, "latencies": latencies}


def run_load(url: str, questions: list[str], *, connections: int, seconds: float) -> dict:
    """Requests/s, latencies and error count of ``connections`` clients over ``seconds``."""
    return asyncio.run(_run(url, questions, connections, seconds))
