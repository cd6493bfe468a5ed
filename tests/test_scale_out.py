"""Scale-out on one machine: `ketfaq serve --workers 2` forks two workers that both answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from .conftest import ROOT

QUESTIONS = ["Is ketamine therapy safe?", "Does a ketamine infusion hurt?", "How long does a session last?",
             "What are the side effects?", "How does ketamine help anxiety?", "What is esketamine?"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(proc) -> float:  # type: ignore[no-untyped-def]
    times = proc.cpu_times()
    return times.user + times.system


@pytest.mark.slow
def test_two_workers_share_the_published_index_and_both_answer(settings, built_index) -> None:
    from ketfaq.settings import get_settings

    port = _free_port()
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir), "KETFAQ_INDEX_DIR": str(settings.index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(get_settings().resolved_model_cache_dir().resolve()),
           "KETFAQ_RECORD_UNANSWERED": "false", "KETFAQ_CACHE_SIZE": "0"}
    server = subprocess.Popen(  # the shipped command, as the README gives it
        [str(Path(sys.executable).with_name("ketfaq")), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        workers: list = []
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            workers = psutil.Process(server.pid).children(recursive=True)
            workers = [w for w in workers if "multiprocessing" not in " ".join(w.cmdline())
                       or "spawn_main" in " ".join(w.cmdline())]
            try:
                if len(workers) >= 2 and httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("two workers did not come up within 180 s")
        # Let both finish loading (each loads the index and the encoder), then measure who works.
        previous = -1.0
        while time.monotonic() < deadline:
            total = sum(_cpu(w) for w in workers)
            if abs(total - previous) < 0.02:
                break
            previous = total
            time.sleep(1.0)
        before = {w.pid: _cpu(w) for w in workers}
        versions = set()
        for i in range(60):  # a fresh connection each time: the kernel hands them to either worker
            response = httpx.post(f"{base}/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]},
                                  headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200
            assert response.json()["kind"] in ("answer", "personal_advice", "no_match")
            versions.add(response.json()["index_version"])
        busy = {w.pid: _cpu(w) - before[w.pid] for w in workers}
        assert versions == {built_index.version}  # both serve the one published version
        assert sum(1 for used in busy.values() if used > 0.05) >= 2, f"CPU seconds per worker: {busy}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_workers_start_on_a_missing_index_and_stop_cleanly(settings, tmp_path) -> None:
    """With no index, `serve --workers 2` builds one (in a process of its own, so that no forked
    worker inherits the build's threads), then both workers answer and all stop at SIGTERM."""
    from ketfaq.settings import get_settings

    port = _free_port()
    index_dir = tmp_path / "index"
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir), "KETFAQ_INDEX_DIR": str(index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(get_settings().resolved_model_cache_dir().resolve()),
           "KETFAQ_RECORD_UNANSWERED": "false"}
    log = tmp_path / "serve.log"  # a file, not a pipe: the build's progress output can't fill it up
    log_handle = log.open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("ketfaq")), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_handle)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/api/ask", timeout=30,
                                      json={"question": "Does a ketamine infusion hurt?"})
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("no answer within 240 s")
        assert response.json()["kind"] in ("answer", "personal_advice", "no_match")
        assert (index_dir / "CURRENT").exists()
        children = psutil.Process(server.pid).children()
        assert len(children) == 2
        server.terminate()
        assert server.wait(timeout=30) == 0
        assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log_handle.close()


def test_each_worker_encoder_takes_its_share_of_the_cores(monkeypatch) -> None:
    from ketfaq.settings import Settings

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine
    assert Settings(workers=1).resolved_encoder_threads() == 2  # a lone question: both cores
    assert Settings(workers=2).resolved_encoder_threads() == 1  # one per core: no oversubscription
    assert Settings(workers=4).resolved_encoder_threads() == 1
    assert Settings(workers=2, encoder_threads=3).resolved_encoder_threads() == 3  # explicit wins
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert Settings(workers=1).resolved_encoder_threads() == 2  # more bought nothing for ~15 tokens


def test_serve_tells_its_workers_how_many_they_are(monkeypatch) -> None:
    import uvicorn

    from ketfaq import server
    from ketfaq.settings import get_settings

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw, settings=get_settings()))
    monkeypatch.setenv("KETFAQ_WORKERS", "7")
    server.serve("127.0.0.1", 8000, workers=1)
    assert seen["settings"].workers == 1 and seen["factory"] is True
    get_settings.cache_clear()
