"""Settings in, a ready runtime out: the one place that ensures the index and loads the models.

``serve``, ``ask``, ``eval``, ``rank train`` and the API's start-up all come through here, so
"is the published index usable, and what do we do if not" is decided once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from ketfaq.answer import Answerer
from ketfaq.embedding import Encoder, encoder_for
from ketfaq.index import (
    BuildReport,
    IndexError_,
    LoadedIndex,
    build_index,
    current_version,
    index_is_stale,
    list_versions,
    load_index,
)
from ketfaq.settings import Settings

__all__ = ["IndexState", "ensure_index", "index_state", "load_answerer", "load_servable"]

log = logging.getLogger("ketfaq.runtime")

IndexState = Literal["missing", "stale", "current"]


def index_state(settings: Settings) -> IndexState:
    """Whether an index is published and, if so, whether it was built from today's inputs."""
    if current_version(settings.index_dir) is None:
        return "missing"
    return "stale" if index_is_stale(settings) else "current"


def ensure_index(settings: Settings, encoder: Encoder | None = None, *, rebuild_stale: bool = True,
                 say: Callable[[str], None] = log.info) -> BuildReport | None:
    """Build and publish the index when none is published or, with ``rebuild_stale``, when the
    articles, chunking or model changed since it was built; None when nothing needed building.

    The server's workers pass ``rebuild_stale=False``: ``ketfaq serve`` rebuilds before it forks
    them, and a staff member's unpublished edit must not be published by a worker starting up.
    """
    state = index_state(settings)
    if state == "current" or (state == "stale" and not rebuild_stale):
        return None
    say(f"index {state} in {settings.index_dir}: building it first")
    return build_index(settings, encoder or encoder_for(settings))


def load_answerer(settings: Settings, encoder: Encoder | None = None, *, rebuild_stale: bool = False,
                  say: Callable[[str], None] = log.info) -> Answerer:
    """The one answer path (safety gate, retrieval, ranker) over the published index, built first
    if there is none (or if stale, with ``rebuild_stale``).

    A published version that can't be loaded (damaged files) is not the end of the service: the
    newest version that loads is served instead, with an error in the log and on /api/health
    saying which and how to fix it.
    """
    encoder = encoder or encoder_for(settings)
    ensure_index(settings, encoder, rebuild_stale=rebuild_stale, say=say)
    index, problem = load_servable(settings.index_dir)
    answerer = Answerer(settings, encoder, index)
    answerer.degraded = problem
    return answerer


def load_servable(index_dir: Path) -> tuple[LoadedIndex, str | None]:
    """The published version or, when it can't be loaded, the newest other one that can, with
    a sentence for staff saying so (None when the published version loaded)."""
    try:
        return load_index(index_dir), None
    except IndexError_ as exc:
        published, problem = current_version(index_dir), exc
    for manifest in list_versions(index_dir):
        if manifest.version == published:
            continue
        try:
            index = load_index(index_dir, manifest.version)
        except IndexError_:
            continue
        message = (f"The published index {published} cannot be loaded ({problem}). Serving "
                   f"{index.version} instead: publish it for good with `ketfaq index rollback "
                   f"{index.version}`, or fix the articles and run `ketfaq build`.")
        log.error(message)
        return index, message
    raise IndexError_(f"{problem}; no other version in {index_dir} loads either") from problem
