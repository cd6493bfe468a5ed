"""GET /metrics: closed unless a token is set, and with two workers the counts are the server's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ketfaq.api import create_app

from .conftest import ROOT
from .test_scale_out import _free_port

TOKEN = "metrics-scrape-token-123"
QUESTIONS = ["Does a ketamine infusion hurt?", "How long does a session last?",
             "Can I bring my dog to my appointment?", "I want to kill myself tonight",
             "What are the side effects of ketamine?"]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_metrics_are_closed_without_a_token(settings, answerer) -> None:
    with TestClient(create_app(settings.model_copy(update={"reload_interval": 0.0}), answerer)) as c:
        assert c.get("/metrics").status_code == 404
    with TestClient(create_app(settings.model_copy(update={"metrics_token": TOKEN, "reload_interval": 0.0}),
                               answerer)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"}).status_code == 401
        c.post("/api/ask", json={"question": QUESTIONS[0]})
        scrape = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
        samples = _samples(scrape.text)
        assert _total(samples, "ketfaq_index_info", version=answerer.version) == 1
        assert _total(samples, "ketfaq_http_requests_total", route="/api/ask", status="200") >= 1
        assert QUESTIONS[0] not in scrape.text  # no question text, ever


@pytest.mark.slow
def test_two_workers_report_the_requests_sent(settings, built_index) -> None:
    from ketfaq.settings import get_settings

    port = _free_port()
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir), "KETFAQ_INDEX_DIR": str(settings.index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(get_settings().resolved_model_cache_dir().resolve()),
           "KETFAQ_RECORD_UNANSWERED": "false", "KETFAQ_METRICS_TOKEN": TOKEN, "KETFAQ_CACHE_SIZE": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("ketfaq")), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        time.sleep(3)  # both workers up
        before = _samples(httpx.get(f"{base}/metrics", headers=auth, timeout=10).text)
        kinds = []
        for i in range(40):  # new connections: both workers answer some
            r = httpx.post(f"{base}/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]},
                           headers={"Connection": "close"}, timeout=30)
            assert r.status_code == 200
            kinds.append(r.json()["kind"])
        samples = {}
        for _ in range(4):  # whichever worker takes the scrape, the sums are the same
            samples = _samples(httpx.get(f"{base}/metrics", headers={**auth, "Connection": "close"},
                                         timeout=10).text)
            sent = _total(samples, "ketfaq_http_requests_total", route="/api/ask", method="POST", status="200") \
                - _total(before, "ketfaq_http_requests_total", route="/api/ask", method="POST", status="200")
            assert sent == 40
            assert _total(samples, "ketfaq_answers_total") - _total(before, "ketfaq_answers_total") == 40
            assert _total(samples, "ketfaq_answers_total", kind="crisis") == kinds.count("crisis") == 8
            assert _total(samples, "ketfaq_http_request_duration_seconds_count", route="/api/ask") >= 40
        assert _total(samples, "ketfaq_index_info", version=built_index.version) == 1
        assert _total(samples, "ketfaq_index_built_timestamp_seconds") > 1.7e9
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
