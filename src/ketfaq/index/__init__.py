"""Versioned FAISS indexes in ``index/``: :mod:`.build` makes a version, :mod:`.store` keeps,
publishes and loads them, :mod:`.cache` remembers embeddings between builds."""

from ketfaq.index.build import BuildReport, build_fingerprint, build_index, index_is_stale
from ketfaq.index.store import (
    FORMAT_VERSION,
    ArticleMeta,
    IndexError_,
    LoadedIndex,
    Manifest,
    current_version,
    list_versions,
    load_index,
    publish,
    read_manifest,
    rollback,
)

__all__ = [
    "FORMAT_VERSION", "ArticleMeta", "BuildReport", "IndexError_", "LoadedIndex", "Manifest",
    "build_fingerprint", "build_index", "current_version", "index_is_stale", "list_versions",
    "load_index", "publish", "read_manifest", "rollback",
]
