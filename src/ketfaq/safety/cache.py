"""Start-up caches of the gate: exemplar vectors and the lexicon's prefilter, keyed by content hash."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ketfaq.embedding import Encoder
from ketfaq.prefilter import PREFILTER_VERSION, LiteralPrefilter, required_substrings
from ketfaq.safety.lexicon import CrisisPattern

__all__ = ["cache_file", "crisis_prefilter", "exemplar_vectors", "store_atomically"]


def cache_file(cache_dir: Path, kind: str, suffix: str, parts: list[str]) -> Path:
    """Where a start-up cache lives: named by a hash of everything its content depends on."""
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return cache_dir / f"{kind}-{key}{suffix}"


def store_atomically(path: Path, data: bytes) -> None:
    """Write a cache file atomically; a read-only deployment just recomputes at every start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass


def exemplar_vectors(encoder: Encoder, texts: list[str], cache_dir: Path) -> np.ndarray:
    """Exemplar vectors in one batch call, cached on disk per encoder and exemplar list.

    Embedding every exemplar would dominate a cold start; the cache key changes whenever the
    lexicon or the encoder (model, export or variant) changes, so a stale vector is never used.
    """
    fingerprint = getattr(encoder, "fingerprint", getattr(encoder, "variant", ""))
    path = cache_file(cache_dir, "exemplars", ".npy", [getattr(encoder, "name", ""), fingerprint, *texts])
    try:
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    store_atomically(path, buffer.getvalue())
    return vectors


def crisis_prefilter(patterns: list[CrisisPattern], cache_dir: Path) -> LiteralPrefilter:
    """The required-substring prefilter of the sentence patterns, its analysis cached on disk.

    The cache is keyed by the patterns themselves and the analysis version. On a miss (a new or
    edited lexicon) every pattern is compiled, so a broken one stops the start with its place in
    the file; on a hit the patterns are the ones that compiled before, and each is compiled when
    a sentence first needs it, which keeps the compilation out of every start.
    """
    path = cache_file(cache_dir, "prefilter", ".json",
                       [f"prefilter-v{PREFILTER_VERSION}", *(p.source for p in patterns)])
    try:
        cached = json.loads(path.read_text("utf-8"))
        if len(cached) == len(patterns):
            return LiteralPrefilter([frozenset(s) if s is not None else None for s in cached])
    except (OSError, ValueError):
        pass
    required = [required_substrings(p.check()) for p in patterns]
    store_atomically(path, json.dumps([sorted(s) if s is not None else None for s in required]).encode())
    return LiteralPrefilter(required)


