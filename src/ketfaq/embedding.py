"""Turn text into unit-length vectors with a local sentence-transformers model (never a hub download)."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Protocol

import numpy as np

__all__ = ["Encoder", "SentenceTransformerEncoder", "load_encoder"]

# Nothing may be fetched from a model hub, ever: set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Encoder(Protocol):
    """Anything that embeds texts into L2-normalized float32 rows."""

    name: str
    dimension: int

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed ``texts``; row ``i`` is the unit vector of ``texts[i]``."""
        ...


class SentenceTransformerEncoder:
    """The reference encoder: sentence-transformers on PyTorch, CPU."""

    def __init__(self, model_path: str, *, name: str = "all-MiniLM-L6-v2") -> None:
        from sentence_transformers import SentenceTransformer

        if not os.path.isdir(model_path):
            raise FileNotFoundError(f"embedding model directory not found: {model_path}")
        self.name = name
        self._model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension())
        self._lock = threading.Lock()  # torch modules are not safe to call from several threads

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as normalized float32 rows."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def load_encoder(model_path: str, name: str = "all-MiniLM-L6-v2", backend: str = "torch") -> Encoder:
    """The encoder for ``model_path``, loaded once per process."""
    if backend not in ("auto", "torch"):
        raise ValueError(f"unknown encoder backend {backend!r}; valid: auto, torch")
    return SentenceTransformerEncoder(model_path, name=name)
