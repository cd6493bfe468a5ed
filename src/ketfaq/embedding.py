"""Turn text into unit-length vectors with a local sentence-transformers model (never a hub download)."""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ketfaq.settings import Settings

__all__ = ["BACKENDS", "Encoder", "SentenceTransformerEncoder", "encoder_for", "load_encoder"]

log = logging.getLogger("ketfaq.embedding")

# Nothing may be fetched from a model hub, ever: set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Encoder(Protocol):
    """Anything that embeds texts into L2-normalized float32 rows."""

    name: str
    dimension: int
    variant: str  # how the vectors are computed ("torch", "onnx-int8"): vectors differ slightly
    fingerprint: str  # variant + hash of the exact weights: cached vectors are keyed by it

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed ``texts``; row ``i`` is the unit vector of ``texts[i]``."""
        ...


class SentenceTransformerEncoder:
    """The reference encoder: sentence-transformers on PyTorch, CPU."""

    def __init__(self, model_path: str, *, name: str = "all-MiniLM-L6-v2") -> None:
        from sentence_transformers import SentenceTransformer

        if not os.path.isdir(model_path):
            raise FileNotFoundError(f"embedding model directory not found: {model_path}")
        from ketfaq.onnx_encoder import model_hash

        self.name = name
        self.variant = "torch"
        self.fingerprint = f"torch:{model_hash(model_path)[:16]}"
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


BACKENDS = ("auto", "torch", "onnx")


@lru_cache(maxsize=4)
def load_encoder(model_path: str, name: str = "all-MiniLM-L6-v2", backend: str = "torch",
                 cache_dir: str | None = None, threads: int = 1) -> Encoder:
    """The encoder for ``model_path``, loaded once per process.

    ``onnx`` runs the int8 ONNX export (made once, cached in ``cache_dir``, default
    ``settings.resolved_model_cache_dir()``) without importing torch; ``auto`` does the same when
    onnxruntime is installed and falls back to ``torch`` (sentence-transformers) otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "torch":
        return SentenceTransformerEncoder(model_path, name=name)
    from ketfaq.onnx_encoder import OnnxEncoder, ensure_onnx_model, onnx_available

    if not onnx_available():
        if backend == "onnx":
            raise RuntimeError("encoder_backend=onnx needs onnxruntime and tokenizers installed")
        log.warning("onnxruntime not installed: encoding with PyTorch (slower)")
        return SentenceTransformerEncoder(model_path, name=name)
    if cache_dir is None:
        from ketfaq.settings import get_settings

        cache_dir = str(get_settings().resolved_model_cache_dir())
    return OnnxEncoder(ensure_onnx_model(model_path, cache_dir, quantized=True), name=name, threads=threads)


def encoder_for(settings: Settings) -> Encoder:
    """The encoder ``settings`` describe (model, backend, export cache, threads), loaded once."""
    return load_encoder(settings.resolved_model_path(), settings.model_name, settings.encoder_backend,
                        str(settings.resolved_model_cache_dir()), threads=settings.resolved_encoder_threads())
