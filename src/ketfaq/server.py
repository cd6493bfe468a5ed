"""Run the app: one uvicorn process, or several workers forked by gunicorn after the imports.

With ``workers > 1`` gunicorn imports ketfaq and builds the app once (``preload_app``), then forks
the workers; each loads the published index and its own encoder session at start-up (the
lifespan). Forking after the imports makes two workers answer their first question as soon as
one uvicorn process does, where uvicorn's own ``--workers`` spawns fresh interpreters that
import everything again (docs/PERFORMANCE.md). Each worker is told the worker count
(``KETFAQ_WORKERS``) so that its encoder takes only its share of the cores.
"""

from __future__ import annotations

import os

__all__ = ["serve", "shared_metrics_dir"]


def shared_metrics_dir(workers: int) -> None:
    """With several workers, a fresh folder where each writes its metrics and /metrics sums them;
    set before prometheus_client is imported anywhere (it reads the variable at import)."""
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="ketfaq-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _worker_exited(server, worker) -> None:  # type: ignore[no-untyped-def]  # gunicorn's hook
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def serve(host: str, port: int, workers: int = 1, *, log_level: str = "info") -> None:
    """Serve ``ketfaq.api:create_app`` on ``host:port`` until stopped (SIGTERM or Ctrl-C)."""
    shared_metrics_dir(workers)
    os.environ["KETFAQ_WORKERS"] = str(workers)
    from ketfaq.settings import get_settings

    get_settings.cache_clear()  # the worker count is part of the settings
    # X-Forwarded-For is believed only from the configured proxies: by default from nobody, so a
    # client can't pick its own rate-limit bucket (uvicorn and gunicorn trust 127.0.0.1 otherwise).
    trusted = get_settings().trusted_proxies
    if workers == 1 or BaseApplication is object:  # no gunicorn (Windows): uvicorn's own workers
        import uvicorn

        uvicorn.run("ketfaq.api:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False, proxy_headers=bool(trusted),
                    forwarded_allow_ips=trusted or None)
        return
    _Gunicorn({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "preload_app": True,
        "timeout": 120,  # a worker loads the index and the encoder before it answers
        "graceful_timeout": 20,
        "loglevel": log_level,
        "accesslog": None,
        "control_socket_disable": True,
        "child_exit": _worker_exited,
        "forwarded_allow_ips": trusted,  # "" trusts no proxy  # gunicorn 27's admin socket: one fixed path per user
    }).run()


try:
    from gunicorn.app.base import BaseApplication
except ImportError:  # pragma: no cover - gunicorn is a dependency on the platforms it supports
    BaseApplication = object  # type: ignore[assignment,misc]


class _Gunicorn(BaseApplication):  # type: ignore[misc,valid-type]
    """gunicorn configured from a dict instead of its command line (its documented custom app)."""

    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from ketfaq.api import create_app

        return create_app()
