"""Helpers for the staff tests: a private copy of the corpus and index that tests may change."""

from __future__ import annotations

import shutil
from pathlib import Path

from ketfaq.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def private_copy(settings: Settings, work: Path, **overrides) -> Settings:
    """Settings over a copy of the shipped corpus and of the session's embedding cache.

    Copying the cache makes the first build here re-embed nothing, like a staff rebuild.
    """
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(settings.corpus_dir, corpus)
    if (settings.index_dir / "cache").is_dir():
        shutil.copytree(settings.index_dir / "cache", index / "cache")
    values = {"corpus_dir": corpus, "index_dir": index, "db_path": work / "db.sqlite3",
              "record_unanswered": False, "reload_interval": 0.0, **overrides}
    return settings.model_copy(update=values)


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a file (which must contain it)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
