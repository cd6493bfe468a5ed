"""scripts/serve.sh, the newcomer's command: a warm restart installs nothing, and the first start
builds the index in a child process so the server itself stays lean (real server, real HTTP)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT
from tests.staff_helpers import private_copy
from tests.test_scale_out import _free_port


def _start(settings, port: int) -> tuple[subprocess.Popen, float]:
    """serve.sh on ``port``; returns the process and the seconds to its first answer."""
    env = {**os.environ, "KETFAQ_CORPUS_DIR": str(settings.corpus_dir),
           "KETFAQ_INDEX_DIR": str(settings.index_dir),
           "KETFAQ_MODEL_CACHE_DIR": str(settings.resolved_model_cache_dir()),
           "KETFAQ_RECORD_UNANSWERED": "false"}
    start = time.monotonic()
    server = subprocess.Popen(["bash", "scripts/serve.sh", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    deadline = start + 240
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(server.stderr.read().decode()[-3000:])
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/api/ask", json={"question": "Does it hurt?"}, timeout=10)
            if r.status_code == 200:
                return server, time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(server.pid, 15)
    pytest.fail("serve.sh gave no answer within 240 s")


def _stop(server: subprocess.Popen) -> str:
    os.killpg(server.pid, 15)  # its own session: the script and the server it exec'd
    _, stderr = server.communicate(timeout=30)
    return stderr.decode()


@pytest.mark.slow
def test_first_start_builds_apart_and_a_warm_restart_installs_nothing(settings, built_index,
                                                                     tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "ketfaq").exists():
        pytest.skip("serve.sh runs the checkout's .venv, which this run does not use")
    own = private_copy(settings, tmp_path)  # no index published yet
    port = _free_port()
    server, first = _start(own, port)
    try:
        rss_mb = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        log = _stop(server)
    assert "index missing: building it first" in log
    assert "nothing to install" in log, log[-2000:]
    # The build (torch, every vector) ran in a child that has exited: the server holds only
    # what serving needs. An in-process build left it well over a gigabyte.
    assert rss_mb < 600, f"server RSS {rss_mb:.0f} MB after an in-process build?"

    server, warm = _start(own, port)
    log = _stop(server)
    assert "nothing to install" in log and "building" not in log
    print(f"serve.sh: first start to first answer {first:.1f} s, warm restart {warm:.1f} s")
