"""Embeddings keyed by the hash of the embedded text, kept beside the index versions.

One cache per exact encoder (variant and weights), so vectors of another model never mix in,
and rebuilds embed only the texts that changed. Keys and vectors live in one file replaced by
rename: a build killed at any moment leaves the old pair or the new pair, never a mix.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ketfaq.embedding import Encoder

__all__ = ["EmbeddingCache", "text_key"]

_FILE = "embeddings.npz"


def text_key(text: str) -> str:
    """The cache key of a text: its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by text key, loaded from and saved to ``directory``."""

    def __init__(self, directory: Path, dimension: int) -> None:
        self.directory = directory
        self.dimension = dimension
        self.vectors: dict[str, np.ndarray] = {}
        try:
            with np.load(directory / _FILE, allow_pickle=False) as stored:
                keys, matrix = stored["keys"], stored["vectors"]
            if matrix.shape == (len(keys), dimension):
                self.vectors = dict(zip(keys.tolist(), matrix, strict=True))
        except (OSError, ValueError, KeyError):
            self.vectors = {}  # missing or damaged: it only costs embedding time

    def embed(self, encoder: Encoder, texts: list[str], progress: bool) -> tuple[np.ndarray, int]:
        """Vectors for ``texts``, encoding only those not cached; returns (matrix, newly embedded)."""
        keys = [text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            fresh = encoder.encode([t for _, t in missing], progress=progress)
            for (key, _), vec in zip(missing, fresh):
                self.vectors[key] = vec
        matrix = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension))
        return np.ascontiguousarray(matrix, dtype=np.float32), len(missing)

    def save(self, keep: set[str]) -> None:
        """Write the vectors of the ``keep`` keys (those the new version uses), atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(k for k in self.vectors if k in keep)
        matrix = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension))
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".embeddings.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, keys=np.asarray(keys, dtype="<U64"), vectors=matrix.astype(np.float32))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / _FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for legacy in ("keys.json", "vectors.npy"):  # the two-file cache of earlier versions
            (self.directory / legacy).unlink(missing_ok=True)
