"""Find the passages that answer a question: dense (FAISS) + BM25 (bm25s) fused with RRF.

Scores are cosine similarities between the question and the passage (or its FAQ question):
higher is better, in [-1, 1]. The confidence threshold compares against that same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ketfaq.chunking import Chunk
from ketfaq.index import LoadedIndex
from ketfaq.lexical import KeywordIndex, keyword_text
from ketfaq.ranking.features import (
    Candidates,
    QuestionTerms,
    chunk_stats,
    pair_features,
    question_features,
)
from ketfaq.ranking.model import RankingModel, adapt

__all__ = ["Evidence", "Hit", "Searcher", "keyword_text", "reciprocal_rank_fusion", "MODES"]

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked passage: its cosine to the question (``score``), the score that ordered it
    (``fused``: the RRF score, or the second stage's logit), and the best-matching sentence span."""

    chunk: Chunk
    score: float
    fused: float
    highlight: tuple[int, int] | None


def reciprocal_rank_fusion(rankings: list[np.ndarray | list[int]], size: int, k: int = 60,
                           weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ranked id arrays (ids in ``range(size)``): ``score(d) = sum_i w_i / (k + rank_i(d))``.

    Returns the ids ranked anywhere, best first (ties by id), and the score of every id (0 where
    unranked). Ranks are 1-based. Cormack, Clarke & Büttcher (2009), "Reciprocal rank fusion
    outperforms Condorcet and individual rank learning methods", SIGIR.
    https://doi.org/10.1145/1571941.1572114
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    weights = [1.0] * len(rankings) if weights is None else weights
    if len(weights) != len(rankings):
        raise ValueError(f"got {len(weights)} weights for {len(rankings)} rankings")
    fused = np.zeros(size)
    ranked = np.zeros(size, dtype=bool)
    for ranking, weight in zip(rankings, weights):
        ranking = np.asarray(ranking, dtype=np.int64)
        fused[ranking] += weight / (k + np.arange(1, len(ranking) + 1))
        ranked[ranking] = True
    ids = np.flatnonzero(ranked)
    return ids[np.lexsort((ids, -fused[ids]))], fused


@dataclass(frozen=True, slots=True)
class Evidence:
    """The ranked passages for a question and whether, on that evidence, the articles answer it.

    ``answerable`` is None when no ranking model is loaded (the caller falls back to a cosine
    threshold).
    """

    hits: list[Hit]
    answerable: bool | None


class Searcher:
    """Search over one loaded index version; immutable after construction, safe across threads.

    Example::

        searcher = Searcher(load_index(Path("index")))
        hits = searcher.search("does it hurt?", encoder.encode(["does it hurt?"])[0], k=3)
    """

    def __init__(self, index: LoadedIndex, *, rrf_k: int = 60, candidates: int = 100,
                 dedup_threshold: float = 0.85, bm25_weight: float = 0.5,
                 heading_weight: int = 3, ranker: RankingModel | None = None,
                 rerank_depth: int = 30) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.index = index
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.dedup_threshold = dedup_threshold
        self.bm25_weight = bm25_weight
        self.ranker = ranker
        self.rerank_depth = rerank_depth
        self._row_chunk = np.asarray(index.row_chunk)
        self._vectors = np.asarray(index.vectors, dtype=np.float32)
        first_rows: dict[int, int] = {}
        for row, chunk_idx in enumerate(self._row_chunk.tolist()):
            first_rows.setdefault(chunk_idx, row)
        self._chunk_vectors = self._vectors[[first_rows[i] for i in range(len(index.chunks))]]
        self.keywords = KeywordIndex(index.chunks, index.synonyms, heading_weight=heading_weight)
        self.stats = chunk_stats(index.chunks, self.keywords.content_stems, index.sentence_offsets)
        sections: dict[tuple, int] = {}
        self._section = np.array([sections.setdefault((c.doc_id, c.headings), len(sections))
                                  for c in index.chunks], dtype=np.int64)

    @property
    def chunk_vectors(self) -> np.ndarray:
        """One vector per chunk (its own text's), in index order."""
        return self._chunk_vectors

    def question_terms(self, question: str) -> QuestionTerms:
        """The question's content stems with their idf over this index's chunks."""
        return QuestionTerms.of(self.keywords.content_stems(question), self.stats)

    def first_stage(self, question: str, query_vector: np.ndarray, *, n: int = 30,
                   mode: str = "hybrid", adapter: np.ndarray | None = None) -> Candidates:
        """The first stage: the top ``n`` dense and top ``n`` BM25 passages (their union), with
        every score the second stage ranks them by. ``adapter`` maps the question vector for the
        adapted cosines (default: the ranking model's; none: the plain vector)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        query_vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dense = self._dense_scores(query_vector)
        seen = np.flatnonzero(dense > -1.0)
        dense_order = seen[np.argsort(-dense[seen], kind="stable")]
        bm25 = self.keywords.scores(question, len(dense))
        bm25_order = np.argsort(-bm25, kind="stable")
        bm25_order = bm25_order[bm25[bm25_order] > 0]
        picked: list[np.ndarray] = []
        if mode in ("hybrid", "dense"):
            picked.append(dense_order[:n])
        if mode in ("hybrid", "bm25"):
            picked.append(bm25_order[:n])
        ids = np.array(list(dict.fromkeys(np.concatenate(picked).tolist())) if picked else [], dtype=np.int64)
        missing = ids[dense[ids] <= -1.0]
        if len(missing):
            dense[missing] = self._chunk_vectors[missing] @ query_vector
        dense_rank = np.zeros(len(dense), np.float32)
        dense_rank[dense_order] = np.arange(1, len(dense_order) + 1)
        bm25_rank = np.zeros(len(dense), np.float32)
        bm25_rank[bm25_order] = np.arange(1, len(bm25_order) + 1)
        sentence_max, sentence_mean = self._sentence_scores(query_vector, ids)
        section_best = np.full(int(self._section.max()) + 1, -1.0, np.float32)
        known = dense > -1.0
        np.maximum.at(section_best, self._section[known], dense[known])
        if adapter is None and self.ranker is not None:
            adapter = self.ranker.adapter
        adapted = query_vector if adapter is None else adapt(adapter, query_vector)
        return Candidates(
            ids=ids, dense=dense[ids].astype(np.float32),
            text_cos=(self._chunk_vectors[ids] @ query_vector).astype(np.float32),
            sentence_max=sentence_max, sentence_mean=sentence_mean, bm25=bm25[ids],
            dense_rank=dense_rank[ids], bm25_rank=bm25_rank[ids],
            heading_cos=(self.index.heading_vectors[ids] @ query_vector).astype(np.float32),
            section_dense=section_best[self._section[ids]],
            adapted_dense=(self._chunk_vectors[ids] @ adapted).astype(np.float32),
            adapted_sentence=self._sentence_scores(adapted, ids)[0],
            adapted_heading=(self.index.heading_vectors[ids] @ adapted).astype(np.float32),
        )

    def _sentence_scores(self, query_vector: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best and mean sentence cosine of each of ``ids`` (0 for a passage without sentences)."""
        best, mean = self.stats.per_chunk_max_mean(self.index.sentence_vectors @ query_vector)
        return best[ids], mean[ids]

    def _dense_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """Per chunk: the best cosine over its vectors (its text in context, its FAQ question)."""
        n = len(self.index.chunks)
        k = min(self.index.faiss_index.ntotal, max(self.candidates * 2, 1))
        sims, rows = self.index.faiss_index.search(query_vector.reshape(1, -1).astype(np.float32), k)
        best = np.full(n, -1.0, dtype=np.float32)
        found = rows[0] >= 0
        np.maximum.at(best, self._row_chunk[rows[0][found]], sims[0][found])
        return best

    def search(self, question: str, query_vector: np.ndarray, *, k: int = 3,
               mode: str = "hybrid") -> list[Hit]:
        """The top ``k`` distinct passages for ``question``, best first."""
        return self.evidence(question, query_vector, k=k, mode=mode).hits

    def evidence(self, question: str, query_vector: np.ndarray, *, k: int = 3,
                 mode: str = "hybrid") -> Evidence:
        """The top ``k`` passages and the answerability decision.

        With a ranking model (hybrid mode) the first stage's candidates are re-ranked by it; the
        single-view modes (``dense``, ``bm25``) stay first-stage only, for comparisons.
        """
        if self.ranker is None or mode != "hybrid":
            return Evidence(self._fused_search(question, query_vector, k=k, mode=mode), None)
        query_vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        cands = self.first_stage(question, query_vector, n=self.rerank_depth, mode=mode)
        terms = self.question_terms(question)
        pairs = pair_features(cands, terms, self.stats)
        scores = self.ranker.score_pairs(pairs) if len(pairs) else np.zeros(0)
        logit = self.ranker.answerable_logit(question_features(pairs, scores, terms, cands.ids, self.stats), query_vector)
        order = np.argsort(-scores, kind="stable")
        hits = self._distinct(cands.ids[order].tolist(), cands.dense[order].tolist(),
                              scores[order].tolist(), query_vector, k)
        return Evidence(hits, logit >= self.ranker.threshold)

    def _distinct(self, ids: list[int], dense: list[float], fused: list[float],
                  query_vector: np.ndarray, k: int) -> list[Hit]:
        """The first ``k`` of ``ids`` (best first) that are not near-duplicates of a better one."""
        hits: list[Hit] = []
        chosen: list[int] = []
        for idx, cosine, score in zip(ids, dense, fused):
            if chosen:
                sims = self._chunk_vectors[chosen] @ self._chunk_vectors[idx]
                if float(sims.max()) >= self.dedup_threshold:
                    continue
            chosen.append(idx)
            hits.append(Hit(self.index.chunks[idx], float(cosine), float(score),
                            self._highlight(idx, query_vector)))
            if len(hits) == k:
                break
        return hits

    def _fused_search(self, question: str, query_vector: np.ndarray, *, k: int,
                      mode: str) -> list[Hit]:
        """The first stage alone: dense and BM25 lists fused with RRF."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        query_vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dense = self._dense_scores(query_vector)
        rankings: list[np.ndarray] = []
        weights: list[float] = []
        if mode in ("hybrid", "dense"):
            seen = np.flatnonzero(dense > -1.0)
            rankings.append(seen[np.argsort(-dense[seen], kind="stable")][: self.candidates])
            weights.append(1.0)
        if mode in ("hybrid", "bm25"):
            rankings.append(self.keywords.ranking(question, self.candidates))
            weights.append(self.bm25_weight if mode == "hybrid" else 1.0)
        order, fused = reciprocal_rank_fusion(rankings, len(dense), self.rrf_k, weights)
        # Cosine for candidates that only BM25 found.
        missing = order[dense[order] <= -1.0]
        if len(missing):
            dense[missing] = self._chunk_vectors[missing] @ query_vector
        ids = order.tolist()
        return self._distinct(ids, dense[order].tolist(), fused[order].tolist(), query_vector, k)

    def _highlight(self, chunk_idx: int, query_vector: np.ndarray) -> tuple[int, int] | None:
        rows = self.index.sentence_rows[chunk_idx]
        if len(rows) == 0:
            return None
        sims = self.index.sentence_vectors[rows.start:rows.stop] @ query_vector
        return self.index.sentence_offsets[chunk_idx][int(np.argmax(sims))]
