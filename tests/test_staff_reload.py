"""Publishing to a running server: hot reload under load over real HTTP, and builds that die midway."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import httpx
import pytest
import uvicorn

from ketfaq.answer import Answerer
from ketfaq.api import create_app
from ketfaq.index import build_index, current_version, load_index
from tests.staff_helpers import edit, private_copy

TOKEN = "reload-test-admin-token"
QUESTIONS = ["What are common symptoms of anxiety?", "Is ketamine addictive?",
             "What is ketamine therapy for anxiety?", "How does ketamine work for anxiety?",
             "What are traditional treatments for anxiety?"]
ARTICLE = "003-ketamine-for-anxiety.md"
MARK = " (Checked by the clinic.)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _passages(index_dir: Path, version: str) -> set[tuple[str, str]]:
    return {(c.doc_id, c.text) for c in load_index(index_dir, version).chunks}


def _mark_every_paragraph(path: Path) -> None:
    """Change every passage of the article, so the old and new versions share none of its text."""
    text = path.read_text(encoding="utf-8")
    path.write_text("\n\n".join(p + MARK if p and not p.startswith(("#", "-", "---")) else p
                                for p in text.split("\n\n")), encoding="utf-8")


@pytest.fixture()
def own(tmp_path: Path, settings, encoder, built_index):
    own = private_copy(settings, tmp_path, admin_token=TOKEN, reload_interval=0.2)
    build_index(own, encoder)
    return own


def test_reload_during_concurrent_requests_fails_none_and_mixes_no_versions(own, encoder) -> None:
    answerer = Answerer(own, encoder)
    v1 = answerer.version
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(own, answerer), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)

    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []
    published = threading.Event()
    stop_at = time.monotonic() + 150  # hard bound on the load, whatever happens

    def visitor(offset: int) -> None:
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                sent, after_publish = 0, 0
                while sent < 400 and after_publish < 6 and time.monotonic() < stop_at:
                    question = QUESTIONS[(offset + sent) % len(QUESTIONS)]
                    response = client.post("/api/ask", json={"question": question})
                    results.append((response.status_code, response.json()))
                    sent += 1
                    after_publish += published.is_set()
        except BaseException as exc:
            errors.append(exc)

    visitors = [threading.Thread(target=visitor, args=(i,)) for i in range(4)]
    try:
        for t in visitors:
            t.start()
        while len(results) < 8 and time.monotonic() < stop_at:
            time.sleep(0.05)
        _mark_every_paragraph(own.corpus_dir / ARTICLE)
        v2 = build_index(own, encoder).version  # publishes while requests are running
        reload = httpx.post(f"{base}/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=60)
        assert reload.status_code == 200 and reload.json()["index_version"] == v2
        published.set()
        for t in visitors:
            t.join(timeout=180)
    finally:
        server.should_exit = True
        thread.join(timeout=30)

    assert not errors, errors
    assert [code for code, _ in results if code != 200] == []
    versions = {body["index_version"] for _, body in results}
    assert versions == {v1, v2}, "the reload must happen while requests are being answered"
    known = {v: _passages(own.index_dir, v) for v in versions}
    assert any(MARK.strip() in text for _, text in known[v2] - known[v1])
    for _, body in results:
        for passage in body["passages"]:
            assert (passage["source"]["doc_id"], passage["text"]) in known[body["index_version"]]


def test_the_watcher_notices_a_new_publication(own, encoder) -> None:
    from fastapi.testclient import TestClient

    answerer = Answerer(own, encoder)
    with TestClient(create_app(own, answerer)) as client:
        before = client.get("/api/health").json()["index_version"]
        edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling hands")
        after = build_index(own, encoder).version
        deadline = time.monotonic() + 30
        while client.get("/api/health").json()["index_version"] != after:
            assert time.monotonic() < deadline, "the new index was not picked up"
            time.sleep(0.1)
    assert before != after


_STALLING_BUILD = """
import pathlib, sys, time
from ketfaq.index import build_index
from ketfaq.settings import Settings

class StallingEncoder:
    name, dimension = "all-MiniLM-L6-v2", 384
    def encode(self, texts, **kwargs):
        pathlib.Path(sys.argv[3]).write_text("embedding")
        time.sleep(120)

build_index(Settings(corpus_dir=sys.argv[1], index_dir=sys.argv[2]), StallingEncoder())
"""


def test_a_build_killed_while_embedding_leaves_the_published_index_serving(own, encoder, tmp_path) -> None:
    answerer = Answerer(own, encoder)
    published = current_version(own.index_dir)
    edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling and shaking")
    marker = tmp_path / "embedding-started"
    proc = subprocess.Popen([sys.executable, "-c", _STALLING_BUILD, str(own.corpus_dir),
                             str(own.index_dir), str(marker)], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the build ended before embedding"
            assert time.monotonic() < deadline, "the build never started embedding"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert current_version(own.index_dir) == published
    assert answerer.reload() is False
    response = answerer.ask("Is ketamine addictive?")
    assert response.kind == "answer" and response.index_version == published
    assert build_index(own, encoder).articles_changed == ["003-ketamine-for-anxiety"]  # and recovers


def test_a_build_failing_while_writing_leaves_the_published_index_serving(own, encoder, monkeypatch) -> None:
    answerer = Answerer(own, encoder)
    published = current_version(own.index_dir)
    edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling or shivering")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(faiss, "write_index", disk_full)
        with pytest.raises(OSError):
            build_index(own, encoder)
    assert list((own.index_dir / "versions").glob(".tmp-*"))  # the half-written version
    assert current_version(own.index_dir) == published and answerer.reload() is False
    assert answerer.ask("Is ketamine addictive?").index_version == published
    build_index(own, encoder)
    assert not list((own.index_dir / "versions").glob(".tmp-*"))  # debris pruned by the next build


def test_reload_of_a_corrupt_published_index_answers_503_and_keeps_serving(own, encoder) -> None:
    from fastapi.testclient import TestClient

    own = own.model_copy(update={"reload_interval": 0.0})
    answerer = Answerer(own, encoder)
    with TestClient(create_app(own, answerer)) as client:
        serving = client.get("/api/health").json()["index_version"]
        edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling hands")
        broken = build_index(own, encoder).version
        (own.index_dir / "versions" / broken / "vectors.faiss").write_bytes(b"not a faiss index")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        response = client.post("/api/admin/reload", headers=auth)
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert broken in detail and serving in detail and "ketfaq index rollback" in detail
        body = client.post("/api/ask", json={"question": "Is ketamine addictive?"}).json()
        assert body["index_version"] == serving and body["passages"]
        health = client.get("/api/health").json()
        assert health["status"] == "degraded" and broken in health["warning"]


@pytest.mark.slow
def test_serve_with_a_corrupt_published_index_serves_the_last_good_one_and_says_so(own, encoder) -> None:
    """Real `ketfaq serve`: a damaged published version is no outage; health and the log say why."""
    from tests.test_trusted_proxies import _serve

    good = current_version(own.index_dir)
    edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling hands")
    broken = build_index(own, encoder).version  # published, and matches the corpus: not stale
    (own.index_dir / "versions" / broken / "vectors.faiss").write_bytes(b"not a faiss index")
    server, base = _serve(own, {"KETFAQ_RATE_LIMIT": ""})
    try:
        health = httpx.get(f"{base}/api/health", timeout=10).json()
        assert health["status"] == "degraded" and health["index_version"] == good
        assert broken in health["warning"] and f"ketfaq index rollback {good}" in health["warning"]
        body = httpx.post(f"{base}/api/ask", json={"question": "Is ketamine addictive?"}, timeout=30).json()
        assert body["kind"] == "answer" and body["index_version"] == good and body["passages"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert f"The published index {broken} cannot be loaded" in stderr.decode()


def test_a_damaged_published_version_with_nothing_else_to_serve_fails_start_up_clearly(own, encoder) -> None:
    from fastapi.testclient import TestClient

    from ketfaq.index import IndexError_

    only = current_version(own.index_dir)
    (own.index_dir / "versions" / only / "rows.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(IndexError_, match=rf"{only}.*damaged.*no other version"), \
            TestClient(create_app(own)):
        pass
