"""Pick and build the FAISS index for a corpus size: exact for small corpora, approximate for large.

All indexes use inner product on unit vectors, so scores are cosines for every kind and the
retrieval code (which only calls ``faiss_index.search``) works unchanged. The choice comes from
``bench/scaling.py`` (figures in docs/PERFORMANCE.md): exact search grows linearly with the
corpus, and at large sizes IVF matched HNSW's recall@10 while building faster, searching
faster and taking less memory, so ``auto`` picks IVF above ``FLAT_MAX``. HNSW stays available
as an explicit kind.

Example::

    index = build_ann_index(vectors)            # kind chosen from len(vectors)
    scores, rows = index.search(query[None, :], 10)
"""

from __future__ import annotations

import math

import faiss
import numpy as np

__all__ = ["FLAT_MAX", "KINDS", "build_ann_index", "choose_kind", "index_kind"]

KINDS = ("auto", "flat", "hnsw", "ivf")
FLAT_MAX = 50_000  # up to here exact search is fast enough: no recall lost
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
IVF_NPROBE = 32


def choose_kind(count: int) -> str:
    """The index kind ``auto`` builds for ``count`` vectors: ``flat`` or ``ivf``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return "flat" if count <= FLAT_MAX else "ivf"


def build_ann_index(vectors: np.ndarray, kind: str = "auto", *, seed: int = 0) -> faiss.Index:
    """A FAISS inner-product index holding ``vectors`` (float32 rows, L2-normalized)."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(KINDS)}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array, got shape {vectors.shape}")
    count, dim = vectors.shape
    kind = choose_kind(count) if kind == "auto" else kind
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH  # saved with the index
    else:
        nlist = max(1, min(int(4 * math.sqrt(max(count, 1))), max(count // 39, 1)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if count > 64 * nlist:  # k-means needs ~40-256 points per list, not all of them
            rng = np.random.default_rng(seed)
            sample = vectors[rng.choice(count, 64 * nlist, replace=False)]
        index.cp.seed = seed
        index.train(sample)
        index.nprobe = min(IVF_NPROBE, nlist)  # saved with the index
    index.add(vectors)
    return index


def index_kind(index: faiss.Index) -> str:
    """``flat``, ``hnsw`` or ``ivf`` for an index made by :func:`build_ann_index`."""
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"
