"""A bounded async HTTP load generator (aiohttp): N connections asking questions for D seconds.

aiohttp rather than httpx: on 2 cores httpx's client topped out near 210 req/s at 32 connections
against a server that answers instantly (aiohttp: ~900), so it measured itself, not the server.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp


async def _run(url: str, questions: list[str], connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                question = questions[next(counter) % len(questions)]
                start = time.perf_counter()
                try:
                    async with session.post(url, json={"question": question}) as response:
                        await response.read()
                        ok = response.status == 200
                except (TimeoutError, aiohttp.ClientError):
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
