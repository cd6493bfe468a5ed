"""Forwarded headers are believed only from configured proxies (real server, real HTTP)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT
from .test_scale_out import _free_port


def _serve(settings, extra_env: dict[str, str]):
    from ketfaq.settings import get_settings

    port = _free_port()
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir),
           "KETFAQ_INDEX_DIR": str(settings.index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(get_settings().resolved_model_cache_dir().resolve()),
           "KETFAQ_RECORD_UNANSWERED": "false", "KETFAQ_RATE_LIMIT": "10/minute", **extra_env}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("ketfaq")), "serve", "--host", "127.0.0.1",
         "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        try:
            if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.terminate()
    pytest.fail("server did not come up within 120 s")


def _passed(base: str, n: int = 30) -> int:
    ok = 0
    with httpx.Client(timeout=30) as client:
        for i in range(n):  # bounded: n requests, each with a different claimed address
            r = client.post(f"{base}/api/ask", json={"question": "how long does a session last?"},
                            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
            ok += r.status_code == 200
    return ok


@pytest.mark.slow
@pytest.mark.parametrize(("trusted", "most"), [("", 10), ("127.0.0.1", 30)])
def test_rotating_x_forwarded_for_helps_only_through_a_trusted_proxy(settings, built_index,
                                                                      trusted: str, most: int) -> None:
    server, base = _serve(settings, {"KETFAQ_TRUSTED_PROXIES": trusted})
    try:
        passed = _passed(base)
        if trusted:  # the proxy is trusted: each forwarded address is its own client
            assert passed == most
        else:  # nobody is trusted: one client, one bucket, whatever the header says
            assert passed <= most
    finally:
        server.terminate()
        server.wait(timeout=30)
