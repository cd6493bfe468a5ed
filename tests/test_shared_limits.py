"""Limits that hold across workers: `ketfaq serve --workers 2` with the counters in a real Redis
(Debian's redis-server, started here on a loopback port and stopped by its PID)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT
from .test_scale_out import _free_port

TOKEN = "shared-limits-admin-token"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server missing: scripts/test.sh installs it (apt-get install redis-server)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    import redis

    port = _free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _serve_two_workers(settings, env_extra: dict[str, str]) -> tuple[subprocess.Popen, str]:
    from ketfaq.settings import get_settings

    port = _free_port()
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir), "KETFAQ_INDEX_DIR": str(settings.index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(get_settings().resolved_model_cache_dir().resolve()),
           "KETFAQ_RECORD_UNANSWERED": "false", **env_extra}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("ketfaq")), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        try:
            if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                time.sleep(3)  # the second worker may still be loading: let both take connections
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.terminate()
    pytest.fail("two workers did not come up within 180 s")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_a_limit_holds_across_two_workers_with_redis(settings, built_index, redis_url: str) -> None:
    server, base = _serve_two_workers(settings, {
        "KETFAQ_RATE_LIMIT": "10/minute", "KETFAQ_RATE_LIMIT_STORAGE": redis_url,
        "KETFAQ_ADMIN_TOKEN": TOKEN, "KETFAQ_ADMIN_FAILURE_LIMIT": "5/minute",
        "KETFAQ_TRUSTED_PROXIES": ""})
    try:
        codes = []
        for i in range(40):  # a new connection each time: the kernel spreads them over both workers
            r = httpx.post(f"{base}/api/ask", json={"question": "Does a ketamine infusion hurt?"},
                           headers={"Connection": "close", "X-Forwarded-For": f"203.0.113.{i + 1}"},
                           timeout=30)
            codes.append(r.status_code)
        assert codes.count(200) == 10 and codes.count(429) == 30, codes
        wrong = [httpx.get(f"{base}/api/admin/versions", headers={
                     "Authorization": "Bearer wrong-token-wrong-token", "Connection": "close"}, timeout=10).status_code
                 for _ in range(12)]
        assert wrong.count(401) == 5 and set(wrong[5:]) == {429}, wrong
    finally:
        _stop(server)
